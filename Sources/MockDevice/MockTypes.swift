public import MSIShimCore

/// Which interrupt source of a mock device emitted (or tried to emit) a message.
public enum MessageSource: Hashable, Sendable, CustomStringConvertible {
    case msix(Int)
    case msi(Int)
    case ims(Int)

    public var description: String {
        switch self {
        case .msix(let i): "msix \(i)"
        case .msi(let v): "msi \(v)"
        case .ims(let s): "ims \(s)"
        }
    }
}

/// A message write the device put on the bus: what the interrupt controller receives.
public struct EmittedMessage: Hashable, Sendable {
    public var source: MessageSource
    public var address: UInt64
    public var data: UInt32

    public init(source: MessageSource, address: UInt64, data: UInt32) {
        self.source = source
        self.address = address
        self.data = data
    }
}

/// What the platform did with an emitted message.
public enum DeliveryOutcome: Hashable, Sendable {
    /// An interrupt reached `cpu` on `vector` and was accounted to Linux irq `virq`.
    case delivered(virq: Int, cpu: Int, vector: Int)
    /// The message went nowhere (no such vector, nothing requested, bad address, remapping fault).
    case dropped(String)
}

/// The receiver of a mock device's message writes: an interrupt-controller model.
///
/// Called without any mock lock held, so an implementation may call back into the device.
public protocol MessageSink: Sendable {
    func deliver(_ message: EmittedMessage) -> DeliveryOutcome
}

/// The result of asking a mock device to raise an interrupt.
public enum FireResult: Hashable, Sendable {
    /// The device sent the message; the sink says what happened to it.
    case sent(EmittedMessage, DeliveryOutcome)
    /// The source is masked: the device set its pending bit and sent nothing.
    case pending
    /// The device could not signal at all (capability disabled, device gone, index invalid).
    case dropped(String)
}

/// A spec rule the software driving the mock broke. Recorded, never thrown: real hardware
/// would silently misbehave, and a test wants to see exactly what was done wrong.
public struct MockViolation: Hashable, Sendable, CustomStringConvertible {
    /// Rule number in the reference list (userspace-pci-anchors.md part (b)), 0 for others.
    public var rule: Int
    public var message: String

    public init(rule: Int, message: String) {
        self.rule = rule
        self.message = message
    }

    public var description: String { rule > 0 ? "rule \(rule): \(message)" : message }
}

/// Access counters, by kind. `msictl mock`'s `counters` command and `scripts/bench tables`
/// compare them with the kernel's number of accesses per operation.
public struct MockCounters: Hashable, Sendable, Codable {
    public var configReads = 0
    public var configWrites = 0
    public var mmioReads = 0
    public var mmioWrites = 0

    public init() {}

    public var total: Int { configReads + configWrites + mmioReads + mmioWrites }

    public static func - (a: MockCounters, b: MockCounters) -> MockCounters {
        var d = MockCounters()
        d.configReads = a.configReads - b.configReads
        d.configWrites = a.configWrites - b.configWrites
        d.mmioReads = a.mmioReads - b.mmioReads
        d.mmioWrites = a.mmioWrites - b.mmioWrites
        return d
    }
}

/// Errors building a mock device.
public enum MockDeviceError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The MSI-X capability describes a layout no device could have (rule 12).
    case invalidMSIXLayout(String)
    /// The configuration describes something the mock cannot emulate.
    case unsupported(String)

    public var errno: KernelErrno? { .EINVAL }

    public var description: String {
        switch self {
        case .invalidMSIXLayout(let why): "invalid MSI-X layout: \(why)"
        case .unsupported(let why): "cannot emulate this device: \(why)"
        }
    }
}
