// `msictl probe` as a library call: enumerate through libpci (live sysfs or a dump), select
// with lspci's selectors, decode the interrupt capabilities, and on a live system join the
// kernel's view (driver via libudev, IOMMU group, msi_irqs, /proc/interrupts counts).
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// Where devices come from.
public enum ProbeSource: Hashable, Sendable {
    /// The running system (libpci's sysfs method); paths are overridable for tests. Each
    /// irq's placement is read from the `irq` directory beside `procInterrupts`
    /// (`/proc/irq`; see ``IRQPlacement/root(besideInterrupts:)``).
    case live(sysfsRoot: String = "/sys", procInterrupts: String = "/proc/interrupts")
    /// An `lspci -x/-xxx/-xxxx` dump.
    case dump(path: String, reader: DumpReader = .native)
}

/// How a dump's bytes are read.
public enum DumpReader: String, Hashable, Sendable, CaseIterable {
    /// libpci's dump method, exactly what `lspci -F` reads (after a validation pass).
    case libpci
    /// This package's one-pass reader of the same grammar (``LSPCIDump``), the default: the
    /// same bytes as libpci's (the tests compare every fixture and damaged dump), several
    /// times faster on large dumps, since libpci parses each byte with `sscanf`; names still
    /// come from libpci's database.
    case native
}

/// What to probe.
public struct ProbeOptions: Hashable, Sendable {
    /// Which slots to report (lspci's `-s`).
    public var slots: PCISlotFilter
    /// Which vendor/device/class IDs to report (lspci's `-d`).
    public var ids: PCIIDFilter
    /// Look up vendor/device/class names in libpci's database.
    public var lookupNames: Bool
    /// Ask libudev for drivers (live); false reads the sysfs `driver` link.
    public var useUdev: Bool

    /// Everything selected, names looked up, drivers from libudev.
    public init(slots: PCISlotFilter = .init(), ids: PCIIDFilter = .init(), lookupNames: Bool = true, useUdev: Bool = true) {
        self.slots = slots
        self.ids = ids
        self.lookupNames = lookupNames
        self.useUdev = useUdev
    }
}

/// Why probing failed as a whole (per-device trouble is in ``PCIDeviceInfo/problems``).
public enum ProbeError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// The dump file could not be read or is malformed.
    case dump(DumpFileError)
    /// libpci reported an error (its session is closed).
    case libpci(LibPCIError)

    public var errno: KernelErrno? {
        switch self {
        case .dump(let e): e.errno
        case .libpci(let e): e.errno
        }
    }

    public var description: String {
        switch self {
        case .dump(let e): e.description
        case .libpci(let e): e.description
        }
    }
}

/// The result of a probe.
public struct ProbeReport: Hashable, Sendable {
    /// Selected devices, sorted by address.
    public var devices: [PCIDeviceInfo]
    /// Devices seen before selection.
    public var scannedCount: Int
    /// libpci's warnings (never printed by the library).
    public var warnings: [String]
    /// CPU ids of the IRQ count columns (live, when /proc/interrupts was read).
    public var cpus: [Int]?
    /// True for the live system, false for a dump.
    public var isLive: Bool
}

/// Runs probes.
public enum PCIProbe {
    /// Probes `source`.
    /// - Parameters:
    ///   - source: the live system or a dump file.
    ///   - options: which devices, and whether to look up names and ask libudev for drivers.
    ///   - names: the name database to use (pass one whose
    ///     ``PCINameDatabase/preloadInBackground()`` started early to overlap its loading with
    ///     the probe); nil opens one when `options.lookupNames` is set.
    public static func run(
        _ source: ProbeSource, options: ProbeOptions = .init(), names: PCINameDatabase? = nil
    ) throws(ProbeError) -> ProbeReport {
        var report: ProbeReport
        let database = options.lookupNames ? names ?? PCINameDatabase() : nil
        switch source {
        case let .live(root, interrupts):
            do { report = try live(sysfsRoot: root, procInterrupts: interrupts, options: options) } catch {
                throw .libpci(error)
            }
        case let .dump(path, reader):
            let records: [DumpRecord]
            do { records = try LSPCIDump.read(path: path, collectBytes: reader == .native) } catch { throw .dump(error) }
            do {
                switch reader {
                case .libpci: report = try dumpThroughLibPCI(path: path, records: records, options: options)
                case .native: report = try dumpNative(records: records, options: options)
                }
            } catch { throw .libpci(error) }
        }
        if let database {
            do {
                var memo = NameMemo()
                for i in report.devices.indices { try memo.addNames(&report.devices[i], database) }
            } catch { throw .libpci(error) }
            report.warnings += database.takeWarnings()
        }
        return report
    }

    // MARK: Live system

