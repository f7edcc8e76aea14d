// Scenario vfio-e1000e: an emulated 82574 bound to vfio-pci, driven through DeviceIO's VFIO
// backend exactly as a userspace driver would (group flow, regions, BAR mappings, SET_IRQS
// with eventfds), with the device itself raising each MSI-X vector.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

struct VFIOScenario {
    let address: PCIAddress
    let report: Report
    let sysfs = SysfsPCI()

    func run() {
        report.info("vfio-e1000e on \(address), kernel \(kernelVersion().major).\(kernelVersion().minor)")
        cdevFlow()
        guard let device = report.attempt("vfio-group-open", {
            try VFIODevice.open(address, flow: .group, intent: .allowWrites, environment: .live)
        }) else { return }
        report.check(
            device.flow == .group && device.group == sysfs.iommuGroup(of: address), "vfio-group-open",
            "flow \(device.flow), group \(device.group.map(String.init) ?? "nil"), sysfs iommu_group "
                + "\(sysfs.iommuGroup(of: address).map(String.init) ?? "nil"), IOMMU type \(device.iommuType.map(String.init) ?? "nil")")
        // A group can be open once: a second open (another process in real life) is refused.
        do {
            _ = try VFIODevice.open(address, flow: .group, intent: .readOnly, environment: .live)
            report.fail("vfio-group-busy", "a second open of group \(device.group ?? -1) succeeded")
        } catch {
            report.check(
                error == .groupBusy(group: device.group ?? -1), "vfio-group-busy", "\(error)")
        }
        report.check(
            device.info.flags.contains(.pci) && device.info.regionCount >= 9 && device.info.irqCount == 5,
            "vfio-device-info",
            "flags \(hx(device.info.flags.rawValue)) (PCI\(device.info.flags.contains(.reset) ? ", RESET" : "")), "
                + "\(device.info.regionCount) regions, \(device.info.irqCount) irq indexes")
        guard let layout = regions(device) else { return }
        guard let (bar0, bar3) = mapBARs(device, layout) else { return }
        guard enableDecodeAndMaster(device) else { return }
        irqInfo(device)
        interrupts(device, bar0: bar0, bar3: bar3, layout: layout)
    }

    // MARK: - Open

    /// The per-device cdev flow: used when the kernel has it, else a SKIP with the reason.
    func cdevFlow() {
        do {
            let d = try VFIODevice.open(address, flow: .cdev, intent: .readOnly, environment: .live)
            report.pass("vfio-cdev-open", "flow \(d.flow), \(d.info.regionCount) regions")
        } catch let DeviceIOError.noDeviceCdev(_, reason) {
            let config = readText("/lab/kernel.config") ?? ""
            let options = ["CONFIG_VFIO_DEVICE_CDEV", "CONFIG_IOMMUFD"].map { opt in
                config.split(separator: "\n").first { $0.hasPrefix(opt + "=") || $0.hasPrefix("# \(opt) ") }
                    .map(String.init) ?? "\(opt) absent from the kernel config"
            }
            report.skip("vfio-cdev-open", "\(reason) [kernel: \(options.joined(separator: "; "))]")
        } catch {
            report.fail("vfio-cdev-open", "unexpected error: \(error)")
        }
    }

    // MARK: - Regions

    /// Region info and capability chains; returns the validated MSI-X layout.
    func regions(_ device: VFIODevice) -> MSIXLayout? {
        guard let config = report.attempt("vfio-config-region", { try device.regionInfo(VFIO.Region.config) }) else {
            return nil
        }
        report.check(
            config.flags.contains([.read, .write]) && !config.flags.contains(.mmap) && config.size >= 256,
            "vfio-config-region-not-mmappable",
            "flags \(hx(config.flags.rawValue)), size \(hx(config.size)), offset \(hx(config.offset))")
        if let bar0 = report.attempt("vfio-bar0-region", { try device.regionInfo(0) }) {
            report.check(
                bar0.flags.contains([.read, .write, .mmap]) && bar0.size == 0x20000, "vfio-bar0-region",
                "flags \(hx(bar0.flags.rawValue)), size \(hx(bar0.size))")
        }
        if let bar2 = report.attempt("vfio-bar2-io-region", { try device.regionInfo(2) }) {
            let plan = VFIOMappingPlan.make(region: bar2, msixTable: nil)
            report.check(
                !bar2.flags.contains(.mmap) && plan.strategy == .none, "vfio-bar2-io-region",
                "I/O BAR: flags \(hx(bar2.flags.rawValue)), size \(hx(bar2.size)); plan: \(plan)")
        }
        guard let layout = report.attempt("vfio-msix-layout", { try device.msixLayout() }) ?? nil else {
            report.fail("vfio-msix-layout", "no MSI-X capability")
            return nil
        }
        report.check(
            layout.tableBAR == 3 && layout.entries == E1000E.msixVectors && layout.pbaBAR == 3, "vfio-msix-layout",
            "table BAR\(layout.tableBAR)+\(hx(layout.tableOffset)) \(layout.entries) entries, "
                + "PBA BAR\(layout.pbaBAR)+\(hx(layout.pbaOffset))")
        guard let bar3 = report.attempt("vfio-msix-bar-caps", { try device.regionInfo(layout.tableBAR) }) else {
            return nil
        }
        // Since Linux 4.16 vfio-pci lists MSIX_MAPPABLE for the table's BAR (the table may be
        // mapped; MSI-X is still programmed only through SET_IRQS) and no sparse areas.
        report.check(
            bar3.flags.contains([.caps, .mmap]) && bar3.msixMappable && bar3.sparseAreas == nil,
            "vfio-msix-bar-caps",
            "BAR\(layout.tableBAR) flags \(hx(bar3.flags.rawValue)), MSIX_MAPPABLE \(bar3.msixMappable), "
                + "sparse \(bar3.sparseAreas.map { "\($0)" } ?? "none"), other caps \(bar3.otherCapabilities)")
        return layout
    }

