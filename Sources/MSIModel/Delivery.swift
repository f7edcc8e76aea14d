// The receiving end of a message: decode (compatibility format or VT-d remappable via the
// IRTE table), find the CPU and vector, look up the Linux interrupt in the per-CPU vector
// table (the kernel's per_cpu vector_irq[]), account it and run its handler.
//
// The tables live in their own small lock, separate from the allocation state, so deliveries
// never wait for domain or vector bookkeeping; the handler runs after the lock is dropped.
import Synchronization

/// A requested interrupt's handler (`irq_handler_t`), called with the Linux interrupt number.
/// It runs outside every model lock and may call back into the model.
public typealias IRQHandler = @Sendable (_ virq: Int) -> Void

/// Why the interrupt fabric or the kernel dropped a message.
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

    /// A human-readable form.
    public var description: String {
        switch self {
        case .badAddress(let a): "not an interrupt address: 0x\(hexString(a, 16))"
        case .unsupportedDeliveryMode(let m): "delivery mode \(m) is not delivered"
        case .noSuchDestination(let d): "no CPU with destination 0x\(hexString(d, 1))"
        case .cpuOffline(let c): "CPU \(c) is offline"
        case .invalidVector(let v): "vector 0x\(hexString(v, 2)) is an exception vector"
        case .shutdownVector(let c): "CPU \(c): vector 0xef (MANAGED_IRQ_SHUTDOWN_VECTOR): spurious"
        case .systemVector(let c, let v): "CPU \(c): system vector 0x\(hexString(v, 2))"
        case .noIRQ(let c, let v): "CPU \(c): no irq handler for vector 0x\(hexString(v, 2))"
        case .notRequested(let i, let c, let v): "irq \(i) (CPU \(c) vector 0x\(hexString(v, 2))) is not requested"
        case .remappingFault(let f): "interrupt remapping fault: \(f)"
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

/// What happened to a delivered message.
public enum DeliveryResult: Hashable, Sendable, CustomStringConvertible {
    /// Linux interrupt `virq` fired on `cpu` at `vector`; its count was incremented and its
    /// handler called.
    case delivered(virq: Int, cpu: Int, vector: Int)
    /// The message was not delivered, for this reason.
    case dropped(DeliveryDropReason)

    /// A human-readable form.
    public var description: String {
        switch self {
        case let .delivered(v, c, vec): "irq \(v) on CPU \(c) vector 0x\(hexString(vec, 2))"
        case .dropped(let r): "dropped: \(r)"
        }
    }
}

/// An interrupt-remapping table entry (the fields the model keeps).
public struct IRTEntry: Hashable, Sendable {
    /// The entry is valid (IRTE present bit).
    public var present: Bool
    /// The vector delivered to the CPU.
    public var vector: Int
    /// The destination CPU (the model stores the CPU; the hardware entry holds its APIC ID).
    public var cpu: Int
    /// The APIC ID the hardware entry would hold (0 when not present).
    public var destinationAPICID: UInt32
}

/// An installed handler (`struct irqaction`). A class so the delivery path can take one
/// reference out of the lock with a single retain.
final class IRQAction: Sendable {
    let handler: IRQHandler
    init(_ handler: @escaping IRQHandler) { self.handler = handler }

    /// Runs the handler; `self` is kept alive by the caller, so the closure is not retained.
    @inline(never)
    func fire(_ virq: Int) { handler(virq) }
}

/// The fast-path tables: (cpu, vector) → virq, the IRTEs, and per-interrupt request state and
/// counts. Lock order: platform state, then this.
final class DeliveryTable: Sendable {
    struct State {
        /// `cpu << 8 | vector` → virq (0: none).
        var routes: [UInt32]
        /// IRTE: bit 63 present, bits 7:0 vector, bits 31:16 CPU.
        var irte: [UInt64]
        var requested: [Bool] = []
        /// `struct irqaction` per interrupt: the installed handler, nil when none.
        var handlers: [IRQAction?] = []
        /// `virq * cpus + cpu` → count (kstat_irqs).
        var counts: [UInt64] = []
        var online = CPUMask()
    }

    let cpus: Int
    let state: Mutex<State>

    init(cpus: Int, irteEntries: Int) {
        self.cpus = cpus
        state = Mutex(State(routes: Array(repeating: 0, count: cpus << 8), irte: Array(repeating: 0, count: irteEntries)))
    }

    static let irtePresent: UInt64 = 1 << 63
}

extension DeliveryTable.State {
    /// Makes room for `virq` and clears its state (a fresh irq_desc).
    mutating func reset(virq: Int, cpus: Int) {
        if requested.count <= virq {
            let n = max(virq + 1, requested.count * 2, 64)
            requested.append(contentsOf: repeatElement(false, count: n - requested.count))
            handlers.append(contentsOf: repeatElement(nil, count: n - handlers.count))
            counts.append(contentsOf: repeatElement(0, count: n * cpus - counts.count))
        }
        requested[virq] = false
        handlers[virq] = nil
        for c in 0..<cpus { counts[virq * cpus + c] = 0 }
    }
}
