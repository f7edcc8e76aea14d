// Where `msictl inspect` reads a device: live (sysfs config space, the table through the
// BAR, the kernel's irqs and placement), a config dump, or a mock device after a script.
import ArgumentParser
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice
import MockHarness
import PCIAccess

extension Inspect {
    func gatherDump(path: String, address: PCIAddress) throws -> InspectReport {
        let records = try LSPCIDump.read(path: path, collectBytes: true)
        guard let record = records.first(where: { $0.address == address }) else {
            throw DeviceIOError.noSuchDevice(address)
        }
        var r = try InspectReport(address: address, source: "dump", config: ConfigSnapshot(name: path, bytes: record.bytes))
        if r.msix != nil {
            r.tableNote = "a config dump holds no MSI-X table (it lives in BAR memory): inspect the live device, or --mock --dump"
        }
        return r
    }

    func gatherMock() throws -> InspectReport {
        let device: MockPCIDevice
        let address: PCIAddress
        if let dump {
            address = try PCIAddress(parsing: slot ?? "")
            let records = try LSPCIDump.read(path: dump, collectBytes: true)
            guard let record = records.first(where: { $0.address == address }) else { throw DeviceIOError.noSuchDevice(address) }
            device = try MockPCIDevice.fromConfig(record.bytes, address: address)
        } else {
            device = try slot.map { try MockPCIDevice.builtIn(address: try PCIAddress(parsing: $0)) } ?? MockPCIDevice.builtIn()
            address = device.address
        }
        let session = try MockSession(device: device, options: MockSessionOptions(remap: remap))
        if let script {
            for line in parseMockScript(try readScript(script)) {
                do { _ = try session.run(try line.command.get()) } catch {
                    throw ValidationError("script line \(line.number) (\(echoed(line.text))): \(error)")
                }
            }
        }
        // Read through the inspection views: inspect's own reads are not device accesses.
        var r = try InspectReport(address: address, source: "mock", config: device.inspectionConfig)
        try r.readTable(config: device.inspectionConfig) { bir in
            guard let region = device.inspectionBAR(bir) else {
                throw DeviceAccessError.unsupported("mock BAR\(bir)", what: "an unimplemented BAR")
            }
            return region
        }
        // The model's view: which Linux irq each entry belongs to, and its handler count.
        for i in r.entries.indices {
            if let d = session.model.descriptor(index: r.entries[i].index), d.isAssociated {
                r.entries[i].irq = d.virq
                r.entries[i].counts = session.platform.irq(d.virq)?.perCPUCount ?? []
            }
        }
        r.ims = try session.imsView()
        return r
    }

    func gatherLive(_ address: PCIAddress) throws -> InspectReport {
        let handle = try DeviceHandle.open(address, intent: .readOnly, environment: .msictl)
        var r = try InspectReport(address: address, source: "live", config: handle.config)
        r.driver = handle.driver
        if r.msix != nil {
            do {
                guard let layout = try handle.msixLayout() else { return r }
                let access = try handle.msixTable(layout)
                if access.isReal {
                    try r.readTable(config: handle.config) { bir in
                        bir == layout.tableBAR ? access.region : try handle.bar(bir)
                    }
                } else {
                    r.tableNote = access.note
                }
            } catch {
                r.tableNote = "table not readable: \(error); " + Self.howToRead(address, driver: handle.driver)
            }
        }
        // The kernel's view: msi_irqs, /proc/interrupts and /proc/irq/N (roots as DeviceIO's,
        // MSICTL_SYSFS_ROOT / MSICTL_PROC_ROOT, as for the device).
        let environment = DeviceIOEnvironment.msictl
        let irqs = environment.sysfs.msiIRQs(of: address)
        r.kernelIRQs = irqs.map(\.irq)
        for irq in r.kernelIRQs {
            r.kernelPlacements[irq] = IRQPlacement.read(irq: irq, root: environment.procRoot + "/irq")
        }
        if let proc = ProcInterrupts.read(path: environment.procRoot + "/interrupts") {
            r.cpus = proc.cpus
            let apics = APICMap.read(path: environment.procRoot + "/cpuinfo")
            for i in r.entries.indices {
                if let row = proc.row(device: address, kind: .msix, index: r.entries[i].index) {
                    r.entries[i].irq = row.irq
                    r.entries[i].counts = row.counts
                    let placement = r.kernelPlacements[row.irq]
                        ?? IRQPlacement.read(irq: row.irq, root: environment.procRoot + "/irq")
                    r.entries[i].placement = placement
                    r.entries[i].check = Self.check(r.entries[i].entry, placement, apics)
                }
            }
            if r.entries.isEmpty {
                r.kernelRows = proc.rows(device: address)
            }
        }
        return r
    }

    /// Compares a compatibility-format, physical-mode entry's APIC ID with the irq's
    /// effective affinity (remapped and logical-mode entries are not compared).
    static func check(_ entry: MSIXEntry, _ placement: IRQPlacement, _ apics: APICMap) -> PlacementCheck {
        let message = MSIMessage(addressLo: entry.addressLo, addressHi: entry.addressHi, data: entry.data)
        guard case .compatibility(let m) = X86MSIFormat.decode(message), m.destinationMode != .logical else {
            return .notCompared
        }
        return PlacementCheck.compare(destinationAPIC: Int(m.destination), effective: placement.effectiveAffinity, map: apics)
    }

    static func howToRead(_ address: PCIAddress, driver: String?) -> String {
        switch driver {
        case "vfio-pci", "uio_pci_generic":
            "check that you are root and the kernel offers resourceN files for this device"
        case let d?:
            "the table is in BAR memory the \(d) driver owns; to read it, bind the device to vfio-pci "
                + "('msictl bind \(address) vfio-pci'; the device stops working for \(d)), or boot with "
                + "iomem=relaxed so root may map BARs a driver holds"
        case nil:
            "bind the device to vfio-pci ('msictl bind \(address) vfio-pci') or uio_pci_generic to read it"
        }
    }
}