    static func live(sysfsRoot: String, procInterrupts: String, options: ProbeOptions) throws(LibPCIError) -> ProbeReport {
        let session = try LibPCISession(method: .live(sysfsRoot: sysfsRoot))
        let sysfs = SysfsPCI(root: sysfsRoot)
        let udev = options.useUdev && sysfsRoot == "/sys" ? try? UdevContext() : nil
        var interrupts: ProcInterrupts? = nil
        let irqRoot = IRQPlacement.root(besideInterrupts: procInterrupts)
        var devices: [PCIDeviceInfo] = []
        var privileged: Bool? = nil
        for address in session.addresses where options.slots.matches(address) {
            let fields = try session.fields(of: address)
            guard options.ids.matches(
                vendor: fields.vendorID, device: fields.deviceID, classCode: fields.classCode,
                programmingInterface: fields.programmingInterface)
            else { continue }
            // The config file's size says 256 or 4096 without touching the device; whether
            // this process may read past 64 bytes (CAP_SYS_ADMIN) is checked once.
            var size = sysfs.configFileSize(of: address)
            if let s = size, s > PCIReg.standardHeaderSize {
                if privileged == nil {
                    privileged = try session.readConfig(address, offset: PCIReg.standardHeaderSize, count: 4) != nil
                }
                if privileged == false { size = nil }
            }
            // Lazily, a dword at a time: on a VM each config dword is a trap to the hypervisor.
            let config = try LibPCIConfigSpace(session: session, address: address, readableSize: size, prefetch: 0)
            var info = describe(address: address, fields: fields, config: config, fromDump: false)
            info.driver = udev.map { $0.driver(of: address) } ?? sysfs.driver(of: address)
            info.iommuGroup = sysfs.iommuGroup(of: address)
            let allocated = sysfs.msiIRQNumbers(of: address)
            if allocated.isEmpty {
                info.irqs = []
            } else {
                if interrupts == nil { interrupts = ProcInterrupts.read(path: procInterrupts) ?? ProcInterrupts(parsing: "") }
                info.irqs = allocated.map { irq in
                    let row = interrupts?.row(irq: irq)
                    let source = row?.source?.address == address ? row?.source : nil
                    // The kind: from the per-device chip name, else from which of MSI/MSI-X is
                    // enabled (they exclude each other), else the msi_irqs file itself.
                    let kind = source?.kind ?? info.enabledMSIKind
                        ?? sysfs.msiIRQKind(of: address, irq: irq).flatMap(MSIKind.init(rawValue:)) ?? .msi
                    return DeviceIRQ(
                        irq: irq, kind: kind, index: source?.index, counts: row?.counts, actions: row.map { $0.actions },
                        placement: IRQPlacement.read(irq: irq, root: irqRoot))
                }
            }
            devices.append(info)
        }
        return ProbeReport(
            devices: devices, scannedCount: session.addresses.count, warnings: session.takeWarnings(),
            cpus: interrupts?.cpus, isLive: true)
    }

    // MARK: Dumps

    static func dumpThroughLibPCI(path: String, records: [DumpRecord], options: ProbeOptions) throws(LibPCIError) -> ProbeReport {
        let session = try LibPCISession(method: .dump(path: path))
        var lines: [PCIAddress: DumpRecord] = [:]
        for r in records { lines[r.address] = r }
        var devices: [PCIDeviceInfo] = []
        for address in session.addresses where options.slots.matches(address) {
            let fields = try session.fields(of: address)
            guard options.ids.matches(
                vendor: fields.vendorID, device: fields.deviceID, classCode: fields.classCode,
                programmingInterface: fields.programmingInterface)
            else { continue }
            let record = lines[address]
            // The scan knows how many bytes libpci holds; libpci itself is asked if not.
            var bytes: [UInt8]? = nil
            if let length = record?.length { bytes = try session.readConfig(address, offset: 0, count: length) }
            if bytes == nil {
                let length = try session.readableConfigSize(address)
                bytes = try session.readConfig(address, offset: 0, count: length)
            }
            let config = ConfigSnapshot(name: snapshotName(address, record), bytes: bytes ?? [])
            var info = describe(address: address, fields: fields, config: config, fromDump: true)
            info.dumpLine = record?.line
            devices.append(info)
        }
        return ProbeReport(
            devices: devices, scannedCount: session.addresses.count, warnings: session.takeWarnings(), cpus: nil,
            isLive: false)
    }

    static func dumpNative(records: [DumpRecord], options: ProbeOptions) throws(LibPCIError) -> ProbeReport {
        var devices: [PCIDeviceInfo] = []
        for record in records.sorted(by: { $0.address < $1.address }) where options.slots.matches(record.address) {
            let config = ConfigSnapshot(name: snapshotName(record.address, record), bytes: record.bytes)
            let fields = genericFields(config)
            guard options.ids.matches(
                vendor: fields.vendorID, device: fields.deviceID, classCode: fields.classCode,
                programmingInterface: fields.programmingInterface)
            else { continue }
            var info = describe(address: record.address, fields: fields, config: config, fromDump: true)
            info.dumpLine = record.line
            devices.append(info)
        }
        return ProbeReport(devices: devices, scannedCount: records.count, warnings: [], cpus: nil, isLive: false)
    }

