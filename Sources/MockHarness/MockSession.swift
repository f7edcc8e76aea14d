// A mock device driven through the kernel model: what `msictl mock` runs. Each MockCommand
// maps to the kernel function it is named for (see MockScript.swift); the model programs the
// mock's MSI-X table, MSI capability and IMS slots through the InterruptTables chips, exactly
// as it would program hardware, and the mock delivers its messages to the model's platform.
public import MSIModel
public import MSIShimCore
public import MockDevice
import InterruptTables
import WorkQueues

/// Where `msictl mock` runs.
public struct MockSessionOptions: Sendable {
    /// Online CPUs of the platform (x86, 1…).
    public var cpus: Int
    /// An interrupt-remapping parent (multi-MSI allowed, messages in remappable format)
    /// instead of the x86 vector domain.
    public var remap: Bool

    /// Options for a platform of `cpus` CPUs, with or without interrupt remapping.
    public init(cpus: Int = 2, remap: Bool = false) {
        self.cpus = cpus
        self.remap = remap
    }
}

/// An error a session command reports, with the kernel errno where there is one.
public struct MockCommandError: ErrnoCarrying, CustomStringConvertible {
    /// The errno the kernel call would return, nil where it has none.
    public var errno: KernelErrno?
    /// What went wrong, in words.
    public var message: String

    /// An error with `errno` and `message`.
    public init(_ errno: KernelErrno?, _ message: String) {
        self.errno = errno
        self.message = message
    }

    /// Wraps any thrown error, keeping its errno.
    public init(_ error: any Error) {
        errno = (error as? any ErrnoCarrying)?.errno ?? .EINVAL
        message = "\(error)"
    }

    public var description: String { message }
}

/// Records what the platform did with every message the device (or the IMS store) sent.
final class RecordingSink: MessageSink {
    let platform: MSIPlatform
    let log = PackageMutex<[(EmittedMessage, DeliveryOutcome)]>([])

    init(platform: MSIPlatform) { self.platform = platform }

    func deliver(_ message: EmittedMessage) -> DeliveryOutcome {
        let outcome = platform.deliver(message)
        log.withLock { $0.append((message, outcome)) }
        return outcome
    }

    func take() -> [(EmittedMessage, DeliveryOutcome)] {
        log.withLock { l in
            defer { l.removeAll() }
            return l
        }
    }
}

/// Handler invocations per Linux irq (the handler every `request` installs).
final class HandlerCounts: Sendable {
    let counts = PackageMutex<[Int: Int]>([:])
    func count(_ virq: Int) { counts.withLock { $0[virq, default: 0] += 1 } }
    var snapshot: [Int: Int] { counts.withLock { $0 } }
}

/// A mock PCI device, an x86 platform and the kernel model, wired together.
///
/// Not for concurrent use: one script runs its commands in order (the model and the mock
/// are thread-safe, the session's bookkeeping is not shared).
public final class MockSession {
    /// The mock device the script drives.
    public let device: MockPCIDevice
    /// The platform its messages go to (CPUs, vector matrix, optional remapping).
    public let platform: MSIPlatform
    /// The kernel model's view of the device: the `pci_*` calls of the script go here.
    public let model: MSIDevice
    let sink: RecordingSink
    let handled = HandlerCounts()
    var imsStorage: IMSStorage?
    var softwareStore: IMSSoftwareStore?
    var queueDevice: WorkQueueDevice?
    var lastCounters: MockCounters
    /// The NTB client of `ntb` commands (created by the first of them).
    var ntbClient: NTBMSIClient?

