// A multi-queue device as its PCI driver sees it (Intel IDXD, a NIC with queue pairs): the
// driver owns MMIO, queue management and interrupts; MSI-X vector 0 serves the control block;
// every work queue — whether the host kernel, a VFIO driver or a char-dev user consumes it —
// draws its completion interrupt from the same IMS pool, with the consumer's PASID as the
// instance cookie, and falls back to a dynamically allocated MSI-X vector when IMS is absent
// or full. The consumers never touch the interrupt machinery: they ask this layer.
import Synchronization
public import MSIModel
public import MSIShimCore

/// Completions seen by the control block's handler, and the device's per-interrupt hook it
/// calls: one object, so the handler closure captures only it.
final class CompletionCounter: Sendable {
    let value = Atomic<Int>(0)
    let hook: IRQHandler?

    init(hook: IRQHandler?) { self.hook = hook }

    var count: Int { value.load(ordering: .relaxed) }

    /// One interrupt on `virq`: counted, then the hook.
    func handle(_ virq: Int) {
        value.wrappingAdd(1, ordering: .relaxed)
        hook?(virq)
    }
}

/// A device with work queues shared by several consumers, above the kernel model.
///
/// Creating the device is the driver's probe: MSI-X is enabled with one vector when it is
/// not enabled yet (`pci_alloc_irq_vectors(dev, 1, 1, PCI_IRQ_MSIX)`), and vector 0 is
/// requested for the control block. A queue's completion interrupt comes from the device's
/// IMS domain through `msi_domain_alloc_irq_at(dev, IMS, MSI_ANY_INDEX, NULL, cookie = PASID)`
/// — the IMS chip programs the slot with that PASID — or, when the device has no usable IMS
/// pool or it is full, from `pci_msix_alloc_irq_at(dev, MSI_ANY_INDEX)`; then `request_irq`.
/// Freeing is the kernel's order: `free_irq` (mask, zero message), then `pci_ims_free_irq` or
/// `pci_msix_free_irq` (descriptor and Linux irq gone).
///
/// Locking: one Mutex for the queue table, taken around each operation; the model's device
/// lock is taken inside it (queue lock, then device lock). Handlers only call the hooks given
/// (the control block's also bumps an atomic counter; a queue's completions are its
/// interrupt's count), so they may run from any thread, with or without the model's lock held
/// (an unmask that releases a latched event delivers it there).
public final class WorkQueueDevice: Sendable {
    /// The model device the queues' interrupts belong to.
    public let device: MSIDevice
    let signals: any QueueSignals
    let onInterrupt: IRQHandler?
    let controlCounter: CompletionCounter
    let state: PackageMutex<State>

    struct Queue {
        var consumer: QueueConsumer
        var pasid: UInt32?
        var interrupt: QueueInterrupt
        var virq: Int
        var masked = false
    }

    struct State {
        var queues: [Queue?] = []
        /// Every queue number below is taken.
        var lowestFree = 0
        var count = 0
        var usesIMS: Bool
        let controlVirq: Int
        /// Vector 0 was requested here (not by someone before the probe).
        let controlRequested: Bool
        /// MSI-X was enabled by the probe (so teardown disables it).
        let enabledMSIX: Bool
        var isShutDown = false
        var warnings: [String] = []
    }

    /// The driver's probe over `device`.
    /// - Parameters:
    ///   - device: the model device of the PCI function.
    ///   - signals: how the device raises a queue's interrupt.
    ///   - usesIMS: whether the device's IMS domain is a pool for queue interrupts (it must
    ///     tag messages with the PASID the cookie names, as a device slot array does).
    ///   - onInterrupt: called with the Linux irq after every queue or control-block handler
    ///     invocation (e.g. to count per irq).
    /// - Throws: EINVAL when MSI is enabled, and what enabling MSI-X or requesting vector 0
    ///   refuses (ENODEV without MSI-X, ENOSPC without a vector).
    public init(device: MSIDevice, signals: any QueueSignals, usesIMS: Bool = true,
                onInterrupt: IRQHandler? = nil) throws(WorkQueueError) {
        self.device = device
        self.signals = signals
        self.onInterrupt = onInterrupt
        controlCounter = CompletionCounter(hook: onInterrupt)
        guard !device.isMSIEnabled else {
            throw WorkQueueError(.EINVAL, "MSI is enabled: a work-queue device needs MSI-X for its control block")
        }
        var enabled = false
        if !device.isMSIXEnabled {
            do {
                _ = try device.allocIRQVectors(min: 1, max: 1, flags: .msix)
            } catch {
                throw WorkQueueError(error.code, "enabling MSI-X for the control block: \(error)")
            }
            enabled = true
        }
        var control = 0
        var requested = false
        do {
            control = try device.irqVector(0)
            let counter = controlCounter
            try device.requestIRQ(control) { v in counter.handle(v) }
            requested = true
        } catch where error.code == .EBUSY {
            // Vector 0 was requested before the probe (by whoever drives the device): keep it.
        } catch {
            if enabled { try? device.freeIRQVectors() }
            throw WorkQueueError(error.code, "requesting MSI-X vector 0 for the control block: \(error)")
        }
        state = PackageMutex(State(usesIMS: usesIMS, controlVirq: control, controlRequested: requested, enabledMSIX: enabled))
    }

