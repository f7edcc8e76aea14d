// Scenario delivery (guest booted with intremap=off): messages the kernel model programmed
// into a real device arrive, on the CPU and vector the model's vector matrix chose. The model
// runs on a platform without remapping whose matrix holds every vector the guest kernel ever
// used (from its irq_matrix trace), so the vectors it picks are free in the guest and never
// had a handler: an interrupt there makes the guest's common_interrupt() report
// "CPU.VECTOR No irq handler for vector". The 82574 behind uio_pci_generic raises each entry
// (IVAR/IMS/ICS); masked entries, Function Mask and MSI-X Enable must keep the message in, a
// later unmask must let exactly one out; no irq's /proc/interrupts count may move. Then the
// same for MSI, programmed through config space.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

/// Totals of the /proc/interrupts rows a stray message could move: every numbered irq, and
/// ERR, MIS and SPU. (LOC, RES, CAL and the other per-CPU system rows move by themselves.)
struct IRQTotals {
    var rows: [String: UInt64] = [:]

    static func read() -> IRQTotals {
        var t = IRQTotals()
        guard let text = readText("/proc/interrupts") else { return t }
        var lines = text.split(separator: "\n")[...]
        let cpus = lines.popFirst()?.split(separator: " ").filter { $0.hasPrefix("CPU") }.count ?? 0
        for line in lines {
            let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = tokens.first, first.hasSuffix(":") else { continue }
            let label = String(first.dropLast())
            guard Int(label) != nil || ["ERR", "MIS", "SPU"].contains(label) else { continue }
            t.rows[label] = tokens.dropFirst().prefix(cpus).prefix { UInt64($0) != nil }.compactMap { UInt64($0) }.reduce(0, +)
        }
        return t
    }

    /// A snapshot taken once the console's own interrupts (ttyS0 transmitting the lines just
    /// printed) have stopped: output drained, then two reads 30 ms apart that agree (at most 1 s).
    static func settled() -> IRQTotals {
        tcdrain(1)
        var last = read()
        for _ in 0..<33 {
            sleepMs(30)
            let now = read()
            if now.rows == last.rows { return now }
            last = now
        }
        return last
    }

    /// Rows whose total changed, "label +delta".
    func moved(since before: IRQTotals) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (label, v) in rows where v != before.rows[label] { out[label] = v &- (before.rows[label] ?? 0) }
        return out
    }
}

struct DeliveryScenario {
    let address: PCIAddress
    let report: Report
    let log: KernelLog
    let pacer = UnhandledVectorPacer()

    init(address: PCIAddress, report: Report) throws {
        self.address = address
        self.report = report
        log = try KernelLog()
    }

