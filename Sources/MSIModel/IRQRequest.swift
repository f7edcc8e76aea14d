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
            // irq_startup also sets irq_desc.depth to 0 (nested disables before it are dropped).
            let unmasks = chipKind(d) != .none && slot(d, index) != nil
            let (wasMasked, oldDepth) = platform.state.withLock { s -> (Bool, Int) in
                s.installAction(virq, handler)
                let was = (s.rec(virq)?.pointee.masked ?? true, s.rec(virq)?.pointee.depth ?? 1)
                s.update(virq) { r in
                    r.started = true
                    r.depth = 0
                    if unmasks { r.masked = false }
                }
                s.setupAffinity(virq)
                return was
            }
            do throws(MSIError) {
                try chipUnmaskHardware(virq, d, index)
            } catch {
                platform.state.withLock { s in
                    s.uninstallAction(virq)
                    s.update(virq) { r in
                        r.started = false
                        r.masked = wasMasked
                        r.depth = oldDepth
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
        // The action installed; irq_startup() sets depth 0 first, even when the managed startup
        // then aborts.
        let oldDepth = platform.state.withLock { s -> Int in
            s.installAction(virq, handler)
            let depth = s.rec(virq)?.pointee.depth ?? 1
            s.update(virq) { $0.depth = 0 }
            return depth
        }
        do throws(MSIError) {
            guard startupManaged(virq, d, index) else { return }  // IRQ_STARTUP_ABORT: requested, stays shut down
            platform.state.withLock { s in
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
            try chipUnmask(virq, d, index)
        } catch {
            platform.state.withLock { s in
                s.uninstallAction(virq)
                s.update(virq) { $0.started = false; $0.depth = oldDepth }
            }
            throw error
        }
    }

    /// `__irq_startup_managed()` and the activation it does: false when no CPU of the
    /// interrupt's mask is online or activation fails (it stays in managed shutdown).
    mutating func startupManaged(_ virq: Int, _ d: MSIDomainID, _ index: Int) -> Bool {
        let online = platform.state.withLock { s -> Bool in
            s.update(virq) { $0.managedShutdown = false }
            guard let r = s.rec(virq), r.pointee.affinity.intersects(s.online) else {
                s.update(virq) { $0.managedShutdown = true }
                return false
            }
            return true
        }
        guard online else { return false }
        do throws(MSIError) {
            try activate(virq, d, index, reserve: false)
        } catch {
            warn("irq_startup", "irq \(virq): managed activation failed: \(error)")
            platform.state.withLock { s in s.update(virq) { $0.managedShutdown = true } }
            return false
        }
        return true
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
                    // irq_shutdown(): depth back to 1, no longer started.
                    s.update(virq) { r in
                        if shutDown { r.masked = true }
                        r.started = false
                        r.depth = 1
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

    /// `disable_irq()` as a driver calls it, for an interrupt that masks at once
    /// (`IRQ_DISABLE_UNLAZY`; the default lazy disable would mask at the next event). Disables
    /// nest (`irq_desc.depth`): only the outermost one, taking a started interrupt from depth 0
    /// to 1, masks at the chip; on an interrupt that is not started (allocated but not
    /// requested, or freed) it only counts, as `__disable_irq()` does.
    /// - Throws: EINVAL when `virq` is not one of this device's interrupts; hardware errors.
    public mutating func maskIRQ(_ virq: Int) throws(MSIError) {
        guard location(virq) != nil else { throw MSIError(.EINVAL, "disable_irq", "irq \(virq) does not belong to \(deviceName)") }
        let depth = platform.state.withLock { $0.rec(virq)?.pointee.depth ?? 1 }
        if depth == 0 { try chipMask(virq) }
        platform.state.withLock { s in s.update(virq) { $0.depth += 1 } }
    }

    /// `enable_irq()`: undoes one ``maskIRQ(_:)``; the last one unmasks at the chip, and a
    /// device with a pending event for the interrupt sends it then.
    ///
    /// Two calls the kernel only WARNs about are refused here (EINVAL, the WARN recorded), as
    /// the model does wherever the kernel WARNs and carries on:
    /// - an unbalanced enable (depth 0: "Unbalanced enable for IRQ n"; the kernel changes
    ///   nothing);
    /// - an enable of an interrupt without an action (allocated but never requested, or
    ///   freed). At depth 1 the kernel's `__enable_irq()` calls `irq_startup(FORCE)` on it:
    ///   in reservation mode it was never activated, so `__irq_startup()` hits
    ///   `WARN_ON_ONCE(!irqd_is_activated())` and unmasks an entry whose message still points
    ///   at the shutdown vector 0xEF; the first event would then reach no handler
    ///   (`handle_edge_irq()` masks an interrupt without action). Refusing keeps the table's
    ///   rule simple: only a requested, enabled interrupt is ever unmasked, so an entry freed
    ///   by `pci_msix_free_irq()` (which deactivates but does not mask) is always masked.
    /// - Throws: EINVAL as above or when `virq` is not one of this device's interrupts;
    ///   hardware errors.
    public mutating func unmaskIRQ(_ virq: Int) throws(MSIError) {
        let fn = "enable_irq"
        guard let (d, index) = location(virq) else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        let (depth, started, hasAction) = platform.state.withLock { s -> (Int, Bool, Bool) in
            guard let r = s.rec(virq) else { return (1, false, false) }
            return (r.pointee.depth, r.pointee.started, r.pointee.requested)
        }
        if depth > 1 {
            platform.state.withLock { s in s.update(virq) { $0.depth -= 1 } }
            return
        }
        guard depth == 1 else {
            warn("__enable_irq", "Unbalanced enable for IRQ \(virq)")
            throw MSIError(.EINVAL, fn, "irq \(virq) is not disabled (unbalanced enable)")
        }
        guard hasAction else {
            warn("__irq_startup", "irq \(virq): enable_irq() without request_irq(): not activated")
            throw MSIError(.EINVAL, fn, "irq \(virq) has no action: request_irq() it first")
        }
        // irq_startup(desc, IRQ_RESEND, IRQ_START_FORCE) sets depth 0; a started interrupt is
        // then enabled (unmasked). A requested one that is not started is a managed interrupt
        // whose startup aborted for lack of an online CPU: it starts now if one is online,
        // else it aborts again (the kernel WARNs when forced) and stays shut down.
        platform.state.withLock { s in s.update(virq) { $0.depth = 0 } }
        if !started {
            guard startupManaged(virq, d, index) else {
                warn("__irq_startup_managed", "irq \(virq): forced startup with no online CPU in its affinity")
                return
            }
            platform.state.withLock { s in
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
        }
        try chipUnmask(virq)
    }
}