    // MARK: queues

    /// Creates a work queue for `consumer` with its completion interrupt requested.
    /// - Parameters:
    ///   - consumer: who the queue is for.
    ///   - pasid: the address space the queue works in (1…0xFFFFF); required for `vfio` and
    ///     `cdev`, optional for `kernel`.
    ///   - handler: called with the Linux irq on every completion interrupt.
    /// - Returns: the queue: the lowest free queue number, its interrupt (IMS slot or MSI-X
    ///   entry) and Linux irq.
    /// - Throws: EINVAL (PASID missing for vfio/cdev, or not a valid PASID); ENOSPC when neither
    ///   IMS nor MSI-X has an interrupt left, or no CPU vector is free at `request_irq`. A
    ///   failed creation leaves no descriptor, slot or Linux irq behind.
    @discardableResult
    public func createQueue(for consumer: QueueConsumer, pasid: UInt32? = nil,
                            handler: IRQHandler? = nil) throws(WorkQueueError) -> WorkQueueInfo {
        if consumer.requiresPASID && pasid == nil {
            throw WorkQueueError(.EINVAL, "a \(consumer) queue needs a PASID (the address space its work is tagged with)")
        }
        if let pasid, pasid == 0 || UInt64(pasid) > Self.maxPASID {
            throw WorkQueueError(.EINVAL, "PASID 0x\(hex(pasid, width: 1)) is not valid: 1…0xfffff (0 is IOMMU_NO_PASID)")
        }
        return try state.withLock { (s: inout State) throws(WorkQueueError) -> WorkQueueInfo in
            guard !s.isShutDown else { throw WorkQueueError(.ENODEV, "the work-queue device was shut down") }
            // The interrupt's allocation and its request_irq under one hold of the device lock
            // (each takes it in turn in the kernel; nothing may come between them here, as the
            // queue lock is held throughout anyway).
            let usesIMS = s.usesIMS
            let hook = onInterrupt
            var releaseWarning: String?
            let (interrupt, virq) = try device.withLockedDescriptors {
                (d: inout MSIDeviceData) throws(WorkQueueError) -> (QueueInterrupt, Int) in
                let (interrupt, virq) = try Self.allocateInterrupt(&d, pasid: pasid, usesIMS: usesIMS)
                do throws(MSIError) {
                    try d.requestIRQ(virq, handler: Self.queueHandler(handler, hook))
                } catch {
                    releaseWarning = Self.releaseInterrupt(&d, interrupt, virq)
                    throw WorkQueueError(error.code, "request_irq for the queue's \(interrupt): \(error)")
                }
                return (interrupt, virq)
            }
            if let releaseWarning { s.warnings.append(releaseWarning) }
            let q = s.lowestFree
            let queue = Queue(consumer: consumer, pasid: pasid, interrupt: interrupt, virq: virq)
            if q == s.queues.count { s.queues.append(queue) } else { s.queues[q] = queue }
            s.count += 1
            var next = q + 1
            while next < s.queues.count, s.queues[next] != nil { next += 1 }
            s.lowestFree = next
            return Self.info(q, queue, completions: 0)  // a fresh interrupt: nothing counted yet
        }
    }

    /// The handler a queue's `request_irq` installs: the caller's and the device's hook, one
    /// closure of both only when both exist. A queue's completions are its interrupt's own
    /// count (`kstat_irqs`), so the handler keeps no state of its own and creating a queue
    /// allocates nothing beyond the action `request_irq` makes.
    static func queueHandler(_ handler: IRQHandler?, _ hook: IRQHandler?) -> IRQHandler {
        switch (handler, hook) {
        case (nil, nil): return { _ in }
        case (let h?, nil): return h
        case (nil, let k?): return k
        case (let h?, let k?): return { v in h(v); k(v) }
        }
    }

    /// The largest PASID (20 bits).
    public static let maxPASID: UInt64 = 0xF_FFFF