    func run() {
        let cmdline = readText("/proc/cmdline") ?? ""
        report.check(cmdline.contains("intremap=off"), "delivery-booted-without-remapping", cmdline.trimmingWhitespace())
        guard let kernel = KernelVectors.read() else {
            report.fail("delivery-kernel-vectors", "no irq_matrix events in \(KernelVectors.tracePath) (boot with trace_event=irq_matrix:*)")
            return
        }
        let cpus = onlineCPUCount()
        report.check(
            kernel.onlineEvents >= cpus && !kernel.system.isEmpty, "delivery-kernel-vectors",
            "\(kernel.events) irq_matrix events since boot (\(kernel.onlineEvents) CPUs online, system vectors "
                + "\(kernel.system.filter { $0 >= X86Vectors.firstExternal }.sorted().map(hx))): \(kernel.summary(cpus: cpus))")
        guard let platform = report.attempt("delivery-model-platform", {
            try MSIPlatform(MSIPlatformConfiguration(cpuCount: cpus, legacyIRQs: 0))
        }) else { return }
        kernel.seed(platform, everUsed: true)
        guard let rig = report.attempt("delivery-open", { try UIOE1000ERig(address, platform: platform) }) else { return }
        report.pass("delivery-open", rig.name)
        let intxIRQ = Int(readText("/sys/bus/pci/devices/\(address)/irq")?.trimmingWhitespace() ?? "") ?? -1

        // MSI-X: enable 5, request each; the model picks CPU and vector for each entry.
        guard let targets = enableAndRequest(rig, count: 5, kernel: kernel, tag: "msix") else { return }
        for (i, t) in targets.enumerated() {
            observe("delivery-msix-raise-\(i)", expect: [t]) { try describe(rig.raise(i)) }
        }

        // A masked entry keeps the message (PBA bit); unmasking lets exactly one out.
        let v = 2
        guard report.attempt("delivery-mask-entry", { try rig.model.maskIRQ(try rig.virq(v)) }) != nil else { return }
        observe("delivery-masked-raise-no-message", expect: []) {
            let r = try rig.raise(v)
            let pba = try rig.table.readPBA()
            guard pba == [1 << UInt64(v)] else { throw LabError("PBA \(pba.map(hx)) after a masked raise of entry \(v)") }
            return "\(r.detail); PBA \(pba.map(hx))"
        }
        observe("delivery-unmask-sends-one", expect: [targets[v]]) {
            try rig.model.unmaskIRQ(try rig.virq(v))
            return "unmasked entry \(v); PBA now \(try rig.table.readPBA().map(hx))"
        }

        // Function Mask: both raises held, both sent once when it clears.
        observe("delivery-function-masked-raises-no-message", expect: []) {
            try rig.setFunctionMask(true)
            let a = try rig.raise(0), b = try rig.raise(4)
            let pba = try rig.table.readPBA()
            guard pba == [1 | 1 << 4] else { throw LabError("PBA \(pba.map(hx)) after function-masked raises of 0 and 4") }
            return "Function Mask set; \(a.detail), \(b.detail); PBA \(pba.map(hx))"
        }
        observe("delivery-function-unmask-sends-each-once", expect: [targets[0], targets[4]]) {
            try rig.setFunctionMask(false)
            return "Function Mask cleared; PBA now \(try rig.table.readPBA().map(hx))"
        }

        // MSI-X Enable off: the 82574 falls back to INTx (uio_pci_generic counts it); no message.
        guard report.attempt("delivery-msix-disable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            for i in 0..<5 { try rig.model.freeIRQ(try rig.virq(i)) }
            try rig.model.freeIRQVectors()
            return true
        }) != nil else { return }
        observe("delivery-msix-disabled-raise-intx-only", expect: [], intx: intxIRQ) { try describe(rig.raise(1)) }
        // Enabled again with PCI_IRQ_AFFINITY, one pre-vector and two managed vectors: the model
        // spreads those over both CPUs, so messages must reach CPU 0 as well as CPU 1.
        guard let again = enableAndRequest(rig, count: 3, kernel: kernel, tag: "msix-managed", spread: true) else { return }
        report.check(Set(again.map(\.cpu)).count == min(3, cpus), "delivery-msix-managed-spread",
                     "pre-vector on \(again[0]), managed vectors on \(again.dropFirst()) (one CPU each)")
        for (i, t) in again.enumerated() {
            observe("delivery-msix-managed-raise-\(i)", expect: [t]) { try describe(rig.raise(i)) }
        }
        _ = report.attempt("delivery-msix-managed-disable") { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            for i in 0..<3 { try rig.model.freeIRQ(try rig.virq(i)) }
            try rig.model.freeIRQVectors()
            return true
        }

