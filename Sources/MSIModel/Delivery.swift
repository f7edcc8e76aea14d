// The receiving end of a message: decode (compatibility format or VT-d remappable via the
// IRTE table), find the CPU and vector, look up the Linux interrupt in the per-CPU vector
// table (the kernel's per_cpu vector_irq[]), account it and run its handler.
//
// The tables live in their own small lock, separate from the allocation state, so deliveries
// never wait for domain or vector bookkeeping; the handler runs after the lock is dropped.
import Synchronization
public import MSIShimCore

/// A requested interrupt's handler (`irq_handler_t`), called with the Linux interrupt number.
/// It runs outside every model lock and may call back into the model.
public typealias IRQHandler = @Sendable (_ virq: Int) -> Void

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

/// An installed handler (`struct irqaction`), with the count of deliveries running it. A class
/// so that the table can hold it by an unmanaged reference and a delivery can use it without
/// reference counting: the count keeps it alive instead (see ``DeliveryTable``).
final class IRQAction: Sendable {
    let handler: IRQHandler
    /// Deliveries that took this action under the table lock and have not finished its
    /// handler (the kernel's IRQD_IRQ_INPROGRESS, which `synchronize_irq()` waits for).
    let inFlight = Atomic<UInt32>(0)
    init(_ handler: @escaping IRQHandler) { self.handler = handler }
}

/// The fast-path tables: (cpu, vector) → virq, the IRTEs, and per-interrupt request state,
/// handler and counts. Lock order: platform state, then this.
///
/// A handler runs after the lock is dropped (it may call back into the model), so its action
/// must outlive a concurrent `free_irq`. The kernel's answer is `synchronize_irq()`: an
/// in-progress mark per interrupt that `free_irq` waits for. Here each action counts the
/// deliveries running it (taken under the lock, dropped after the handler); `free_irq` releases
/// an action no delivery runs at once and otherwise retires it — released once its count is
/// seen at zero (at a later request or free, or when the platform goes) —
/// so nothing blocks and no delivery touches reference counts.
final class DeliveryTable: Sendable {
    /// Everything behind the lock: raw tables sized once (routes, IRTEs, online flags) or
    /// grown with the interrupt numbers in use (request state, actions, counts), read without
    /// bounds checks or copy-on-write checks on the delivery path.
    struct State: @unchecked Sendable {
        // @unchecked: the raw tables are reached only under the table's lock.
        /// `cpu << 8 | vector` → virq (0: none).
        var routes: UnsafeMutablePointer<UInt32>
        /// IRTE: bit 63 present, bits 7:0 vector, bits 31:16 CPU.
        var irte: UnsafeMutablePointer<UInt64>
        let irteCount: Int
        let cpus: Int
        /// Interrupt numbers covered by ``requested``, ``actions`` and ``counts``.
        var capacity = 0
        var requested: UnsafeMutablePointer<Bool>
        /// `struct irqaction` per interrupt: +1 references owned by the table, nil when none.
        var actions: UnsafeMutablePointer<Unmanaged<IRQAction>?>
        /// `virq * cpus + cpu` → count (kstat_irqs).
        var counts: UnsafeMutablePointer<UInt64>
        /// Actions taken out of the table that a delivery may still be running.
        var retired: [Unmanaged<IRQAction>] = []
        /// `cpu_online_mask`, and the same as one flag per CPU for the delivery path.
        var online = CPUMask() {
            didSet { for c in 0..<cpus { isOnline[c] = online.contains(c) } }
        }
        let isOnline: UnsafeMutablePointer<Bool>

        init(cpus: Int, irteEntries: Int) {
            self.cpus = cpus
            isOnline = .allocate(capacity: cpus)
            isOnline.initialize(repeating: false, count: cpus)
            routes = .allocate(capacity: cpus << 8)
            routes.initialize(repeating: 0, count: cpus << 8)
            irteCount = irteEntries
            irte = .allocate(capacity: max(irteEntries, 1))
            irte.initialize(repeating: 0, count: max(irteEntries, 1))
            requested = .allocate(capacity: 1)
            actions = .allocate(capacity: 1)
            counts = .allocate(capacity: 1)
        }