    /// IMS first (the PASID as the cookie), then dynamic MSI-X; the device lock is held.
    static func allocateInterrupt(_ d: inout MSIDeviceData, pasid: UInt32?, usesIMS: Bool) throws(WorkQueueError) -> (QueueInterrupt, Int) {
        // Why IMS gave nothing, for the error only (no text on the path that succeeds).
        var imsFailure: MSIError?
        if usesIMS {
            do {
                let map = try d.allocIRQ(domain: .secondary, at: .any, cookie: UInt64(pasid ?? 0))
                return (.ims(index: map.index), map.virq)
            } catch where error.code == .ENODEV {
                // No IMS domain: MSI-X.
            } catch where error.code == .EBUSY || error.code == .ENOSPC {
                imsFailure = error
            } catch {
                throw WorkQueueError(error.code, "IMS allocation: \(error)")
            }
        }
        do {
            let map = try d.msixAllocIRQ(at: .any)
            return (.msix(index: map.index), map.virq)
        } catch where error.code == .EBUSY || error.code == .ENOSPC || error.code == .ENOTSUPP {
            let imsNote = imsFailure.map { "IMS: \($0.reason)" } ?? "the device has no IMS pool"
            throw WorkQueueError(.ENOSPC, "no completion interrupt left: \(imsNote); MSI-X: \(error.reason)")
        } catch {
            throw WorkQueueError(error.code, "MSI-X allocation: \(error)")
        }
    }

    /// `pci_ims_free_irq` / `pci_msix_free_irq` on a failure path (the interrupt is not
    /// requested, so only a failing backend can make it fail: that is returned as a warning to
    /// record, not thrown).
    static func releaseInterrupt(_ d: inout MSIDeviceData, _ interrupt: QueueInterrupt, _ virq: Int) -> String? {
        do {
            try freeInterrupt(&d, interrupt, virq)
            return nil
        } catch {
            return "releasing \(interrupt) (irq \(virq)) after a failed request_irq: \(error)"
        }
    }

    static func freeInterrupt(_ d: inout MSIDeviceData, _ interrupt: QueueInterrupt, _ virq: Int) throws(MSIError) {
        switch interrupt {
        case .ims(let index): try d.imsFreeIRQ(MSIMap(index: index, virq: virq))
        case .msix(let index): try d.msixFreeIRQ(MSIMap(index: index, virq: virq))
        }
    }