        // MSI through config space.
        msi(rig, kernel: kernel, intxIRQ: intxIRQ)
        report.check(rig.model.warnings.isEmpty && platform.warnings.isEmpty, "delivery-model-no-warnings",
                     "device \(rig.model.warnings), platform \(platform.warnings)")
        report.info("rate limit: waited \(pacer.waitedMs) ms in total to stay under 10 reports per 5 s")
    }

    /// Enables `count` MSI-X vectors through the model and requests each; checks that every
    /// entry holds the model's compatibility-format message for a vector the kernel never used.
    /// `spread`: with PCI_IRQ_AFFINITY (managed vectors spread over the CPUs).
    func enableAndRequest(_ rig: UIOE1000ERig, count: Int, kernel: KernelVectors, tag: String,
                          spread: Bool = false) -> [CPUVector]? {
        guard report.attempt("delivery-\(tag)-enable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            if spread {
                // One pre-vector (not spread, as nvme's admin queue), the rest one per CPU.
                _ = try rig.model.allocIRQVectors(min: count, max: count, flags: [.msix, .affinity],
                                                  affinity: IRQAffinity(preVectors: 1))
            } else {
                _ = try rig.model.allocIRQVectors(min: count, max: count, flags: .msix)
            }
            for i in 0..<count { try rig.model.requestIRQ(try rig.virq(i)) }
            return true
        }) != nil else { return nil }
        var targets: [CPUVector] = []
        var problems: [String] = []
        guard let entries = try? rig.table.readEntries() else {
            report.fail("delivery-\(tag)-table", "cannot read the table")
            return nil
        }
        for i in 0..<count {
            guard let virq = try? rig.virq(i), let irq = rig.model.platform.irq(virq),
                  let cpu = irq.assignedCPU, let vector = irq.assignedVector else {
                problems.append("entry \(i): the model assigned no vector")
                continue
            }
            let t = CPUVector(cpu: cpu, vector: vector)
            targets.append(t)
            let e = entries[i]
            let decoded = X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data))
            guard case .compatibility(let m) = decoded, !e.masked, m.vector == vector,
                  m.destinationMode == .physical, Int(m.destination) == cpu else {
                problems.append("entry \(i): table \(hx(e.addressLo))/\(hx(e.data)) masked \(e.masked) -> \(decoded), model \(t)")
                continue
            }
            if !kernel.isPristine(cpu: cpu, vector: vector) {
                problems.append("entry \(i): \(t) is used by the guest kernel (or was)")
            }
            report.info("  entry \(i): irq \(virq) -> \(t); table \(hx(e.addressLo))/\(hx(e.data)), APIC ID \(m.destination); "
                + "guest kernel on CPU\(cpu): in use \((kernel.allocated[cpu] ?? []).sorted().map(hx)), never \(hx(vector))")
        }
        report.check(
            problems.isEmpty && targets.count == count && Set(targets).count == count, "delivery-\(tag)-vectors-free",
            problems.isEmpty ? "\(count) entries, compatibility format, each on the model's CPU.vector \(targets), "
                + "none ever assigned by the guest kernel (irq_matrix trace)" : problems.joined(separator: "; "))
        return problems.isEmpty ? targets : nil
    }

    func msi(_ rig: UIOE1000ERig, kernel: KernelVectors, intxIRQ: Int) {
        guard let offset = rig.msiOffset else {
            report.fail("delivery-msi-capability", "no MSI capability on \(address)")
            return
        }
        let config = rig.table.config
        guard report.attempt("delivery-msi-enable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            let n = try rig.model.allocIRQVectors(min: 1, max: 1, flags: .msi)
            guard n == 1 else { throw LabError("\(n) MSI vectors") }
            try rig.model.requestIRQ(try rig.model.irqVector(0))
            return true
        }) != nil else { return }
        guard let virq = try? rig.model.irqVector(0), let irq = rig.model.platform.irq(virq),
              let cpu = irq.assignedCPU, let vector = irq.assignedVector,
              let control = try? config.read16(offset + PCIReg.MSI.flags),
              let lo = try? config.read32(offset + PCIReg.MSI.addressLo),
              let hi = try? config.read32(offset + PCIReg.MSI.addressHi),
              let data = try? config.read16(offset + PCIReg.MSI.data64)
        else {
            report.fail("delivery-msi-enable", "no vector or unreadable MSI capability")
            return
        }
        let t = CPUVector(cpu: cpu, vector: vector)
        let decoded = X86MSIFormat.decode(MSIMessage(addressLo: lo, addressHi: hi, data: UInt32(data)))
        var ok = control & PCIReg.MSI.enable != 0 && rig.model.isMSIEnabled && kernel.isPristine(cpu: cpu, vector: vector)
        if case .compatibility(let m) = decoded { ok = ok && m.vector == vector && Int(m.destination) == cpu } else { ok = false }
        report.check(
            ok, "delivery-msi-programmed",
            "MSI control \(hx(control)), address \(hx(hi)):\(hx(lo)), data \(hx(data)) (config space) -> \(brief(decoded)); "
                + "model irq \(virq) on \(t), never used by the guest kernel")
        observe("delivery-msi-raise", expect: [t]) { try describe(rig.raise(0)) }
        observe("delivery-msi-raise-again", expect: [t]) { try describe(rig.raise(3)) }
        guard report.attempt("delivery-msi-disable", { () throws -> Bool in
            E1000E.letThrottlingTimersExpire()
            try rig.model.freeIRQ(virq)
            try rig.model.freeIRQVectors()
            return true
        }) != nil else { return }
        let after = (try? config.read16(offset + PCIReg.MSI.flags)) ?? 0xFFFF
        report.check(after & PCIReg.MSI.enable == 0 && !rig.model.isMSIEnabled, "delivery-msi-disabled",
                     "MSI control \(hx(after)) (config space)")
        observe("delivery-msi-disabled-raise-intx-only", expect: [], intx: intxIRQ) { try describe(rig.raise(0)) }
    }

    func describe(_ r: (outcome: RaiseOutcome, detail: String)) -> String { r.detail }
}