    /// Wires `device` to a new platform and model device.
    public init(device: MockPCIDevice, options: MockSessionOptions = MockSessionOptions()) throws {
        var configuration: MSIPlatformConfiguration =
            options.remap ? .intelRemapping(cpus: options.cpus) : .x86(cpus: options.cpus)
        // IMS on the plain vector domain is this project's extension (Linux offered IMS only
        // under interrupt remapping).
        configuration.allowIMSWithoutRemapping = true
        platform = try MSIPlatform(configuration)
        sink = RecordingSink(platform: platform)
        self.device = device
        device.attach(sink: sink)
        let config = device.config
        let pin = try config.read8(PCIReg.interruptPin)
        let line = try config.read8(PCIReg.interruptLine)
        let hardware = try PCIFunctionHardware.discover(
            config: config, intxIRQ: pin != 0 ? Int(line) : 0,
            region: { [device] bir in
                guard let region = device.bar(bir) else {
                    throw DeviceAccessError.unsupported("\(device.address) BAR\(bir)", what: "an unimplemented BAR")
                }
                return region
            })
        model = MSIDevice(name: device.address.description, platform: platform, pci: hardware)
        lastCounters = device.counters
    }

    /// Runs one command and returns its result value (JSON-shaped).
    public func run(_ command: MockCommand) throws(MockCommandError) -> JSONValue {
        do {
            var result = try execute(command)
            let released = sink.take()
            if !released.isEmpty, case .object(var pairs) = result {
                pairs.append(("sent", .array(released.map { Self.describe($0.0, $0.1) })))
                result = .object(pairs)
            }
            return result
        } catch let e as MockCommandError {
            _ = sink.take()
            throw e
        } catch {
            _ = sink.take()
            throw MockCommandError(error)
        }
    }

    /// How many times each Linux irq's handler ran.
    public var handlerCounts: [Int: Int] { handled.snapshot }

    // MARK: Commands

    func execute(_ command: MockCommand) throws -> JSONValue {
        switch command {
        case let .enable(kind, min, max, affinity):
            var flags: PCIIRQFlags
            switch kind {
            case .msix: flags = .msix
            case .msi: flags = .msi
            case .any: flags = [.msix, .msi, .intx]
            }
            if affinity { flags.insert(.affinity) }
            let count = try model.allocIRQVectors(min: min, max: max, flags: flags, affinity: affinity ? IRQAffinity() : nil)
            let mode = model.isMSIXEnabled ? "msix" : model.isMSIEnabled ? "msi" : "intx"
            let vectors = try (0..<count).map { try model.irqVector($0) }
            return .object([("count", .int(count)), ("kind", .string(mode)), ("virqs", .array(vectors.map { .int($0) }))])
        case .disable:
            try model.freeIRQVectors()
            return .object([("disabled", .bool(true))])
        case .vector(let n):
            return .object([("virq", .int(try model.irqVector(n)))])
        case .allocMSIX(let index):
            let map = try model.msixAllocIRQ(at: index.map { .index($0) } ?? .any)
            return .object([("index", .int(map.index)), ("virq", .int(map.virq))])
        case .freeMSIX(let index):
            try model.msixFreeIRQ(MSIMap(index: index, virq: try associatedVirq(.default, index, kind: "MSI-X")))
            return .object([("freed", .int(index))])
        case let .imsCreate(hwsize, storage):
            let chip: any IMSChip
            var store: IMSSoftwareStore?
            switch storage {
            case .device:
                guard let layout = device.imsLayout, let region = device.bar(layout.bar) else {
                    throw MockCommandError(.ENODEV, "this device has no IMS slot array in device memory; use 'ims create \(hwsize) software'")
                }
                chip = IMSDeviceChip(table: try IMSDeviceTable(region: region, offset: layout.offset, slots: layout.slots))
            case .software:
                let created = IMSSoftwareStore(sink: sink)
                store = created
                chip = IMSSoftwareChip(store: created)
            }
            try model.createIMSDomain(template: .ims(chip: chip), hwsize: hwsize)
            imsStorage = storage
            softwareStore = store
            let info = model.domainInfo(.secondary)
            return .object([
                ("domain", .string(info?.name ?? "")), ("hwsize", .int(info?.hwsize ?? hwsize)),
                ("storage", .string(storage.rawValue)),
            ])
        case .allocIMS(let cookie):
            let map = try allocIMS(cookie: cookie)
            return .object([("index", .int(map.index)), ("virq", .int(map.virq))])
        case .freeIMS(let index):
            try freeIMS(index: index)
            return .object([("freed", .int(index))])
        case let .request(kind, index):
            let virq = try virq(kind, index)
            try model.requestIRQ(virq) { [handled] v in handled.count(v) }
            return irqState(virq)
        case let .release(kind, index):
            let virq = try virq(kind, index)
            try model.freeIRQ(virq)
            return .object([("released", .int(virq))])
        case let .mask(kind, index):
            let virq = try virq(kind, index)
            try model.maskIRQ(virq)
            return .object([("virq", .int(virq)), ("masked", .bool(true))])
        case let .unmask(kind, index):
            let virq = try virq(kind, index)
            try model.unmaskIRQ(virq)
            return .object([("virq", .int(virq)), ("masked", .bool(false))])
        case let .fire(kind, index):
            let result: FireResult
            switch kind {
            case .msix: result = device.fireMSIX(index)
            case .msi: result = device.fireMSI(index)
            case .ims: result = try fireIMS(index: index)
            }
            // The fire's own message is reported here, not again under "sent".
            _ = sink.take()
            return Self.describe(result)
        case .functionMask(let on):
            guard let cap = try device.config.capabilityList().first(PCICapabilityID.msix) else {
                throw MockCommandError(.ENODEV, "this device has no MSI-X capability")
            }
            let at = cap.offset + PCIReg.MSIX.flags
            let control = try device.config.read16(at)
            let value = on ? control | PCIReg.MSIX.functionMask : control & ~PCIReg.MSIX.functionMask
            try device.config.write16(at, value)
            return .object([("control", .int(Int(try device.config.read16(at))))])
        case .show:
            return try show()
        case .ntb(let c):
            return try executeNTB(c)
        case let .affinity(kind, index, cpu):
            return try executeAffinity(kind, index: index, cpu: cpu)
        case let .cpu(cpu, online):
            try platform.setCPUOnline(cpu, online)
            return .object([("cpu", .int(cpu)), ("online", .bool(online))])
        case .queue(let q):
            return try executeQueue(q)
        case .counters:
            let now = device.counters
            let delta = now - lastCounters
            lastCounters = now
            return .object([
                ("configReads", .int(delta.configReads)), ("configWrites", .int(delta.configWrites)),
                ("mmioReads", .int(delta.mmioReads)), ("mmioWrites", .int(delta.mmioWrites)),
            ])
        }
    }

