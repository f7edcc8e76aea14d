// Scenario uio: the kernel model programs a real MSI-X table itself. An emulated 82574 bound
// to uio_pci_generic (the kernel enables nothing for it) is driven by MSIDevice through the
// tables layer's chips: the kernel's enable sequence (msix_capability_init), request, mask,
// unmask, function mask, disable — and the device, made to raise its vectors, shows in its PBA
// what the spec says it must.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

struct UIOScenario {
    let address: PCIAddress
    let report: Report
    let sysfs = SysfsPCI()

    func run() {
        guard let rig = report.attempt("uio-open", { try UIOE1000ERig(address) }) else { return }
        report.pass("uio-open", rig.name)
        guard let initial = report.attempt("uio-reset-state", { try rig.snapshot() }) else { return }
        report.check(
            initial.control & (PCIReg.MSIX.enable | PCIReg.MSIX.functionMask) == 0
                && initial.entries.allSatisfy(\.masked) && initial.pba.allSatisfy { $0 == 0 },
            "uio-reset-state", "\(initial)")

        // The kernel's enable sequence, run by the model against the real function.
        guard let count = report.attempt("uio-model-enable", {
            try rig.model.allocIRQVectors(min: 5, max: 5, flags: .msix)
        }) else { return }
        guard let enabled = try? rig.snapshot() else { return }
        report.info("after enable: \(enabled)")
        report.check(
            count == 5 && rig.model.isMSIXEnabled && enabled.control & PCIReg.MSIX.enable != 0
                && enabled.control & PCIReg.MSIX.functionMask == 0,
            "uio-model-enable", "\(count) vectors; Message Control \(hx(enabled.control)) (hardware)")
        compareWithModel(rig, enabled, requested: [], name: "uio-table-matches-model-after-enable")
        // The kernel itself knows nothing of these vectors.
        report.check(
            sysfs.msiIRQNumbers(of: address).isEmpty && (ProcInterrupts.read()?.rows(device: address).isEmpty ?? false),
            "uio-kernel-unaware", "no msi_irqs, no /proc/interrupts rows for \(address)")

        // request_irq on each: activation writes the message and unmasks.
        let counts = HandlerTally()
        for i in 0..<5 {
            _ = report.attempt("uio-request-\(i)") {
                try rig.model.requestIRQ(try rig.virq(i)) { v in counts.hit(v) }
            }
        }
        guard let requested = try? rig.snapshot() else { return }
        report.info("after request: \(requested)")
        compareWithModel(rig, requested, requested: Set(0..<5), name: "uio-table-matches-model-after-request")
        checkRemappable(rig, requested)

        // Mask one entry; the device raises it; the PBA latches it; unmasking sends it.
        let v = 2
        guard report.attempt("uio-mask-entry", { try rig.model.maskIRQ(try rig.virq(v)) }) != nil else { return }
        let masked = (try? rig.table.readVectorControl(v)) ?? 0
        report.check(masked & 1 == 1, "uio-mask-entry", "entry \(v) vector control \(hx(masked)) (hardware)")
        raiseAndExpect(rig, v, .pending, pba: 1 << UInt64(v), name: "uio-masked-raise-sets-pba")
        guard report.attempt("uio-unmask-entry", { try rig.model.unmaskIRQ(try rig.virq(v)) }) != nil else { return }
        let pbaAfterUnmask = (try? rig.table.readPBA()) ?? []
        report.check(
            pbaAfterUnmask == [0] && (try? rig.table.readVectorControl(v)).map { $0 & 1 == 0 } == true,
            "uio-unmask-clears-pba", "PBA \(pbaAfterUnmask.map(hx)) after unmask (the device sent the latched message)")
        raiseAndExpect(rig, v, .notPending, pba: 0, name: "uio-unmasked-raise-sends")

        // Function Mask through config space masks every vector without touching the entries.
        guard report.attempt("uio-function-mask", { try rig.setFunctionMask(true) }) != nil else { return }
        let fm = (try? rig.table.readControl()) ?? 0
        report.check(
            fm & PCIReg.MSIX.functionMask != 0 && fm & PCIReg.MSIX.enable != 0, "uio-function-mask",
            "Message Control \(hx(fm)) (hardware)")
        raiseAndExpect(rig, 0, .pending, pba: 1, name: "uio-function-masked-raise-sets-pba")
        raiseAndExpect(rig, 4, .pending, pba: 1 | 1 << 4, name: "uio-function-masked-raise-4-sets-pba")
        let entries = (try? rig.table.readEntries()) ?? []
        report.check(
            entries.count == 5 && entries.allSatisfy { !$0.masked }, "uio-function-mask-leaves-entries",
            "entry mask bits \(entries.map { $0.masked ? 1 : 0 })")
        guard report.attempt("uio-function-unmask", { try rig.setFunctionMask(false) }) != nil else { return }
        report.expect("uio-function-unmask-clears-pba", (try? rig.table.readPBA()) ?? [], [0])

        // Disable: the model frees the vectors, the function leaves MSI-X mode.
        guard report.attempt("uio-model-disable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            for i in 0..<5 { try rig.model.freeIRQ(try rig.virq(i)) }
            try rig.model.freeIRQVectors()
            return true
        }) != nil else { return }
        let off = (try? rig.snapshot())
        report.check(
            off.map { $0.control & PCIReg.MSIX.enable == 0 && $0.entries.allSatisfy(\.masked) } ?? false
                && !rig.model.isMSIXEnabled,
            "uio-model-disable", off.map { "\($0)" } ?? "unreadable")
        raiseAndExpect(rig, 1, .notPending, pba: 0, name: "uio-disabled-raise-no-pba")
        report.check(rig.model.warnings.isEmpty, "uio-model-no-warnings", "\(rig.model.warnings)")
        report.info("handler calls (none expected: the real messages never reach this model) \(counts.snapshot)")
    }

    /// Every entry as the model wrote it: the cached message, masked unless requested.
    func compareWithModel(_ rig: any ModelRig, _ snap: MSIXSnapshot, requested: Set<Int>, name: String) {
        var mismatches: [String] = []
        for (i, e) in snap.entries.enumerated() {
            guard let d = rig.model.descriptor(index: i) else {
                mismatches.append("entry \(i): no descriptor")
                continue
            }
            let m = d.message
            if e.addressLo != m.addressLo || e.addressHi != m.addressHi || e.data != m.data {
                mismatches.append("entry \(i): hardware \(hx(e.addressLo)):\(hx(e.addressHi)):\(hx(e.data)), model \(m)")
            }
            if e.masked == requested.contains(i) {
                mismatches.append("entry \(i): masked \(e.masked), expected \(!requested.contains(i))")
            }
        }
        report.check(
            mismatches.isEmpty, name,
            mismatches.isEmpty ? "5 entries = the model's cached messages; unmasked \(requested.sorted())"
                : mismatches.joined(separator: "; "))
    }

    /// Requested entries carry VT-d remappable messages naming distinct IRTEs (the model's).
    func checkRemappable(_ rig: any ModelRig, _ snap: MSIXSnapshot) {
        var irtes: [Int] = []
        for e in snap.entries {
            let decoded = X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data))
            if case .remappable(let r) = decoded { irtes.append(r.irteIndex) }
        }
        report.check(
            irtes.count == 5 && Set(irtes).count == 5, "uio-table-remappable-format",
            "decoded IRTE indexes \(irtes)")
    }

    func raiseAndExpect(_ rig: any ModelRig, _ vector: Int, _ expected: RaiseOutcome, pba: UInt64, name: String) {
        guard let r = report.attempt(name, { try rig.raise(vector) }) else { return }
        let now = (try? rig.table.readPBA()) ?? []
        report.check(
            r.outcome == expected && now == [pba], name,
            "raise vector \(vector): \(r.detail); PBA \(now.map(hx)), expected \(hx(pba))")
    }
}

/// Counts handler calls per Linux irq (thread-safe: handlers may run on any thread).
final class HandlerTally: Sendable {
    private let counts = PackageMutex<[Int: Int]>([:])
    func hit(_ virq: Int) { counts.withLock { $0[virq, default: 0] += 1 } }
    var snapshot: [Int: Int] { counts.withLock { $0 } }
}
