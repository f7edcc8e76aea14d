import ArgumentParser
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice
import PCIAccess

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a device's MSI/MSI-X state and its MSI-X table entry by entry.",
        discussion: """
            Live (default): config space through sysfs, the table through the BAR's sysfs \
            resourceN mapping (UIO or VFIO when bound to them), each entry joined with the \
            kernel's irq, per-CPU counts and effective CPU(s); an entry whose destination APIC is \
            not that CPU is marked '!!'. Read-only: inspect never writes to a device. \
            --dump FILE: the capabilities of a dumped device (a dump holds no table). \
            --mock: a mock device (built-in, or from --dump), optionally after running a \
            'msictl mock' script (--script). Entries still in their reset state (zero, masked) \
            are summarized unless --all.
            """)

    @Argument(help: "The device: [domain:]bus:device.function (for --mock without --dump: any address).")
    var slot: String?

    @Option(name: .long, help: "Inspect a device of an lspci -x/-xxx/-xxxx dump.")
    var dump: String?

    @Flag(name: .long, help: "Inspect a mock device (built-in, or built from --dump).")
    var mock = false

    @Option(name: .long, help: "With --mock: run this 'msictl mock' script first.")
    var script: String?

    @Flag(name: .long, help: "With --mock: use an interrupt-remapping parent.")
    var remap = false

    @Flag(name: .long, help: "Show every table entry, including ones in their reset state.")
    var all = false

    @Flag(name: .long, help: "Print JSON (keys documented in README).")
    var json = false

    func validate() throws {
        if slot == nil && !(mock && dump == nil) { throw ValidationError("missing SLOT") }
        if script != nil && !mock { throw ValidationError("--script needs --mock") }
        if remap && !mock { throw ValidationError("--remap needs --mock") }
    }

    func run() throws {
        let report: InspectReport
        do {
            report = try gather()
        } catch let e as ValidationError {
            printError(e.message)
            throw ExitCode(2)
        } catch let e as DeviceIOError {
            printError(ErrorAdvice.message(for: e))
            if case .noSuchDevice = e { throw ExitCode(1) }
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        print(json ? report.json.jsonText : report.text(all: all))
    }

    func gather() throws -> InspectReport {
        if mock { return try gatherMock() }
        let address = try PCIAddress(parsing: slot ?? "")
        if let dump { return try gatherDump(path: dump, address: address) }
        return try gatherLive(address)
    }

    // MARK: Sources

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

/// Everything `inspect` shows about one device.
struct InspectReport {
    struct Entry {
        var index: Int
        var entry: MSIXEntry
        var pending: Bool
        var irq: Int?
        var counts: [UInt64] = []
        /// The kernel's placement of the entry's irq (live only).
        var placement: IRQPlacement?
        var check = PlacementCheck.notCompared
        var isReset: Bool { entry.addressLo == 0 && entry.addressHi == 0 && entry.data == 0 && entry.masked && !pending }
    }

    var address: PCIAddress
    var source: String
    var driver: String?
    var msi: MSICapability?
    var msix: MSIXCapability?
    var entries: [Entry] = []
    var tableRead = false
    var tableNote: String?
    var kernelIRQs: [Int] = []
    var kernelRows: [InterruptRow] = []
    /// `/proc/irq/N` placement of each kernel irq (live only).
    var kernelPlacements: [Int: IRQPlacement] = [:]
    var cpus: [Int] = []
    /// The IMS table (mock only).
    var ims: IMSView?

    init(address: PCIAddress, source: String, config: some ConfigSpaceAccess) throws {
        self.address = address
        self.source = source
        let caps = try config.capabilityList()
        if let c = caps.first(PCICapabilityID.msi) { msi = try MSICapability(config: config, at: c.offset) }
        if let c = caps.first(PCICapabilityID.msix) { msix = try MSIXCapability(config: config, at: c.offset) }
        if case .accessDenied = caps.standardStatus {
            tableNote = "capabilities are beyond the readable config space: run as root"
        }
    }

    mutating func readTable(config: any ConfigSpaceAccess, _ region: (Int) throws -> any MMIORegion) throws {
        guard let msix else { return }
        let table = try MSIXTable(config: config, capability: msix, region: region)
        let pba = try table.readPBA()
        entries = try (0..<table.tableSize).map { i in
            Entry(index: i, entry: try table.readEntry(i), pending: pba[i / 64] & (1 << UInt64(i % 64)) != 0)
        }
        tableRead = true
    }

    // MARK: Rendering

    static func decode(_ e: MSIXEntry) -> JSONValue {
        switch X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) {
        case .compatibility(let m):
            .object([
                ("format", .string("compatibility")), ("destination", .int(Int(m.destination))),
                ("destinationMode", .string(m.destinationMode == .logical ? "logical" : "physical")),
                ("vector", .int(m.vector)),
            ])
        case .remappable(let m):
            .object([
                ("format", .string("remappable")), ("handle", .int(m.handle)),
                ("subhandleValid", .bool(m.subhandleValid)), ("subhandle", .int(m.subhandle)),
            ])
        case .notAnInterrupt:
            .object([("format", .string("none"))])
        }
    }

    /// `true`/`false` when the table's destination was compared with the effective affinity,
    /// null when it could not be.
    static func differsJSON(_ check: PlacementCheck) -> JSONValue {
        switch check {
        case .agrees: .bool(false)
        case .differs: .bool(true)
        case .notCompared: .null
        }
    }

    /// The effective CPU(s) of an entry's irq, and a mark when the table targets another.
    static func placementText(_ e: Entry) -> String {
        guard let effective = e.placement?.effectiveAffinity else { return "" }
        var text = "  on CPU" + effective.text
        if case .differs(let cpu, let apic) = e.check {
            text += " !! table targets " + (cpu.map { "CPU\($0)" } ?? "no CPU") + " (APIC \(apic))"
        }
        return text
    }

    static func decodeText(_ e: MSIXEntry) -> String {
        switch X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) {
        case .compatibility(let m):
            return "APIC \(m.destination) \(m.destinationMode == .logical ? "logical" : "physical") vector 0x\(hex(m.vector, width: 2))"
        case .remappable(let r):
            return "remapped IRTE handle \(r.handle)" + (r.subhandleValid ? " + subhandle \(r.subhandle)" : "")
        case .notAnInterrupt:
            return e.address == 0 ? "-" : "not an interrupt address"
        }
    }

    var json: JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("slot", .string(address.description)), ("source", .string(source)),
            ("driver", driver.map { .string($0) } ?? .null),
        ]
        if let m = msi {
            pairs.append(("msi", .object([
                ("capOffset", .int(m.capOffset)), ("enabled", .bool(m.enabled)), ("countCapable", .int(m.countCapable)),
                ("countEnabled", .int(m.countEnabled)), ("maskable", .bool(m.maskable)), ("is64Bit", .bool(m.is64Bit)),
                ("address", .uint(m.address)), ("data", .int(Int(m.data))),
                ("mask", m.mask.map { .int(Int($0)) } ?? .null), ("pending", m.pending.map { .int(Int($0)) } ?? .null),
            ])))
        } else {
            pairs.append(("msi", .null))
        }
        if let x = msix {
            pairs.append(("msix", .object([
                ("capOffset", .int(x.capOffset)), ("enabled", .bool(x.enabled)), ("functionMasked", .bool(x.functionMasked)),
                ("tableSize", .int(x.tableSize)), ("tableBAR", .int(x.tableBIR)), ("tableOffset", .int(Int(x.tableOffset))),
                ("pbaBAR", .int(x.pbaBIR)), ("pbaOffset", .int(Int(x.pbaOffset))),
                ("tableReadable", .bool(tableRead)), ("tableNote", tableNote.map { .string($0) } ?? .null),
                ("entries", tableRead ? .array(entries.map { e in
                    .object([
                        ("index", .int(e.index)), ("addressLo", .int(Int(e.entry.addressLo))),
                        ("addressHi", .int(Int(e.entry.addressHi))), ("data", .int(Int(e.entry.data))),
                        ("vectorControl", .int(Int(e.entry.vectorControl))), ("masked", .bool(e.entry.masked)),
                        ("pending", .bool(e.pending)), ("decoded", Self.decode(e.entry)),
                        ("irq", e.irq.map { .int($0) } ?? .null), ("counts", .array(e.counts.map { .int(Int($0)) })),
                        ("smpAffinity", e.placement?.smpAffinity.map { .string($0.text) } ?? .null),
                        ("effectiveAffinity", e.placement?.effectiveAffinity.map { .string($0.text) } ?? .null),
                        ("node", e.placement?.node.map { .int($0) } ?? .null),
                        ("placementDiffers", Self.differsJSON(e.check)),
                    ])
                }) : .null),
                ("pending", tableRead ? .array(entries.filter(\.pending).map { .int($0.index) }) : .null),
            ])))
        } else {
            pairs.append(("msix", .null))
        }
        pairs.append(("kernelIRQs", .array(kernelIRQs.map { .int($0) })))
        pairs.append(("kernelIRQPlacement", .array(kernelIRQs.compactMap { irq in
            kernelPlacements[irq].map { p in
                .object([
                    ("irq", .int(irq)), ("smpAffinity", p.smpAffinity.map { .string($0.text) } ?? .null),
                    ("effectiveAffinity", p.effectiveAffinity.map { .string($0.text) } ?? .null),
                    ("node", p.node.map { .int($0) } ?? .null),
                ])
            }
        })))
        pairs.append(("ims", ims?.json(includeReset: true) ?? .null))
        return .object(pairs)
    }

    func text(all: Bool) -> String {
        var out: [String] = []
        out.append("\(address) (\(source))" + (driver.map { "  driver \($0)" } ?? ""))
        if let m = msi {
            out.append("  MSI   [\(hex(m.capOffset, width: 2))] \(m.enabled ? "enabled" : "disabled"), \(m.countEnabled)/\(m.countCapable) vectors, "
                + "\(m.is64Bit ? "64-bit" : "32-bit"), \(m.maskable ? "maskable" : "not maskable")")
            out.append("        address \(hex(m.address, width: m.is64Bit ? 16 : 8))  data \(hex(Int(m.data), width: 4))"
                + (m.mask.map { "  mask \(hex($0, width: 8))" } ?? "") + (m.pending.map { "  pending \(hex($0, width: 8))" } ?? ""))
        }
        guard let x = msix else {
            if msi == nil { out.append("  no MSI or MSI-X capability") }
            if let tableNote { out.append("  " + tableNote) }
            return (out + imsText(all: all)).joined(separator: "\n")
        }
        out.append("  MSI-X [\(hex(x.capOffset, width: 2))] \(x.enabled ? "enabled" : "disabled"), function \(x.functionMasked ? "masked" : "unmasked"), "
            + "\(x.tableSize) entries, table BAR\(x.tableBIR)+0x\(hex(Int(x.tableOffset), width: 1)), PBA BAR\(x.pbaBIR)+0x\(hex(Int(x.pbaOffset), width: 1))")
        guard tableRead else {
            out.append("  table: " + (tableNote ?? "not read"))
            if !kernelIRQs.isEmpty { out.append("  kernel irqs: " + kernelIRQs.map(String.init).joined(separator: " ")) }
            for row in kernelRows {
                out.append("    irq \(row.irq)  \(row.chip) \(row.source.map { "index \($0.index)" } ?? "")  counts \(row.counts.map(String.init).joined(separator: " "))"
                    + (kernelPlacements[row.irq]?.effectiveAffinity.map { "  on CPU" + $0.text } ?? ""))
            }
            return out.joined(separator: "\n")
        }
        out.append("  idx  address            data      ctrl  masked pending  destination                       irq   counts")
        var hidden = 0
        for e in entries {
            if !all && e.isReset { hidden += 1; continue }
            let line = "  " + ProbeText.pad(String(e.index), 4) + " " + hex(e.entry.address, width: 16) + "   " + hex(Int(e.entry.data), width: 8)
                + "  " + hex(Int(e.entry.vectorControl), width: 4) + "  " + ProbeText.pad(e.entry.masked ? "yes" : "no", 6)
                + " " + ProbeText.pad(e.pending ? "yes" : "no", 7) + "  " + ProbeText.pad(Self.decodeText(e.entry), 32)
                + "  " + ProbeText.pad(e.irq.map(String.init) ?? "-", 5) + " " + e.counts.map(String.init).joined(separator: " ")
                + Self.placementText(e)
            out.append(line)
        }
        if hidden > 0 { out.append("  (\(hidden) entries in their reset state: address 0, data 0, masked, not pending; --all shows them)") }
        let pending = entries.filter(\.pending).map { String($0.index) }
        out.append("  PBA: " + (pending.isEmpty ? "nothing pending" : "pending " + pending.joined(separator: " ")))
        return (out + imsText(all: all)).joined(separator: "\n")
    }

}