    static func snapshotName(_ address: PCIAddress, _ record: DumpRecord?) -> String {
        record.map { "\(address) config (dump line \($0.line))" } ?? "\(address) config (dump)"
    }

    /// What libpci's generic `fill_info` derives from config bytes (its dump method): IDs,
    /// class, revision and BARs; unreadable registers read as all-ones, as libpci returns them.
    public static func genericFields(_ config: some ConfigSpaceAccess) -> LibPCIDeviceFields {
        func r8(_ o: Int) -> UInt8 { (try? config.read8(o)) ?? 0xFF }
        func r16(_ o: Int) -> UInt16 { (try? config.read16(o)) ?? 0xFFFF }
        func r32(_ o: Int) -> UInt32 { (try? config.read32(o)) ?? 0xFFFF_FFFF }
        let count = ProbedBAR.count(headerType: r8(PCIReg.headerType))
        let registers = (0..<count).map { r32(PCIReg.bar0 + 4 * $0) }
        return LibPCIDeviceFields(
            vendorID: r16(PCIReg.vendorID), deviceID: r16(PCIReg.deviceID), classCode: r16(0x0A),
            programmingInterface: r8(PCIReg.classProgIF), revision: r8(PCIReg.revisionID),
            baseAddresses: ProbedBAR.genericBaseAddresses(registers: registers), sizes: nil)
    }

    // MARK: Decoding shared by every source

    /// Builds the record from libpci's fields and the config bytes.
    public static func describe(
        address: PCIAddress, fields: LibPCIDeviceFields, config: some ConfigSpaceAccess, fromDump: Bool
    ) -> PCIDeviceInfo {
        let readable = config.readableSize
        let headerType = readable > PCIReg.headerType ? ((try? config.read8(PCIReg.headerType)) ?? 0) & 0x7F : 0
        var info = PCIDeviceInfo(
            address: address, vendorID: fields.vendorID, deviceID: fields.deviceID, classCode: fields.classCode,
            programmingInterface: fields.programmingInterface, revision: fields.revision, headerType: headerType,
            configSize: readable)
        guard readable >= PCIReg.standardHeaderSize else {
            info.problems.append(.headerUnreadable(readable: readable))
            return info
        }
        if (try? config.read32(PCIReg.vendorID)) == 0xFFFF_FFFF {
            info.problems.append(.gone)
            return info
        }
        let barCount = ProbedBAR.count(headerType: headerType)
        if headerType > 2 { info.problems.append(.unknownHeaderType(headerType)) }
        let command = (try? config.read16(PCIReg.command)) ?? 0
        if let flags = fields.resourceFlags {
            info.bars = ProbedBAR.decode(
                resources: fields.baseAddresses, sizes: fields.sizes, flags: flags, count: barCount, command: command,
                register: { (try? config.read32(PCIReg.bar0 + 4 * $0)) ?? 0 })
        } else {
            let registers = (0..<barCount).map { (try? config.read32(PCIReg.bar0 + 4 * $0)) ?? 0 }
            info.bars = ProbedBAR.decode(registers: registers, bases: fields.baseAddresses, sizes: fields.sizes, command: command)
        }
        if headerType <= 2 { info.decodeCapabilities(from: config, fromDump: fromDump) }
        return info
    }

    /// Names already looked up in this probe: a big dump repeats a few IDs thousands of times,
    /// and each database call takes its lock and clears its error and warning buffers.
    struct NameMemo {
        var vendors: [UInt16: String?] = [:]
        var devices: [UInt32: String?] = [:]
        var classes: [UInt16: String?] = [:]

        mutating func addNames(_ info: inout PCIDeviceInfo, _ names: PCINameDatabase) throws(LibPCIError) {
            let deviceKey = UInt32(info.vendorID) << 16 | UInt32(info.deviceID)
            if let known = vendors[info.vendorID] { info.vendorName = known } else {
                info.vendorName = try names.vendorName(info.vendorID)
                vendors[info.vendorID] = info.vendorName
            }
            if let known = devices[deviceKey] { info.deviceName = known } else {
                info.deviceName = try names.deviceName(vendor: info.vendorID, device: info.deviceID)
                devices[deviceKey] = info.deviceName
            }
            if let known = classes[info.classCode] { info.className = known } else {
                info.className = try names.className(info.classCode)
                classes[info.classCode] = info.className
            }
        }
    }
}
