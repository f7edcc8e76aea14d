// Scenario model-vs-kernel: the real kernel's drivers bind their devices (guest with several
// CPUs in two NUMA nodes); the same driver calls replayed through the model, on mocks built
// from those devices' own config space, must give the same vectors — count, MSI or MSI-X,
// unmasked entries, managed or not, affinity hint, affinity, effective CPU, node, the spread of
// managed vectors, the table's message format and destination. The model's machine copies the
// guest's CPUs, nodes, APIC destination mode and, from the irq_matrix trace taken before the
// drivers loaded, the vectors the kernel already held (so "the CPU with the most free vectors"
// means the same on both sides). Vector numbers depend on the matrix's whole history and are
// checked only for consistency (in the device range, distinct per CPU).
//
// The driver calls, as Linux 6.1's drivers make them:
// - nvme (drivers/nvme/host/pci.c): at enable, one vector of any type for the admin queue,
//   requested; when setting up I/O queues, that vector is freed and the driver asks for one
//   vector per I/O queue plus one for the admin queue, with PCI_IRQ_ALL_TYPES|PCI_IRQ_AFFINITY,
//   one pre-vector (the admin queue, not spread) and a calc_sets callback that puts every queue
//   in one set (no write or poll queues by default). The I/O queue count is the number of
//   possible CPUs, cut to what the controller grants (Set Features, Number of Queues). Then
//   the admin vector and one vector per I/O queue are requested in queue order.
// - e1000e (drivers/net/ethernet/intel/e1000e/netdev.c): in MSI-X mode the 82574 gets three
//   vectors (receive, transmit, other) through pci_enable_msix_range with entries 0, 1, 2 and
//   min = max = 3 — no affinity, so nothing is managed; they are requested (rx, tx, other) when
//   the interface is brought up.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

struct ModelVsKernelScenario {
    let report: Report

    /// One device in bind order: "nvme/LIMIT@BDF" (LIMIT: the I/O queue pairs the controller
    /// grants) or "e1000e@BDF".
    struct Bound {
        var driver: String
        var queueLimit: Int?
        var address: PCIAddress
    }

    /// The kernel's view of one vector.
    struct KernelVector {
        var irq: Int
        var index: Int
        var managed: Bool
        var hint: Set<Int>
        var affinity: Set<Int>
        var effective: Set<Int>
        var node: Int
        var entry: MSIXEntry?
    }