    // MARK: - BARs

    func mapBARs(_ device: VFIODevice, _ layout: MSIXLayout) -> (VFIOBARRegion, VFIOBARRegion)? {
        guard let bar0 = report.attempt("vfio-map-bar0", { try device.bar(0, msix: layout) }) else { return nil }
        report.check(
            bar0.plan.strategy == .whole && bar0.isMapped(0..<bar0.size), "vfio-map-bar0",
            "\(bar0.plan.explanation); mapped \(bar0.mappedRanges)")
        guard let bar3 = report.attempt("vfio-map-msix-bar", { try device.bar(layout.tableBAR, msix: layout) }) else {
            return nil
        }
        report.check(
            bar3.plan.strategy == .whole && bar3.isMapped(layout.tableRange) && bar3.isMapped(layout.pbaRange),
            "vfio-map-msix-bar", "\(bar3.plan.explanation); mapped \(bar3.mappedRanges)")
        return (bar0, bar3)
    }

    func enableDecodeAndMaster(_ device: VFIODevice) -> Bool {
        report.attempt("vfio-command-mem-master") { () throws -> Bool in
            let config = try device.configSpace()
            let before = try config.read16(PCIReg.command)
            try config.write16(PCIReg.command, before | PCIReg.Command.memory | PCIReg.Command.busMaster)
            let after = try config.read16(PCIReg.command)
            let want = PCIReg.Command.memory | PCIReg.Command.busMaster
            return report.check(
                after & want == want, "vfio-command-mem-master",
                "Command \(hx(before)) -> \(hx(after)) (QEMU drops MSI writes while Bus Master is off)")
        } ?? false
    }

    // MARK: - IRQ info

    func irqInfo(_ device: VFIODevice) {
        guard let msix = report.attempt("vfio-irq-info-msix", { try device.irqInfo(.msix) }) else { return }
        // Before Linux 6.5 vfio-pci cannot add MSI-X vectors to an enabled index (NORESIZE);
        // from 6.5 on it can when the platform's MSI domain allocates vectors dynamically.
        let dynamic = kernelAtLeast(6, 5)
        report.check(
            msix.count == 5 && msix.flags.contains(.eventfd) && msix.flags.contains(.noResize) != dynamic,
            "vfio-irq-info-msix",
            "count \(msix.count), flags \(hx(msix.flags.rawValue)) (EVENTFD \(msix.flags.contains(.eventfd)), "
                + "NORESIZE \(msix.flags.contains(.noResize)), expected NORESIZE \(!dynamic) on this kernel)")
        for index in [VFIO.IRQIndex.intx, .msi, .err, .req] {
            if let info = try? device.irqInfo(index) {
                report.info("irq index \(index): count \(info.count), flags \(hx(info.flags.rawValue))")
            }
        }
        if let msi = try? device.irqInfo(.msi) {
            report.check(msi.count == 1 && msi.flags.contains(.eventfd), "vfio-irq-info-msi", "count \(msi.count)")
        }
    }

    // MARK: - Interrupts

    /// Every eventfd's count (read and cleared).
    func takeCounts(_ device: VFIODevice, vectors: Int = E1000E.msixVectors) -> [UInt64] {
        (0..<vectors).map { v in (try? device.takeEventCount(v) ?? 0) ?? 0 }
    }

    /// Waits for any attached eventfd (up to `timeoutMs`), then a little longer to catch
    /// stragglers, and returns every vector's count.
    func collect(_ device: VFIODevice, timeoutMs: Int = 2000) -> [UInt64] {
        let fds = (0..<E1000E.msixVectors).compactMap { device.eventFD(forVector: $0)?.fd }
        _ = pollReadable(fds, timeoutMs: timeoutMs)
        sleepMs(50)
        return takeCounts(device)
    }

