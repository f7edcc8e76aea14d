// What a device puts on the bus when it signals, and the interrupt controller that receives
// it. The mock device and the software IMS store emit messages; the model's platform (x86
// vector domain or interrupt remapping) is a MessageSink.

/// Which interrupt source of a mock device emitted (or tried to emit) a message.
public enum MessageSource: Hashable, Sendable, CustomStringConvertible {
    /// MSI-X table entry *n*.
    case msix(Int)
    /// MSI vector *n* (of a multiple-message capability).
    case msi(Int)
    /// IMS slot *n*.
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
    /// The source that signalled.
    public var source: MessageSource
    /// The message address (64 bits).
    public var address: UInt64
    /// The message data.
    public var data: UInt32

    /// A message from `source`.
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

/// What the platform did with an emitted message, as plain values: ``DeliveryOutcome``
/// without the words for a drop. What a device raising interrupts at full rate asks for.
public enum DeliveryStatus: Hashable, Sendable {
    /// An interrupt reached `cpu` on `vector` and was accounted to Linux irq `virq`.
    case delivered(virq: Int, cpu: Int, vector: Int)
    /// The message went nowhere (``DeliveryOutcome/dropped(_:)`` says why).
    case dropped
}

/// The receiver of a mock device's message writes: an interrupt-controller model.
///
/// Called without any mock lock held, so an implementation may call back into the device.
/// Class-bound: the hot path holds a single reference, not an opaque existential box.
public protocol MessageSink: AnyObject, Sendable {
    /// Accepts one message write and says where it went (a drop in words).
    func deliver(_ message: EmittedMessage) -> DeliveryOutcome
    /// Delivers `message` exactly as ``deliver(_:)`` does, without putting a drop into words.
    func deliverStatus(_ message: EmittedMessage) -> DeliveryStatus
}

extension MessageSink {
    /// Default: ``deliver(_:)``, the drop's words discarded.
    public func deliverStatus(_ message: EmittedMessage) -> DeliveryStatus {
        switch deliver(message) {
        case let .delivered(virq, cpu, vector): .delivered(virq: virq, cpu: cpu, vector: vector)
        case .dropped: .dropped
        }
    }
}

/// The result of asking a mock device to raise an interrupt, as plain values: ``FireResult``
/// without the words (a drop's reason is worked out only by the described form).
public enum SignalStatus: Hashable, Sendable {
    /// The device sent the message and the platform delivered it.
    case delivered(virq: Int, cpu: Int, vector: Int)
    /// The device sent the message; the platform dropped it.
    case sentNotDelivered
    /// The source is masked: the device set its pending bit and sent nothing.
    case pending
    /// The device could not signal at all (capability disabled, device gone, index invalid).
    case dropped
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