    func associatedVirq(_ domain: MSIDomainID, _ index: Int, kind: String) throws -> Int {
        guard let d = model.descriptor(domain: domain, index: index), d.isAssociated else {
            throw MockCommandError(.EINVAL, "\(kind) index \(index) has no interrupt allocated")
        }
        return d.virq
    }

    /// The Linux irq of a KIND INDEX pair: MSI-X entries and IMS slots by descriptor index,
    /// MSI vectors by `pci_irq_vector` (a multi-MSI block is one descriptor).
    func virq(_ kind: InterruptKind, _ index: Int) throws -> Int {
        switch kind {
        case .msix:
            guard model.isMSIXEnabled else { throw MockCommandError(.EINVAL, "MSI-X is not enabled") }
            return try associatedVirq(.default, index, kind: "MSI-X")
        case .msi:
            guard model.isMSIEnabled else { throw MockCommandError(.EINVAL, "MSI is not enabled") }
            return try model.irqVector(index)
        case .ims:
            return try associatedVirq(.secondary, index, kind: "IMS")
        }
    }

    func irqState(_ virq: Int) -> JSONValue {
        guard let d = platform.irq(virq) else { return .object([("virq", .int(virq))]) }
        return .object([
            ("virq", .int(virq)), ("cpu", .int(d.effectiveCPU)),
            ("vector", .int(d.effectiveVector)), ("domain", .string(d.domainName)),
        ])
    }

    static func describe(_ result: FireResult) -> JSONValue {
        switch result {
        case .sent(let m, let outcome): describe(m, outcome)
        case .pending: .object([("pending", .bool(true))])
        case .dropped(let why): .object([("dropped", .string(why.description))])
        }
    }