    func procCounts() -> [UInt64] {
        let proc = ProcInterrupts.read()
        return (0..<E1000E.msixVectors).map { proc?.row(device: address, kind: .msix, index: $0)?.total ?? 0 }
    }

    func interrupts(_ device: VFIODevice, bar0: VFIOBARRegion, bar3: VFIOBARRegion, layout: MSIXLayout) {
        guard let config = try? device.configSpace(),
              let capOffset = try? config.capabilityList().first(PCICapabilityID.msix)?.offset,
              let table = report.attempt("vfio-msix-table", {
                  try MSIXTable(config: config, capOffset: capOffset, region: { _ in bar3 })
              })
        else { return }
        let hardwareConfig = try? SysfsConfigSpace(address: address, intent: .readOnly)

        // Arm all five vectors in one SET_IRQS.
        guard let fds = report.attempt("vfio-msix-enable", { try device.enableInterrupts(.msix, count: 5) }) else {
            return
        }
        let irqs = sysfs.msiIRQNumbers(of: address)
        let control = (try? hardwareConfig?.read16(capOffset + PCIReg.MSIX.flags)) ?? 0
        report.check(
            fds.count == 5 && irqs.count == 5 && control & PCIReg.MSIX.enable != 0, "vfio-msix-enable",
            "\(fds.count) eventfds; kernel msi_irqs \(irqs); MSI-X control (hardware) \(hx(control))")

        // The real table, as the kernel programmed it (through the MSIX_MAPPABLE mapping).
        decodeTable(table, expectUnmasked: 0..<5, name: "vfio-msix-table-remappable")

        // The device raises each vector: exactly one count on that eventfd, none elsewhere,
        // and the kernel's /proc/interrupts row moves by one.
        guard report.attempt("e1000e-quiesce", { try E1000E.quiesce(bar0) }) != nil else { return }
        sleepMs(20)
        let stale = takeCounts(device)
        report.check(stale.allSatisfy { $0 == 0 }, "msix-no-spurious-before", "counts after setup \(stale)")
        for v in 0..<E1000E.msixVectors {
            let before = procCounts()
            guard report.attempt("msix-device-raise-\(v)", { try E1000E.raise(bar0, vector: v) }) != nil else { continue }
            let counts = collect(device)
            let after = procCounts()
            let deltas = zip(after, before).map { $0 &- $1 }
            var expected = [UInt64](repeating: 0, count: 5)
            expected[v] = 1
            let ims = (try? bar0.read32(E1000E.ims)) ?? 0xFFFF_FFFF
            report.check(
                counts == expected && deltas == expected, "msix-device-raise-\(v)",
                "cause \(E1000E.causeNames[v]) -> eventfd counts \(counts), /proc/interrupts deltas \(deltas); "
                    + "IMS after \(hx(ims)) (EIAC auto-clear)")
        }
        report.check(
            (try? table.readPBA()) == [0], "msix-pba-clear-after-delivery", "PBA \((try? table.readPBA()) ?? [])")

        // Loopback: the kernel signals the eventfd itself (DATA_NONE | TRIGGER).
        for v in 0..<E1000E.msixVectors {
            guard report.attempt("msix-loopback-\(v)", { try device.triggerVector(v, kind: .msix) }) != nil else {
                continue
            }
            var expected = [UInt64](repeating: 0, count: 5)
            expected[v] = 1
            let counts = collect(device, timeoutMs: 500)
            report.expect("msix-loopback-\(v)", counts, expected)
        }

        detachAndReattach(device, bar0: bar0, table: table)
        grow(device, bar0: bar0, table: table)
        disable(device, hardwareConfig: hardwareConfig, capOffset: capOffset)
    }

