// Scenario remapped-compat (part of uio, booted with interrupt remapping on): the model, on a
// platform without remapping, programs a compatibility-format message into the 82574 and the
// device raises it. Intel VT-d (rev. 4.0, §5.1.4) blocks such a message while remapping is on
// and GSTS.CFIS is clear — which Linux leaves clear — and reports fault reason 0x25 with the
// requester id. QEMU's VT-d model implements neither that block nor interrupt-remapping fault
// reporting (7.2 through current releases): the message passes untranslated. So the check
// accepts exactly two outcomes, each proving the message left the device as the model wrote
// it: a DMAR fault naming this function and reason 0x25 (hardware that follows the spec), or
// the guest's "No irq handler" report on exactly the model's CPU.vector with no fault (QEMU).
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

struct RemappingScenario {
    let address: PCIAddress
    let report: Report

    func run() {
        guard let log = report.attempt("ir-kmsg", { try KernelLog() }) else { return }
        let boot = (try? KernelLog(fromStart: true))?.drain().map(\.text) ?? []
        let enabled = boot.first { $0.contains("Enabled IRQ remapping") }
        report.check(enabled != nil, "ir-remapping-on", enabled ?? "no 'Enabled IRQ remapping' in the kernel log")
        let gsts = dmarRegister(0x1C)
        if let (base, value) = gsts {
            // GSTS bit 25 IRES (remapping enabled), bit 23 CFIS (compatibility format allowed).
            let ires = value & (1 << 25) != 0, cfis = value & (1 << 23) != 0
            report.check(
                ires && !cfis, "ir-guest-blocks-compatibility-format",
                "DMAR unit at \(hx(base)): GSTS \(hx(value)): IRES \(ires ? 1 : 0), CFIS \(cfis ? 1 : 0) "
                    + "(the kernel asks for compatibility-format interrupts to be blocked)")
        } else {
            report.fail("ir-guest-blocks-compatibility-format", "cannot read the DMAR unit's GSTS through /dev/mem (boot with iomem=relaxed)")
        }
        guard let kernel = KernelVectors.read() else {
            report.fail("ir-kernel-vectors", "no irq_matrix events (boot with trace_event=irq_matrix:*)")
            return
        }
        let cpus = onlineCPUCount()
        guard let platform = report.attempt("ir-model-platform", {
            try MSIPlatform(MSIPlatformConfiguration(cpuCount: cpus, legacyIRQs: 0))
        }) else { return }
        kernel.seed(platform, everUsed: true)
        guard let rig = report.attempt("ir-open", { try UIOE1000ERig(address, platform: platform) }) else { return }
        guard report.attempt("ir-model-enable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            _ = try rig.model.allocIRQVectors(min: 1, max: 1, flags: .msix)
            try rig.model.requestIRQ(try rig.virq(0))
            return true
        }) != nil, let virq = try? rig.virq(0), let irq = platform.irq(virq), let cpu = irq.assignedCPU,
            let vector = irq.assignedVector, let entry = try? rig.table.readEntries().first
        else { return }
        let target = CPUVector(cpu: cpu, vector: vector)
        let decoded = X86MSIFormat.decode(MSIMessage(addressLo: entry.addressLo, addressHi: entry.addressHi, data: entry.data))
        report.check(
            kernel.isPristine(cpu: cpu, vector: vector) && { if case .compatibility = decoded { true } else { false } }(),
            "ir-model-compatibility-message",
            "entry 0: \(hx(entry.addressLo))/\(hx(entry.data)) -> \(brief(decoded)); model \(target), never used by the guest kernel")
        _ = IRQTotals.settled()
        _ = log.drain()
        guard report.attempt("ir-raise", { try rig.raise(0) }) != nil else { return }
        let records = log.collect(timeoutMs: 2000, settleMs: 200) { recs in
            recs.contains { CPUVector(unhandledReport: $0.text) != nil || $0.text.contains("DMAR") }
        }
        let got = records.compactMap { CPUVector(unhandledReport: $0.text) }
        let faults = records.map(\.text).filter { $0.contains("DMAR") || $0.contains("INTR-REMAP") }
        let rid = "\(hexByte(address.bus)):\(hexByte(address.device)).\(address.function)"
        let blocked = faults.contains { $0.contains(rid) && $0.contains("0x25") }
        let delivered = faults.isEmpty && got == [target]
        report.check(
            blocked || delivered, "ir-compatibility-message-left-device-as-written",
            blocked ? "blocked by the IOMMU as VT-d specifies: \(faults)"
                : delivered ? "not blocked: QEMU's VT-d passes compatibility-format messages with remapping on (GSTS.CFIS clear; "
                    + "VT-d §5.1.4 says block, fault 0x25) and reports no interrupt-remapping faults; the message reached "
                    + "exactly the model's \(target), so it left \(rid) with the model's address and data"
                : "expected a DMAR fault naming \(rid) with reason 0x25, or a report on \(target); "
                    + "kernel reported \(got), DMAR lines \(faults)")
        _ = report.attempt("ir-model-disable") { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            try rig.model.freeIRQ(virq)
            try rig.model.freeIRQVectors()
            return true
        }
    }

}

/// The first DMA-remapping unit's base (ACPI DMAR table, first DRHD) and its 32-bit register
/// at `offset` (0x1C Global Status, 0x40 Fault Event Address…), read through /dev/mem (the
/// kernel holds the region: needs iomem=relaxed).
func dmarRegister(_ offset: Int) -> (UInt64, UInt32)? {
    let fd = open("/sys/firmware/acpi/tables/DMAR", O_RDONLY)
    guard fd >= 0 else { return nil }
    var table = [UInt8](repeating: 0, count: 4096)
    let n = table.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    close(fd)
    // 36-byte ACPI header, 12 bytes of DMAR fields, then remapping structures (type, length).
    var at = 48
    var base: UInt64?
    while at + 16 <= n {
        let type = Int(table[at]) | Int(table[at + 1]) << 8
        let length = Int(table[at + 2]) | Int(table[at + 3]) << 8
        if type == 0 {
            base = (0..<8).reduce(UInt64(0)) { $0 | UInt64(table[at + 8 + $1]) << (8 * UInt64($1)) }
            break
        }
        guard length > 0 else { break }
        at += length
    }
    guard let base else { return nil }
    let mem = open("/dev/mem", O_RDONLY | O_SYNC)
    guard mem >= 0 else { return nil }
    defer { close(mem) }
    guard let p = mmap(nil, 4096, PROT_READ, MAP_SHARED, mem, off_t(base)), p != MAP_FAILED else { return nil }
    defer { munmap(p, 4096) }
    return (base, p.load(fromByteOffset: offset, as: UInt32.self))
}

extension RemappingScenario {

    func hexByte(_ v: some BinaryInteger) -> String {
        let s = String(v, radix: 16)
        return s.count < 2 ? "0" + s : s
    }
}