    static func describe(_ message: EmittedMessage, _ outcome: DeliveryOutcome) -> JSONValue {
        switch outcome {
        case let .delivered(virq, cpu, vector):
            .object([
                ("source", .string(message.source.description)),
                ("delivered", .object([("virq", .int(virq)), ("cpu", .int(cpu)), ("vector", .int(vector))])),
            ])
        case .dropped(let why):
            .object([("source", .string(message.source.description)), ("dropped", .string(why.description))])
        }
    }

    // MARK: show

    /// What `show` reports. It reads the device through the inspection views, so its reads
    /// do not show up in `counters`.
    func show() throws -> JSONValue {
        var out: [(String, JSONValue)] = []
        out.append(("mode", .string(model.isMSIXEnabled ? "msix" : model.isMSIEnabled ? "msi" : "none")))
        for (name, domain) in [("descriptors", MSIDomainID.default), ("imsDescriptors", .secondary)] {
            let descs = model.descriptors(domain: domain)
            out.append((name, .array(descs.map { d in
                var pairs: [(String, JSONValue)] = [
                    ("index", .int(d.index)), ("virq", .int(d.virq)), ("vectors", .int(d.vectorCount)),
                    ("addressLo", .int(Int(d.message.addressLo))), ("addressHi", .int(Int(d.message.addressHi))),
                    ("data", .int(Int(d.message.data))),
                ]
                if domain == .secondary { pairs.append(("cookie", .string("0x" + hex(d.instanceCookie, width: 1)))) }
                return .object(pairs)
            })))
        }
        let config = device.inspectionConfig
        let caps = try config.capabilityList()
        let counts = handlerCounts
        if let cap = caps.first(PCICapabilityID.msix) {
            let table = try MSIXTable(config: config, capOffset: cap.offset) { [device] bir in
                guard let r = device.inspectionBAR(bir) else {
                    throw DeviceAccessError.unsupported("\(device.address) BAR\(bir)", what: "an unimplemented BAR")
                }
                return r
            }
            let control = try table.readControl()
            var entries: [JSONValue] = []
            let programmed = Dictionary(model.descriptors(domain: .default).map { ($0.index, $0.virq) }, uniquingKeysWith: { a, _ in a })
            for i in 0..<table.tableSize {
                let e = try table.readEntry(i)
                guard programmed[i] != nil || e.addressLo != 0 || e.data != 0 || !e.masked else { continue }
                let virq = programmed[i].flatMap { $0 != 0 ? $0 : nil }
                entries.append(.object([
                    ("index", .int(i)), ("addressLo", .int(Int(e.addressLo))), ("addressHi", .int(Int(e.addressHi))),
                    ("data", .int(Int(e.data))), ("masked", .bool(e.masked)), ("pending", .bool(device.msixPending(i))),
                    ("virq", virq.map { .int($0) } ?? .null), ("count", .int(virq.map { counts[$0] ?? 0 } ?? 0)),
                ]))
            }
            var pending: [JSONValue] = []
            for (q, word) in try table.readPBA().enumerated() {
                for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { pending.append(.int(q * 64 + bit)) }
            }
            out.append(("msix", .object([
                ("enabled", .bool(control & PCIReg.MSIX.enable != 0)),
                ("functionMasked", .bool(control & PCIReg.MSIX.functionMask != 0)),
                ("tableSize", .int(table.tableSize)), ("entries", .array(entries)), ("pending", .array(pending)),
            ])))
        }
        if let cap = caps.first(PCICapabilityID.msi) {
            let m = try MSICapability(config: config, at: cap.offset)
            out.append(("msi", .object([
                ("enabled", .bool(m.enabled)), ("countEnabled", .int(m.countEnabled)),
                ("address", .int(Int(truncatingIfNeeded: m.address))), ("data", .int(Int(m.data))),
                ("mask", m.mask.map { .int(Int($0)) } ?? .null), ("pending", m.pending.map { .int(Int($0)) } ?? .null),
            ])))
        }
        out.append(("ims", try imsView()?.json(includeReset: false) ?? .null))
        let violations = device.violations
        out.append(("violations", .array(violations.map { .string($0.description) })))
        return .object(out)
    }
}
