// request_irq / free_irq (kernel/irq/manage.c, chip.c) for the interrupts of a device:
// activation with a real vector, handler installation, startup (managed interrupts), unmask;
// and the reverse: handler removal, shutdown (mask), deactivation (all-zero message, vector
// released or re-reserved).

extension MSIDeviceData {
    /// `request_irq(virq, handler, 0, name, dev)` for one of this device's interrupts.
    ///
    /// Order as in `__setup_irq()`: `irq_activate()` (non-managed: parents get a real vector,
    /// the message is rewritten — in reservation mode this is where the vector is taken, ENOSPC
    /// on exhaustion), the action is installed, then `irq_startup()` (a managed interrupt is
    /// activated here, or left in managed shutdown when no CPU of its mask is online) and
    /// `irq_enable()` → unmask.
    /// - Throws: EINVAL (not this device's interrupt), EBUSY (already requested: no sharing),
    ///   ENOSPC (no vector), hardware errors.
    public mutating func requestIRQ(_ virq: Int, handler: IRQHandler? = nil) throws(MSIError) {
        // One platform lock: owner, location, request state, and for a non-managed interrupt
        // the parents' activation (irq_activate: a real vector in reservation mode, ENOSPC on
        // exhaustion) with the message it composes.
        let id = deviceID
        let look = try platform.state.withLock { s throws(MSIError) -> RequestLook in
            guard let r = s.rec(virq), r.pointee.owner == id else { return .notOwned }
            guard !r.pointee.requested else { return .busy }
            let (d, index) = (r.pointee.domain, r.pointee.msiIndex)
            if r.pointee.managed { return .managed(d, index) }
            if r.pointee.activated { return .ready(d, index, nil) }
            return .ready(d, index, try s.activateParents(virq, reserve: false))
        }
        switch look {
        case .notOwned: throw MSIError(.EINVAL, "request_irq", "irq \(virq) does not belong to \(deviceName)")
        case .busy: throw MSIError(.EBUSY, "__setup_irq", "irq \(virq) is already requested (no IRQF_SHARED)")
        case let .managed(d, index): try requestManaged(virq, d, index, handler)
        case let .ready(d, index, message):
            // The MSI level's write of the activation (undone with the parents if it fails).
            if let message { try writeActivated(virq, d, index, message) }
            // The action installed, irq_startup's IRQD_IRQ_STARTED, irq_setup_affinity() and
            // irq_enable's IRQD_IRQ_MASKED cleared, in one platform lock; then the unmask. A
            // failing unmask takes them back.
            // (An interrupt whose descriptor is gone — leaked by a free of the descriptors —
            // has no chip to unmask it, so it stays masked.)
            let unmasks = chipKind(d) != .none && slot(d, index) != nil
            let wasMasked = platform.state.withLock { s -> Bool in
                s.installAction(virq, handler)
                let wasMasked = s.rec(virq)?.pointee.masked ?? true
                s.update(virq) { r in
                    r.started = true
                    if unmasks { r.masked = false }
                }
                s.setupAffinity(virq)
                return wasMasked
            }
            do throws(MSIError) {
                try chipUnmaskHardware(virq, d, index)
            } catch {
                platform.state.withLock { s in
                    s.uninstallAction(virq)
                    s.update(virq) { r in
                        r.started = false
                        r.masked = wasMasked
                    }
                }
                throw error
            }
        }
    }

    /// What ``requestIRQ(_:handler:)`` found under the platform lock.
    private enum RequestLook {
        case notOwned, busy
        case managed(MSIDomainID, Int)
        /// Activated; the message the MSI level must write, nil when it was activated before.
        case ready(MSIDomainID, Int, MSIMessage?)
    }

