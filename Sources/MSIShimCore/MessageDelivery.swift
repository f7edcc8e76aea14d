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

/// Why the interrupt fabric or the kernel dropped a message.
///
/// Plain values: a result carrying one is copied and destroyed without reference counting,
/// so the delivery path never builds text; ``description`` puts it into words when asked.
public enum DeliveryDropReason: Hashable, Sendable, CustomStringConvertible {
    /// Not an interrupt: the address is not 0xFEExxxxx below 4 GiB.
    case badAddress(UInt64)
    /// A delivery mode the model does not deliver (SMI, NMI, INIT, ExtINT…).
    case unsupportedDeliveryMode(Int)
    /// No CPU has this destination APIC ID (or the logical bitmap names none).
    case noSuchDestination(UInt32)
    /// The destination CPU is offline.
    case cpuOffline(Int)
    /// Vectors below 0x20 are exceptions; the fabric does not deliver them.
    case invalidVector(Int)
    /// The message hit `MANAGED_IRQ_SHUTDOWN_VECTOR` (0xEF): the interrupt is reserved or
    /// shut down and has no real vector; the kernel counts it as spurious.
    case shutdownVector(cpu: Int)
    /// A system vector (timer, IPI…), not a device interrupt.
    case systemVector(cpu: Int, vector: Int)
    /// "No irq handler for vector": nothing is mapped at this CPU/vector.
    case noIRQ(cpu: Int, vector: Int)
    /// The vector maps to an interrupt nobody requested (`request_irq` not called).
    case notRequested(virq: Int, cpu: Int, vector: Int)
    /// The IOMMU refused the message.
    case remappingFault(RemappingFault)
    /// Nothing receives the device's messages: no interrupt controller is attached to it.
    case noInterruptController

    /// A human-readable form.
    public var description: String {
        switch self {
        case .badAddress(let a): "not an interrupt address: 0x\(hex(a, width: 16))"
        case .unsupportedDeliveryMode(let m): "delivery mode \(m) is not delivered"
        case .noSuchDestination(let d): "no CPU with destination 0x\(hex(d, width: 1))"
        case .cpuOffline(let c): "CPU \(c) is offline"
        case .invalidVector(let v): "vector 0x\(hex(v, width: 2)) is an exception vector"
        case .shutdownVector(let c): "CPU \(c): vector 0xef (MANAGED_IRQ_SHUTDOWN_VECTOR): spurious"
        case .systemVector(let c, let v): "CPU \(c): system vector 0x\(hex(v, width: 2))"
        case .noIRQ(let c, let v): "CPU \(c): no irq handler for vector 0x\(hex(v, width: 2))"
        case .notRequested(let i, let c, let v): "irq \(i) (CPU \(c) vector 0x\(hex(v, width: 2))) is not requested"
        case .remappingFault(let f): "interrupt remapping fault: \(f)"
        case .noInterruptController: "no interrupt controller attached"
        }
    }
}

/// Interrupt-remapping faults (VT-d fault reasons, simplified).
public enum RemappingFault: Hashable, Sendable, CustomStringConvertible {
    /// A remappable-format message but interrupt remapping is off.
    case remappingDisabled
    /// A compatibility-format message while remapping blocks them (CFI clear, as Linux sets it).
    case compatibilityFormatBlocked
    /// The handle (+ subhandle) is past the table.
    case indexOutOfRange(Int)
    /// The IRTE is not present.
    case entryNotPresent(Int)

    /// A human-readable form.
    public var description: String {
        switch self {
        case .remappingDisabled: "remappable-format message but remapping is disabled"
        case .compatibilityFormatBlocked: "compatibility-format message blocked"
        case .indexOutOfRange(let i): "IRTE index \(i) out of range"
        case .entryNotPresent(let i): "IRTE \(i) not present"
        }
    }
}

/// What the platform did with an emitted message.
public enum DeliveryOutcome: Hashable, Sendable {
    /// An interrupt reached `cpu` on `vector` and was accounted to Linux irq `virq`.
    case delivered(virq: Int, cpu: Int, vector: Int)
    /// The message went nowhere, for this reason (no such vector, nothing requested, bad
    /// address, remapping fault, no interrupt controller).
    case dropped(DeliveryDropReason)
}

/// The receiver of a mock device's message writes: an interrupt-controller model.
///
/// Called without any mock lock held, so an implementation may call back into the device.
/// Class-bound: the hot path holds a single reference, not an opaque existential box.
public protocol MessageSink: AnyObject, Sendable {
    /// Accepts one message write and says where it went.
    func deliver(_ message: EmittedMessage) -> DeliveryOutcome
}

/// Why a device could not signal at all (``FireResult/dropped(_:)``): plain values, put into
/// words only by ``description``.
public enum SignalDropReason: Hashable, Sendable, CustomStringConvertible {
    /// The device does not respond (surprise removal, stuck in reset).
    case deviceGone
    /// The function has no MSI-X capability.
    case noMSIX
    /// An MSI-X index at or past the table size.
    case msixIndexOutOfRange(index: Int, tableSize: Int)
    /// The function has no MSI capability.
    case noMSI
    /// MSI is not enabled.
    case msiDisabled
    /// MSI-X is enabled, so MSI cannot signal (a function uses one or the other).
    case msiBlockedByMSIX
    /// An MSI vector at or past the count Multiple Message Enable grants.
    case msiVectorOutOfRange(vector: Int, enabled: Int)
    /// The device has no IMS slot array.
    case noIMSTable
    /// An IMS slot at or past the array's end.
    case imsSlotOutOfRange(slot: Int, slots: Int)
    /// No IMS interrupt is allocated at this index, so there is no storage to signal through.
    case noIMSInterrupt(index: Int)
    /// No software IMS storage exists at this handle (freed, or never allocated).
    case noIMSStorage(handle: UInt64)
    /// The software IMS storage at this handle holds no message (its interrupt is not requested).
    case imsStorageEmpty(handle: UInt64)

    /// A human-readable form.
    public var description: String {
        switch self {
        case .deviceGone: "device gone"
        case .noMSIX: "device has no MSI-X capability"
        case let .msixIndexOutOfRange(index, size): "MSI-X index \(index) is past the table size \(size)"
        case .noMSI: "device has no MSI capability"
        case .msiDisabled: "MSI is disabled"
        case .msiBlockedByMSIX: "MSI-X is enabled: MSI cannot signal (rule 11)"
        case let .msiVectorOutOfRange(vector, enabled):
            "MSI vector \(vector) is beyond the \(enabled) enabled by Multiple Message Enable"
        case .noIMSTable: "device has no IMS slot array"
        case let .imsSlotOutOfRange(slot, slots): "IMS slot \(slot) is past the \(slots) slots"
        case .noIMSInterrupt(let index):
            "no IMS interrupt at index \(index) (freed, or never allocated): no storage to signal through"
        case .noIMSStorage(let h): "no IMS storage at 0x\(hex(h, width: 1)) (freed, or never allocated)"
        case .imsStorageEmpty(let h): "IMS storage at 0x\(hex(h, width: 1)) holds no message (its interrupt is not requested)"
        }
    }
}

/// The result of asking a mock device to raise an interrupt: plain values (a drop's reason is
/// put into words only when described), so raising at full rate copies and destroys nothing.
public enum FireResult: Hashable, Sendable {
    /// The device sent the message; the sink says what happened to it.
    case sent(EmittedMessage, DeliveryOutcome)
    /// The source is masked: the device set its pending bit and sent nothing.
    case pending
    /// The device could not signal at all (capability disabled, device gone, index invalid).
    case dropped(SignalDropReason)
}