/// A decoded x86 message in a few words.
func brief(_ d: X86DecodedMessage) -> String {
    switch d {
    case .compatibility(let m):
        "compatibility format, \(m.destinationMode == .physical ? "APIC ID" : "logical destination") \(hx(m.destination)), "
            + "vector \(hx(m.vector))\(m.deliveryMode == 0 ? "" : ", delivery mode \(m.deliveryMode)")"
    case .remappable(let r): "remappable format, IRTE \(r.irteIndex)"
    case .notAnInterrupt: "not an interrupt message"
    }
}

extension DeliveryScenario {

    /// Runs `action` (a raise or an unmask) and checks the guest kernel's reaction: exactly the
    /// "No irq handler" reports in `expect` (as a multiset), no "callbacks suppressed", and no
    /// /proc/interrupts row moved — except the INTx irq `intx`, which must move by exactly one.
    func observe(_ name: String, expect: [CPUVector], intx: Int? = nil, _ action: () throws -> String) {
        pacer.beforeRaise(expecting: max(expect.count, 1))
        let before = IRQTotals.settled()
        _ = log.drain()
        let detail: String
        do { detail = try action() } catch {
            report.fail(name, "\(error)")
            return
        }
        let records = log.collect(timeoutMs: expect.isEmpty ? 400 : 2000, settleMs: 150) { recs in
            !expect.isEmpty && recs.compactMap { CPUVector(unhandledReport: $0.text) }.count >= expect.count
        }
        let after = IRQTotals.read()
        let got = records.compactMap { CPUVector(unhandledReport: $0.text) }
        pacer.saw(got.count)
        let suppressed = records.filter { $0.text.contains("suppressed") }.map(\.text)
        var moved = after.moved(since: before)
        var intxNote = ""
        if let intx {
            let d = moved.removeValue(forKey: String(intx)) ?? 0
            intxNote = "; INTx irq \(intx) +\(d)"
            if d != 1 { moved["\(intx) (INTx, expected +1)"] = d }
        }
        let others = records.filter { CPUVector(unhandledReport: $0.text) == nil }.map(\.text)
        report.check(
            got.sorted() == expect.sorted() && suppressed.isEmpty && moved.isEmpty, name,
            "\(detail); expected \(expect.isEmpty ? "no report" : "\(expect)"), kernel reported \(got.isEmpty ? "nothing" : "\(got)")"
                + (suppressed.isEmpty ? "" : "; RATE LIMITED: \(suppressed)")
                + "; /proc/interrupts moved: \(moved.isEmpty ? "none" : moved.map { "\($0.key) +\($0.value)" }.sorted().joined(separator: ", "))"
                + intxNote + (others.isEmpty ? "" : "; other kernel lines: \(others.prefix(3))"))
    }
}