    /// `request_irq()` of a managed interrupt: the action installed, then `irq_startup()`'s
    /// managed path (`__irq_startup_managed`: activated here, or left in managed shutdown when
    /// no CPU of its mask is online) and the unmask.
    mutating func requestManaged(_ virq: Int, _ d: MSIDomainID, _ index: Int, _ handler: IRQHandler?) throws(MSIError) {
        platform.state.withLock { s in s.installAction(virq, handler) }
        do throws(MSIError) {
            // __irq_startup_managed
            let online = platform.state.withLock { s -> Bool in
                s.update(virq) { $0.managedShutdown = false }
                guard let r = s.rec(virq), r.pointee.affinity.intersects(s.online) else {
                    s.update(virq) { $0.managedShutdown = true }
                    return false
                }
                return true
            }
            guard online else { return }  // IRQ_STARTUP_ABORT: requested, stays shut down
            do throws(MSIError) {
                try activate(virq, d, index, reserve: false)
            } catch {
                warn("irq_startup", "irq \(virq): managed activation failed: \(error)")
                platform.state.withLock { s in s.update(virq) { $0.managedShutdown = true } }
                return
            }
            platform.state.withLock { s in
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
            try chipUnmask(virq, d, index)
        } catch {
            platform.state.withLock { s in
                s.uninstallAction(virq)
                s.update(virq) { $0.started = false }
            }
            throw error
        }
    }

    /// `free_irq(virq, dev)`: removes the handler, then `irq_shutdown_and_deactivate()`: the
    /// chip's shutdown or mask, and deactivation (all-zero message; the vector is released, or
    /// re-reserved in reservation mode; managed interrupts keep their reservation).
    /// - Throws: EINVAL when the interrupt is not this device's or not requested (the kernel
    ///   WARNs "Trying to free already-free IRQ").
    public mutating func freeIRQ(_ virq: Int) throws(MSIError) {
        // One look at the platform: owner, location, started, activated; the action removed.
        let id = deviceID
        let look = platform.state.withLock { s -> (d: MSIDomainID, index: Int, started: Bool, activated: Bool, wasRequested: Bool)? in
            guard let r = s.rec(virq), r.pointee.owner == id else { return nil }
            let was = r.pointee.requested
            if was { s.uninstallAction(virq) }
            return (r.pointee.domain, r.pointee.msiIndex, r.pointee.started, r.pointee.activated, was)
        }
        guard let look else { throw MSIError(.EINVAL, "free_irq", "irq \(virq) does not belong to \(deviceName)") }
        guard look.wasRequested else {
            warn("__free_irq", "Trying to free already-free IRQ \(virq)")
            throw MSIError(.EINVAL, "__free_irq", "irq \(virq) is not requested")
        }
        let (d, index) = (look.d, look.index)
        // irq_shutdown: the chip's shutdown or mask. Then the MSI level's deactivation writes
        // the all-zero message; the platform's bookkeeping of both (IRQD_IRQ_MASKED and
        // IRQD_IRQ_STARTED, the parents' deactivation) follows in one lock.
        var failure: MSIError?
        var shutDown = true
        if look.started {
            do throws(MSIError) { try chipShutdownHardware(virq, d, index) } catch { failure = error; shutDown = false }
        }
        if look.activated { writeDeactivated(virq, d, index) }
        if look.started || look.activated {
            let started = look.started
            platform.state.withLock { s in
                if started {
                    s.update(virq) { r in
                        if shutDown { r.masked = true }
                        r.started = false
                    }
                }
                s.deactivateParents(virq)
            }
        }
        if let failure { throw failure }
    }

    /// `pci_write_msi_msg(irq, msg)`: writes `message` for `virq` through the PCI path
    /// (`__pci_write_msi_msg`: an unmasked MSI-X entry is masked around the update, the message
    /// is cached). Any interrupt of a multi-MSI block writes the block's single message.
    /// - Throws: EINVAL when `virq` is not one of this device's PCI MSI/MSI-X interrupts.
    public mutating func writeMSIMessage(virq: Int, _ message: MSIMessage) throws(MSIError) {
        let fn = "pci_write_msi_msg"
        guard let (d, index) = location(virq), hasDomain(d), let s = slot(d, index) else {
            throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)")
        }
        switch chipKind(d) {
        case .pciMSI, .pciMSIX: try pciWriteMessage(s, message)
        case .device, .none: throw MSIError(.EINVAL, fn, "irq \(virq) is not a PCI MSI/MSI-X interrupt")
        }
    }

    /// `mask_irq()`: masks `virq` at its chip now (what `disable_irq()` ends in for an
    /// interrupt with `IRQ_DISABLE_UNLAZY`; the default lazy disable masks on the next event).
    /// - Throws: EINVAL when `virq` is not one of this device's interrupts; hardware errors.
    public mutating func maskIRQ(_ virq: Int) throws(MSIError) {
        guard location(virq) != nil else { throw MSIError(.EINVAL, "mask_irq", "irq \(virq) does not belong to \(deviceName)") }
        try chipMask(virq)
    }

    /// `unmask_irq()`: unmasks `virq` at its chip (`enable_irq()` after a disable). A device
    /// with a pending event for it sends that event now.
    /// - Throws: EINVAL when `virq` is not one of this device's interrupts; hardware errors.
    public mutating func unmaskIRQ(_ virq: Int) throws(MSIError) {
        guard location(virq) != nil else { throw MSIError(.EINVAL, "unmask_irq", "irq \(virq) does not belong to \(deviceName)") }
        try chipUnmask(virq)
    }
}