    func run(trace: String, devices spec: String) {
        var bound: [Bound] = []
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: "@")
            guard parts.count == 2, let a = try? PCIAddress(parsing: String(parts[1])) else {
                report.fail("mvk-devices", "cannot parse '\(item)'")
                return
            }
            let d = parts[0].split(separator: "/")
            bound.append(Bound(driver: String(d[0]), queueLimit: d.count > 1 ? Int(d[1]) : nil, address: a))
        }
        // The guest's machine.
        let cpus = CPUList.parse(readText("/sys/devices/system/cpu/possible")?.trimmingWhitespace() ?? "0").count
        var cpuNodes = Array(repeating: 0, count: cpus)
        for name in listDir("/sys/devices/system/node") where name.hasPrefix("node") {
            guard let n = Int(name.dropFirst(4)) else { continue }
            for c in CPUList.parse(readText("/sys/devices/system/node/\(name)/cpulist")?.trimmingWhitespace() ?? "") where c < cpus {
                cpuNodes[c] = n
            }
        }
        guard let (mode, witness) = kernelDestinationMode() else {
            report.fail("mvk-apic-mode", "cannot read the DMAR unit's fault-event address through /dev/mem (iomem=relaxed?)")
            return
        }
        report.info("guest: \(cpus) CPUs, nodes \(cpuNodes), APIC destination mode \(mode) (\(witness))")
        guard let before = KernelVectors.read(trace) else {
            report.fail("mvk-kernel-vectors", "no irq_matrix events in \(trace)")
            return
        }
        report.pass("mvk-kernel-vectors", "before the drivers: \(before.summary(cpus: cpus))")
        guard let platform = report.attempt("mvk-model-platform", {
            try MSIPlatform(MSIPlatformConfiguration(cpuCount: cpus, destinationMode: mode, legacyIRQs: 0, cpuNodes: cpuNodes))
        }) else { return }
        before.seed(platform, everUsed: false)

        // Replay each driver's calls in bind order.
        var replays: [(Bound, MockRig)] = []
        for b in bound {
            let config = readConfig(b.address)
            let node = Int(readText("/sys/bus/pci/devices/\(b.address)/numa_node")?.trimmingWhitespace() ?? "") ?? -1
            guard config.count >= 256,
                  let rig = report.attempt("mvk-mock-\(b.address)", {
                      try MockRig(config: config, address: b.address, platform: platform, node: node)
                  })
            else { report.fail("mvk-mock-\(b.address)", "config space of \(b.address) unreadable"); continue }
            let calls = report.attempt("mvk-replay-\(b.driver)-\(b.address)") { () throws -> String in
                try replay(b, on: rig.model, possibleCPUs: cpus)
            }
            guard let calls else { continue }
            report.pass("mvk-replay-\(b.driver)-\(b.address)", calls)
            replays.append((b, rig))
        }
        for (b, rig) in replays { compare(b, rig, platform: platform, mode: mode) }
    }

    /// The driver's calls (see the file comment); returns them as text.
    func replay(_ b: Bound, on model: MSIDevice, possibleCPUs: Int) throws -> String {
        switch b.driver {
        case "nvme":
            // nvme_pci_enable + nvme_pci_configure_admin_queue
            _ = try model.allocIRQVectors(min: 1, max: 1, flags: .allTypes)
            try model.requestIRQ(try model.irqVector(0))
            // nvme_setup_io_queues: nvme_max_io_queues, cut by the controller's grant
            let queues = min(possibleCPUs, b.queueLimit ?? possibleCPUs)
            try model.freeIRQ(try model.irqVector(0))
            try model.freeIRQVectors()
            let affinity = IRQAffinity(preVectors: 1, calculateSets: { [$0] })  // nvme_calc_irq_sets, no read/poll queues
            let got = try model.allocIRQVectors(min: 1, max: 1 + queues, flags: [.allTypes, .affinity], affinity: affinity)
            for v in 0..<got { try model.requestIRQ(try model.irqVector(v)) }
            return "pci_alloc_irq_vectors(1, 1, ALL_TYPES); request 0; free 0; pci_free_irq_vectors; "
                + "pci_alloc_irq_vectors_affinity(1, \(1 + queues), ALL_TYPES|AFFINITY, pre_vectors 1, one set) = \(got); "
                + "request 0…\(got - 1)"
        case "e1000e":
            let got = try model.enableMSIXRange(entries: [0, 1, 2], min: 3, max: 3)
            for v in 0..<got { try model.requestIRQ(try model.irqVector(v)) }
            return "pci_enable_msix_range(entries 0,1,2, 3, 3) = \(got); request 0 (rx), 1 (tx), 2 (other)"
        default:
            throw LabError("no replay for driver \(b.driver)")
        }
    }

    // MARK: - Comparison

    func compare(_ b: Bound, _ rig: MockRig, platform: MSIPlatform, mode: X86DestinationMode) {
        let kernel = kernelVectors(b.address)
        let slot = b.address.description
        let kinds = Set(listDir("/sys/bus/pci/devices/\(slot)/msi_irqs").compactMap {
            readText("/sys/bus/pci/devices/\(slot)/msi_irqs/\($0)")?.trimmingWhitespace()
        })
        let modelKind = rig.model.isMSIXEnabled ? "msix" : rig.model.isMSIEnabled ? "msi" : "none"
        let modelEntries = (try? rig.table.readEntries()) ?? []
        var fields: [(name: String, kernel: String, model: String)] = []
        fields.append(("vectors granted", "\(kernel.count)", "\(rig.model.descriptors().count)"))
        fields.append(("MSI or MSI-X", kinds.sorted().joined(separator: ","), modelKind))
        var table: [String] = []
        for k in kernel {
            let i = k.index
            guard let d = rig.model.descriptor(index: i), let irq = platform.irq(d.virq) else {
                fields.append(("vector \(i)", "irq \(k.irq)", "no descriptor"))
                continue
            }
            let m = modelEntries.indices.contains(i) ? modelEntries[i] : nil
            let kFormat = k.entry.map { destination(of: $0, mode: mode) }
            let mFormat = m.map { destination(of: $0, mode: mode) }
            let mEff = irq.assignedCPU.map { Set([$0]) } ?? []
            fields.append(("v\(i) managed", "\(k.managed)", "\(irq.isManaged)"))
            fields.append(("v\(i) affinity_hint", fmt(k.hint), fmt([])))  // the model has no hints: no driver here sets one
            fields.append(("v\(i) smp_affinity_list", fmt(k.affinity), fmt(Set(irq.affinity))))
            fields.append(("v\(i) effective_affinity_list", fmt(k.effective), fmt(mEff)))
            fields.append(("v\(i) node", "\(k.node)", "\(irq.node)"))
            fields.append(("v\(i) entry unmasked", "\(k.entry.map { !$0.masked } ?? false)", "\(m.map { !$0.masked } ?? false)"))
            fields.append(("v\(i) message format", kFormat?.format ?? "?", mFormat?.format ?? "?"))
            fields.append(("v\(i) destination CPU", fmt(kFormat?.cpus ?? []), fmt(mFormat?.cpus ?? [])))
            // The kernel against itself: the message goes where /proc says the vector is.
            fields.append(("v\(i) destination = effective (kernel)", fmt(kFormat?.cpus ?? []), fmt(k.effective)))
            table.append("| \(i) | \(k.managed ? "managed" : "-") | \(fmt(k.affinity)) / \(fmt(Set(irq.affinity))) | "
                + "\(fmt(k.effective)) / \(fmt(mEff)) | \(k.node) / \(irq.node) | "
                + "\(kFormat.map { "\($0.format) → \(fmt($0.cpus))" } ?? "?") / \(mFormat.map { "\($0.format) → \(fmt($0.cpus))" } ?? "?") |")
        }
        // Vector numbers: consistency only.
        let vectorProblems = vectorConsistency("kernel", kernel.compactMap(\.entry), mode: mode)
            + vectorConsistency("model", modelEntries.prefix(kernel.count).filter { !$0.masked }, mode: mode)
        let spreadK = kernel.filter(\.managed).map { fmt($0.affinity) }
        let spreadM = rig.model.descriptors().compactMap { platform.irq($0.virq) }.filter(\.isManaged).map { fmt(Set($0.affinity)) }
        report.info("\(b.driver) \(slot) managed spread: kernel \(spreadK), model \(spreadM)")
        report.info("\(b.driver) \(slot) side by side (kernel / model):")
        report.info("| vector | managed | smp_affinity_list | effective | node | table message → CPU |")
        for line in table { report.info(line) }
        let agree = fields.filter { $0.kernel == $0.model }
        for f in fields where f.kernel != f.model {
            report.fail("mvk-\(b.driver)-\(slot)-disagree", "\(f.name): kernel \(f.kernel), model \(f.model)")
        }
        report.check(vectorProblems.isEmpty, "mvk-\(b.driver)-\(slot)-vector-numbers-consistent",
                     vectorProblems.isEmpty ? "kernel and model vectors in 0x20…0xeb, distinct per CPU" : vectorProblems.joined(separator: "; "))
        report.check(
            agree.count == fields.count && !kernel.isEmpty, "mvk-\(b.driver)-\(slot)",
            "model-vs-kernel: \(b.driver) \(agree.count)/\(fields.count) fields agree")
    }

    /// How the kernel addresses CPUs in compatibility-format messages (flat logical on 6.1 with
    /// up to 8 CPUs, physical on later kernels), read from an MSI it programmed itself outside
    /// the compared devices: the IOMMU's fault-event interrupt (DMAR Fault Event Address, bit 2).
    func kernelDestinationMode() -> (X86DestinationMode, String)? {
        guard let (base, lo) = dmarRegister(0x40), lo & 0xFFF0_0000 == 0xFEE0_0000 else { return nil }
        return (lo & (1 << 2) != 0 ? .logical : .physical,
                "from the DMAR unit at \(hx(base)): its fault-event MSI address \(hx(lo)), programmed by the kernel")
    }

    func fmt(_ s: Set<Int>) -> String { s.isEmpty ? "(none)" : CPUMask(s).description }

    /// The message's format and the CPUs its destination names.
    func destination(of e: MSIXEntry, mode: X86DestinationMode) -> (format: String, cpus: Set<Int>) {
        switch X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) {
        case .compatibility(let m):
            // QEMU's APIC IDs are the CPU numbers here (one CPU per socket); flat logical IDs are 1 << CPU.
            let cpus = m.destinationMode == .physical ? Set([Int(m.destination)])
                : Set((0..<8).filter { m.destination & (1 << UInt32($0)) != 0 })
            return ("compatibility, \(m.destinationMode), vector \(hx(m.vector))", cpus)
        case .remappable(let r): return ("remappable, IRTE \(r.irteIndex)", [])
        case .notAnInterrupt: return ("not an interrupt", [])
        }
    }

    func vectorConsistency(_ side: String, _ entries: [MSIXEntry], mode: X86DestinationMode) -> [String] {
        var seen: Set<CPUVector> = []
        var problems: [String] = []
        for e in entries where !e.masked {
            guard case .compatibility(let m) = X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) else { continue }
            let cpu = destination(of: e, mode: mode).cpus.first ?? -1
            if !(0x20..<0xEC).contains(m.vector) { problems.append("\(side): vector \(hx(m.vector)) outside the device range") }
            if !seen.insert(CPUVector(cpu: cpu, vector: m.vector)).inserted { problems.append("\(side): CPU\(cpu).\(hx(m.vector)) twice") }
        }
        return problems
    }

    /// The kernel's vectors of `address`, by entry index: /proc/irq/N and the table.
    func kernelVectors(_ address: PCIAddress) -> [KernelVector] {
        let slot = address.description
        let proc = ProcInterrupts.read()
        let rows = proc?.rows(device: address) ?? []
        var entries: [MSIXEntry] = []
        if let handle = try? DeviceHandle.open(address, intent: .readOnly), let layout = try? handle.msixLayout(),
           let access = try? handle.msixTable(layout),
           let cap = try? handle.config.capabilityList().first(PCICapabilityID.msix),
           let table = try? MSIXTable(config: handle.config, capOffset: cap.offset, region: { _ in access.region }) {
            entries = (try? table.readEntries()) ?? []
        } else {
            report.fail("mvk-kernel-table-\(slot)", "cannot read the MSI-X table of \(slot) (boot with iomem=relaxed)")
        }
        var out: [KernelVector] = []
        for name in listDir("/sys/bus/pci/devices/\(slot)/msi_irqs") {
            guard let irq = Int(name) else { continue }
            let index = rows.first { $0.irq == irq }?.source?.index ?? -1
            let dir = "/proc/irq/\(irq)"
            let affinityText = readText("\(dir)/smp_affinity_list")?.trimmingWhitespace() ?? ""
            out.append(KernelVector(
                irq: irq, index: index, managed: isManaged(irq: irq, affinity: affinityText),
                hint: hexMask(readText("\(dir)/affinity_hint") ?? ""), affinity: CPUList.parse(affinityText),
                effective: CPUList.parse(readText("\(dir)/effective_affinity_list")?.trimmingWhitespace() ?? ""),
                node: Int(readText("\(dir)/node")?.trimmingWhitespace() ?? "") ?? -99,
                entry: entries.indices.contains(index) ? entries[index] : nil))
        }
        return out.sorted { $0.index < $1.index }
    }

    /// The kernel refuses affinity changes of managed interrupts (write_irq_affinity: EIO on
    /// 6.1, EPERM on 6.12); writing back the current list changes nothing for the others.
    func isManaged(irq: Int, affinity: String) -> Bool {
        let fd = open("/proc/irq/\(irq)/smp_affinity_list", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array((affinity + "\n").utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return n < 0 && (errno == EIO || errno == EPERM)
    }

    /// A hex cpumask ("00", "0000000f", "ff,ffffffff") as a set.
    func hexMask(_ text: String) -> Set<Int> {
        let hex = text.trimmingWhitespace().split(separator: ",").joined()
        var out: Set<Int> = []
        for (i, ch) in hex.reversed().enumerated() {
            guard let v = Int(String(ch), radix: 16) else { continue }
            for bit in 0..<4 where v & (1 << bit) != 0 { out.insert(4 * i + bit) }
        }
        return out
    }

    func readConfig(_ address: PCIAddress) -> [UInt8] {
        let fd = open("/sys/bus/pci/devices/\(address)/config", O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buf.prefix(n)) : []
    }
}