    /// `free_irq`, then the interrupt (IMS slot or MSI-X entry) freed, under one hold of the
    /// device lock.
    func freeQueueInterrupt(_ queue: Queue) throws(MSIError) {
        try device.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.freeIRQ(queue.virq)
            try Self.freeInterrupt(&d, queue.interrupt, queue.virq)
        }
    }

    /// Checks that `q` exists and belongs to `consumer`.
    static func owned(_ s: State, _ q: Int, _ consumer: QueueConsumer) throws(WorkQueueError) -> Queue {
        guard q >= 0, q < s.queues.count, let queue = s.queues[q] else {
            throw WorkQueueError(.ENOENT, "queue \(q) does not exist")
        }
        guard queue.consumer == consumer else {
            throw WorkQueueError(.EPERM, "queue \(q) belongs to \(queue.consumer), not \(consumer)")
        }
        return queue
    }

    /// Frees queue `q` for `consumer`: `free_irq`, then the interrupt (IMS slot or MSI-X
    /// entry) is freed.
    /// - Throws: ENOENT (no such queue), EPERM (another consumer's), hardware errors.
    public func freeQueue(_ q: Int, by consumer: QueueConsumer) throws(WorkQueueError) {
        try state.withLock { (s: inout State) throws(WorkQueueError) in
            let queue = try Self.owned(s, q, consumer)
            do throws(MSIError) {
                try freeQueueInterrupt(queue)
            } catch {
                throw WorkQueueError(error.code, "freeing queue \(q): \(error)")
            }
            s.queues[q] = nil
            s.count -= 1
            s.lowestFree = min(s.lowestFree, q)
            while let last = s.queues.last, last == nil { s.queues.removeLast() }
        }
    }

    /// Masks queue `q`'s interrupt for `consumer` (`disable_irq`): completions latch.
    /// - Throws: ENOENT, EPERM, hardware errors.
    public func maskQueue(_ q: Int, by consumer: QueueConsumer) throws(WorkQueueError) {
        try setMasked(q, consumer, true)
    }

    /// Unmasks queue `q`'s interrupt for `consumer` (`enable_irq`): a latched completion is
    /// delivered now.
    /// - Throws: ENOENT, EPERM, hardware errors.
    public func unmaskQueue(_ q: Int, by consumer: QueueConsumer) throws(WorkQueueError) {
        try setMasked(q, consumer, false)
    }

    func setMasked(_ q: Int, _ consumer: QueueConsumer, _ masked: Bool) throws(WorkQueueError) {
        try state.withLock { (s: inout State) throws(WorkQueueError) in
            let queue = try Self.owned(s, q, consumer)
            do throws(MSIError) {
                if masked { try device.maskIRQ(queue.virq) } else { try device.unmaskIRQ(queue.virq) }
            } catch {
                throw WorkQueueError(error.code, "\(masked ? "masking" : "unmasking") queue \(q): \(error)")
            }
            s.queues[q]?.masked = masked
        }
    }

    /// The device completes work on queue `q` and raises its interrupt.
    /// - Returns: what the device did: sent (and what the platform did with it), latched
    ///   (masked), or dropped.
    /// - Throws: ENOENT when `q` does not exist.
    public func complete(_ q: Int) throws(WorkQueueError) -> FireResult {
        let interrupt = try state.withLock { (s: inout State) throws(WorkQueueError) -> QueueInterrupt in
            guard q >= 0, q < s.queues.count, let queue = s.queues[q] else {
                throw WorkQueueError(.ENOENT, "queue \(q) does not exist")
            }
            return queue.interrupt
        }
        // Raised outside the queue lock: the handler runs during the raise.
        return signals.raise(interrupt)
    }

    // MARK: observation

    /// Every queue, by number.
    public var queues: [WorkQueueInfo] {
        state.withLock { s in s.queues.indices.compactMap { q in s.queues[q].map { info(q, $0) } } }
    }

    /// Queue `q`, nil when it does not exist.
    public func queue(_ q: Int) -> WorkQueueInfo? {
        state.withLock { s in q >= 0 && q < s.queues.count ? s.queues[q].map { info(q, $0) } : nil }
    }

    /// Number of queues.
    public var queueCount: Int { state.withLock { $0.count } }

    /// Failures on rollback paths that could not be thrown (a backend failing while an
    /// interrupt was released after a failed `request_irq`), oldest first.
    public var warnings: [String] { state.withLock { $0.warnings } }

    /// The control block's interrupt (MSI-X vector 0) and how many times its handler ran.
    public var controlBlock: (virq: Int, handled: Int) {
        (state.withLock { $0.controlVirq }, controlCounter.count)
    }

    /// Whether the IMS domain serves as the queues' pool (the session changes it when the IMS
    /// domain is created or turns out to keep its messages in host memory).
    public var usesIMS: Bool {
        get { state.withLock { $0.usesIMS } }
        set { state.withLock { $0.usesIMS = newValue } }
    }

    /// Queue `q` as callers see it, its completions read from its interrupt's count.
    func info(_ q: Int, _ queue: Queue) -> WorkQueueInfo {
        Self.info(q, queue, completions: Int(device.platform.interruptCounts(virq: queue.virq).reduce(0, +)))
    }

    static func info(_ q: Int, _ queue: Queue, completions: Int) -> WorkQueueInfo {
        WorkQueueInfo(queue: q, consumer: queue.consumer, pasid: queue.pasid, interrupt: queue.interrupt,
                      virq: queue.virq, masked: queue.masked, completions: completions)
    }

    // MARK: teardown

    /// The driver's remove: every queue freed (ascending), the control block's interrupt
    /// freed, and MSI-X disabled when the probe enabled it. Later calls do nothing.
    /// - Throws: the first error; teardown goes on past it.
    public func shutDown() throws(WorkQueueError) {
        try state.withLock { (s: inout State) throws(WorkQueueError) in
            guard !s.isShutDown else { return }
            s.isShutDown = true
            var first: WorkQueueError?
            for q in s.queues.indices {
                guard let queue = s.queues[q] else { continue }
                do throws(MSIError) {
                    try freeQueueInterrupt(queue)
                } catch {
                    first = first ?? WorkQueueError(error.code, "freeing queue \(q): \(error)")
                }
                s.queues[q] = nil
            }
            s.queues.removeAll()
            s.count = 0
            s.lowestFree = 0
            do throws(MSIError) {
                if s.controlRequested { try device.freeIRQ(s.controlVirq) }
                if s.enabledMSIX { try device.freeIRQVectors() }
            } catch {
                first = first ?? WorkQueueError(error.code, "freeing the control block's interrupt: \(error)")
            }
            if let first { throw first }
        }
    }
}