    /// Decodes the table: enabled entries carry Intel VT-d remappable-format messages with
    /// distinct handles (the kernel runs with interrupt remapping).
    @discardableResult
    func decodeTable(_ table: MSIXTable, expectUnmasked: Range<Int>, name: String) -> [MSIXEntry] {
        guard let entries = report.attempt(name, { try table.readEntries() }) else { return [] }
        var handles: [Int] = []
        var ok = true
        for (i, e) in entries.enumerated() {
            // The model's decoder: the x86 fabric's view of the message.
            let decoded = X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data))
            report.info("  entry \(i): addr \(hx(e.address)) data \(hx(e.data)) ctrl \(hx(e.vectorControl)) -> \(decoded)")
            if expectUnmasked.contains(i) {
                guard case .remappable(let r) = decoded, !e.masked else { ok = false; continue }
                handles.append(r.irteIndex)
            }
        }
        report.check(
            ok && Set(handles).count == handles.count && handles.count == expectUnmasked.count, name,
            "entries \(expectUnmasked) unmasked, remappable format, IRTE indexes \(handles)")
        return entries
    }

    /// fd −1 on one vector: the kernel frees its irq (masking the entry), the device latches
    /// the raise in the PBA; a new eventfd unmasks it and gets the latched interrupt.
    func detachAndReattach(_ device: VFIODevice, bar0: VFIOBARRegion, table: MSIXTable) {
        let v = 1
        guard report.attempt("msix-detach-vector", { try device.detachVector(v, kind: .msix) }) != nil else { return }
        let irqs = sysfs.msiIRQNumbers(of: address).count
        let masked = (try? table.readVectorControl(v)).map { $0 & 1 == 1 } ?? false
        report.check(
            device.eventFD(forVector: v) == nil && masked, "msix-detach-vector",
            "vector \(v) has no eventfd; entry masked by the kernel (free_irq): \(masked); msi_irqs still \(irqs)")
        _ = try? E1000E.raise(bar0, vector: v)
        let counts = collect(device, timeoutMs: 300)
        let pending = (try? table.isPending(v)) ?? false
        report.check(
            counts.allSatisfy { $0 == 0 } && pending, "msix-detached-raise-latches-pending",
            "eventfd counts \(counts); PBA bit \(v) set: \(pending)")
        guard let attach = report.attempt("msix-reattach-vector", { try device.attachVector(v, kind: .msix) }) else {
            return
        }
        let redelivered = collect(device, timeoutMs: 1000)
        let pendingAfter = (try? table.isPending(v)) ?? true
        var expected = [UInt64](repeating: 0, count: 5)
        expected[v] = 1
        report.check(
            redelivered == expected && !pendingAfter, "msix-reattach-delivers-pending",
            "\(describe(attach)); counts \(redelivered); PBA bit \(v) after unmask: \(pendingAfter)")
        _ = try? E1000E.raise(bar0, vector: v)
        report.expect("msix-reattached-raise", collect(device), expected)
    }

    /// NORESIZE: enabling 3 vectors and then attaching vector 4 re-enables the index with 5
    /// (before Linux 6.5); with dynamic MSI-X the vector is simply added.
    func grow(_ device: VFIODevice, bar0: VFIOBARRegion, table: MSIXTable) {
        guard report.attempt("msix-grow-setup", {
            try device.disableInterrupts(.msix)
            return try device.enableInterrupts(.msix, count: 3)
        }) != nil else { return }
        report.expect("msix-grow-setup", sysfs.msiIRQNumbers(of: address).count, 3, "kernel msi_irqs after enabling 3")
        guard let attach = report.attempt("msix-grow-attach", { try device.attachVector(4, kind: .msix) }) else { return }
        let noResize = (try? device.irqInfo(.msix).flags.contains(.noResize)) ?? true
        let kernelIRQs = sysfs.msiIRQNumbers(of: address).count
        let ok: Bool
        switch attach {
        // Re-enabled with 5: the kernel allocated entries 0-4.
        case .grewByReenabling(_, let old, let new): ok = noResize && old == 3 && new == 5 && kernelIRQs == 5
        // Dynamic MSI-X (6.5+): entry 4 alone was added to 0-2.
        case .attached: ok = !noResize && kernelIRQs == 4
        }
        report.check(
            ok, "msix-grow-attach",
            "\(describe(attach)) (NORESIZE \(noResize)); status \(device.interruptStatus); "
                + "msi_irqs \(kernelIRQs)")
        _ = takeCounts(device)
        for v in [0, 4] {
            _ = try? E1000E.raise(bar0, vector: v)
            var expected = [UInt64](repeating: 0, count: 5)
            expected[v] = 1
            report.expect("msix-after-grow-raise-\(v)", collect(device), expected)
        }
    }

    func disable(_ device: VFIODevice, hardwareConfig: SysfsConfigSpace?, capOffset: Int) {
        guard report.attempt("msix-disable", { try device.disableInterrupts(.msix) }) != nil else { return }
        let irqs = sysfs.msiIRQNumbers(of: address)
        let rows = ProcInterrupts.read()?.rows(device: address) ?? []
        let control = (try? hardwareConfig?.read16(capOffset + PCIReg.MSIX.flags)) ?? 0xFFFF
        report.check(
            irqs.isEmpty && rows.isEmpty && control & PCIReg.MSIX.enable == 0 && device.interruptStatus.kind == nil,
            "msix-disable",
            "msi_irqs \(irqs), /proc/interrupts rows \(rows.count), MSI-X control (hardware) \(hx(control))")
    }

    func describe(_ a: VectorAttachment) -> String {
        switch a {
        case .attached: "attached with one SET_IRQS"
        case .grewByReenabling(_, let old, let new): "grew by re-enabling: \(old) -> \(new) vectors"
        }
    }
}