        /// Frees everything (the platform is going: no delivery can run).
        mutating func deallocate() {
            for v in 0..<capacity { actions[v]?.release() }
            for a in retired { a.release() }
            retired.removeAll()
            isOnline.deallocate()
            routes.deallocate()
            irte.deallocate()
            requested.deallocate()
            actions.deallocate()
            counts.deallocate()
        }

        /// `irq_has_action()` for the request state: requested and not yet freed.
        func isRequested(_ virq: Int) -> Bool { virq >= 0 && virq < capacity && requested[virq] }

        /// Marks `virq` requested with `handler` (the previous action, if any, is retired),
        /// making room for it first.
        mutating func install(_ virq: Int, _ handler: IRQHandler?) {
            guard virq >= 0 else { return }
            if capacity <= virq { grow(to: max(virq + 1, capacity * 2, 64)) }
            requested[virq] = true
            retire(virq)
            // Not `handler.map`: a closure passed through a generic function is stored with
            // reabstraction thunks around it, two extra calls on every delivery.
            if let handler { actions[virq] = Unmanaged.passRetained(IRQAction(handler)) }
        }

        /// Marks `virq` not requested and retires its action.
        mutating func uninstall(_ virq: Int) {
            guard virq >= 0, virq < capacity else { return }
            requested[virq] = false
            retire(virq)
        }

        /// Takes `virq`'s action out of the table: released now when no delivery runs it (the
        /// usual case: every delivery that took it did so under this lock and has finished),
        /// else kept on ``retired`` until one that does is seen finished.
        mutating func retire(_ virq: Int) {
            if !retired.isEmpty { sweep() }
            guard let old = actions[virq] else { return }
            actions[virq] = nil
            if old._withUnsafeGuaranteedRef({ $0.inFlight.load(ordering: .acquiring) }) == 0 {
                old.release()
            } else {
                retired.append(old)
            }
        }

        /// Releases the retired actions no delivery runs any more.
        mutating func sweep() {
            retired.removeAll { a in
                guard a._withUnsafeGuaranteedRef({ $0.inFlight.load(ordering: .acquiring) }) == 0 else { return false }
                a.release()
                return true
            }
        }

        /// The counts of `virq`, one per CPU.
        func counts(of virq: Int) -> [UInt64] {
            guard virq >= 0, virq < capacity else { return Array(repeating: 0, count: cpus) }
            return (0..<cpus).map { counts[virq * cpus + $0] }
        }

        /// Zeroes the counts of `virq` (a number's first request since its allocation).
        mutating func clearCounts(_ virq: Int) {
            guard virq >= 0, virq < capacity else { return }
            (counts + virq &* cpus).update(repeating: 0, count: cpus)
        }

        mutating func grow(to n: Int) {
            let r = UnsafeMutablePointer<Bool>.allocate(capacity: n)
            r.initialize(repeating: false, count: n)
            r.update(from: requested, count: capacity)
            let a = UnsafeMutablePointer<Unmanaged<IRQAction>?>.allocate(capacity: n)
            a.initialize(repeating: nil, count: n)
            a.update(from: actions, count: capacity)
            let k = UnsafeMutablePointer<UInt64>.allocate(capacity: n * cpus)
            k.initialize(repeating: 0, count: n * cpus)
            k.update(from: counts, count: capacity * cpus)
            requested.deallocate()
            actions.deallocate()
            counts.deallocate()
            requested = r
            actions = a
            counts = k
            capacity = n
        }
    }

    let cpus: Int
    let state: PackageMutex<State>

    init(cpus: Int, irteEntries: Int) {
        self.cpus = cpus
        state = PackageMutex(State(cpus: cpus, irteEntries: irteEntries))
    }

    deinit { state.withLock { $0.deallocate() } }

    static let irtePresent: UInt64 = 1 << 63
}
