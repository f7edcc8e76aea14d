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
        let fn = "request_irq"
        // One look at the platform (owner, location, managed) and its delivery table (requested).
        let id = deviceID
        let look = platform.state.withLock { s -> (d: MSIDomainID, index: Int, managed: Bool, requested: Bool, depth: Int)? in
            guard let r = s.record(virq), r.owner == id else { return nil }
            let requested = s.table.state.withLock { t in t.isRequested(virq) }
            return (r.domain, r.msiIndex, r.managed, requested, r.depth)
        }
        guard let look else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        guard !look.requested else { throw MSIError(.EBUSY, "__setup_irq", "irq \(virq) is already requested (no IRQF_SHARED)") }
        let (d, index, managed) = (look.d, look.index, look.managed)
        if !managed {
            try activate(virq, d, index, reserve: false)
            // The action installed, irq_startup's depth 0 and IRQD_IRQ_STARTED, and
            // irq_setup_affinity(), in one platform lock.
            platform.state.withLock { s in
                s.table.state.withLock { t in t.install(virq, handler) }
                s.update(virq) { $0.started = true; $0.depth = 0 }
                s.setupAffinity(virq)
            }
            do throws(MSIError) {
                try chipUnmask(virq, d, index)
            } catch {
                platform.state.withLock { s in
                    s.table.state.withLock { t in t.uninstall(virq) }
                    s.update(virq) { $0.started = false; $0.depth = look.depth }
                }
                throw error
            }
            return
        }
        platform.table.state.withLock { t in t.install(virq, handler) }
        do throws(MSIError) {
            // irq_startup() sets depth 0 first, even when the managed startup then aborts
            // (IRQ_STARTUP_ABORT: requested, stays shut down).
            platform.state.withLock { s in s.update(virq) { $0.depth = 0 } }
            if managed, !startupManaged(virq) { return }
            platform.state.withLock { s in
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
            try chipUnmask(virq)
        } catch {
            platform.table.state.withLock { t in t.uninstall(virq) }
            platform.state.withLock { s in s.update(virq) { $0.started = false; $0.depth = look.depth } }
            throw error
        }
    }

    /// `__irq_startup_managed()` and the activation it does: false when no CPU of the
    /// interrupt's mask is online or activation fails (it stays in managed shutdown).
    mutating func startupManaged(_ virq: Int) -> Bool {
        let online = platform.state.withLock { s -> Bool in
            s.update(virq) { $0.managedShutdown = false }
            guard let r = s.record(virq), r.affinity.intersects(s.online) else {
                s.update(virq) { $0.managedShutdown = true }
                return false
            }
            return true
        }
        guard online else { return false }
        do throws(MSIError) {
            try activate(virq, reserve: false)
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
        let fn = "free_irq"
        // One look at the platform: owner, location, started; the action removed.
        let id = deviceID
        let look = platform.state.withLock { s -> (d: MSIDomainID, index: Int, started: Bool, wasRequested: Bool)? in
            guard let r = s.record(virq), r.owner == id else { return nil }
            let was = s.table.state.withLock { t -> Bool in
                guard t.isRequested(virq) else { return false }
                t.uninstall(virq)
                return true
            }
            return (r.domain, r.msiIndex, r.started, was)
        }
        guard let look else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        guard look.wasRequested else {
            warn("__free_irq", "Trying to free already-free IRQ \(virq)")
            throw MSIError(.EINVAL, "__free_irq", "irq \(virq) is not requested")
        }
        let (d, index) = (look.d, look.index)
        var failure: MSIError?
        if look.started {
            var shutDown = true
            do throws(MSIError) { try chipShutdownHardware(virq, d, index) } catch { failure = error; shutDown = false }
            // irq_shutdown(): depth back to 1, shutdown or mask, no longer started.
            platform.state.withLock { s in
                s.update(virq) { r in
                    if shutDown { r.masked = true }
                    r.started = false
                    r.depth = 1
                }
            }
        }
        deactivate(virq)
        if let failure { throw failure }
    }

    /// `pci_write_msi_msg(irq, msg)`: writes `message` for `virq` through the PCI path
    /// (`__pci_write_msi_msg`: an unmasked MSI-X entry is masked around the update, the message
    /// is cached). Any interrupt of a multi-MSI block writes the block's single message.
    /// - Throws: EINVAL when `virq` is not one of this device's PCI MSI/MSI-X interrupts.
    public mutating func writeMSIMessage(virq: Int, _ message: MSIMessage) throws(MSIError) {
        let fn = "pci_write_msi_msg"
        guard let (d, index) = location(virq), let dom = domain(d), let s = slot(d, index) else {
            throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)")
        }
        switch dom.chip {
        case .pciMSI, .pciMSIX: try pciWriteMessage(s, message)
        case .device: throw MSIError(.EINVAL, fn, "irq \(virq) is not a PCI MSI/MSI-X interrupt")
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
        let depth = platform.state.withLock { $0.record(virq)?.depth ?? 1 }
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
        guard location(virq) != nil else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        let (depth, started) = platform.state.withLock { s in (s.record(virq)?.depth ?? 1, s.record(virq)?.started ?? false) }
        if depth > 1 {
            platform.state.withLock { s in s.update(virq) { $0.depth -= 1 } }
            return
        }
        guard depth == 1 else {
            warn("__enable_irq", "Unbalanced enable for IRQ \(virq)")
            throw MSIError(.EINVAL, fn, "irq \(virq) is not disabled (unbalanced enable)")
        }
        let hasAction = platform.table.state.withLock { t in t.isRequested(virq) }
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
            guard startupManaged(virq) else {
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
