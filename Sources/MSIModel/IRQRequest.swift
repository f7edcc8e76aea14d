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
        let look = platform.state.withLock { s -> (d: MSIDomainID, index: Int, managed: Bool, requested: Bool)? in
            guard let r = s.record(virq), r.owner == id else { return nil }
            let requested = s.table.state.withLock { t in t.isRequested(virq) }
            return (r.domain, r.msiIndex, r.managed, requested)
        }
        guard let look else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        guard !look.requested else { throw MSIError(.EBUSY, "__setup_irq", "irq \(virq) is already requested (no IRQF_SHARED)") }
        let (d, index, managed) = (look.d, look.index, look.managed)
        if !managed {
            try activate(virq, d, index, reserve: false)
            // The action installed, irq_startup's IRQD_IRQ_STARTED and irq_setup_affinity(), in
            // one platform lock.
            platform.state.withLock { s in
                s.table.state.withLock { t in t.install(virq, handler) }
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
            do throws(MSIError) {
                try chipUnmask(virq, d, index)
            } catch {
                platform.state.withLock { s in
                    s.table.state.withLock { t in t.uninstall(virq) }
                    s.update(virq) { $0.started = false }
                }
                throw error
            }
            return
        }
        platform.table.state.withLock { t in t.install(virq, handler) }
        do throws(MSIError) {
            if managed {
                // __irq_startup_managed
                let online = platform.state.withLock { s -> Bool in
                    s.update(virq) { $0.managedShutdown = false }
                    guard let r = s.record(virq), r.affinity.intersects(s.online) else {
                        s.update(virq) { $0.managedShutdown = true }
                        return false
                    }
                    return true
                }
                guard online else { return }  // IRQ_STARTUP_ABORT: requested, stays shut down
                do throws(MSIError) {
                    try activate(virq, reserve: false)
                } catch {
                    warn("irq_startup", "irq \(virq): managed activation failed: \(error)")
                    platform.state.withLock { s in s.update(virq) { $0.managedShutdown = true } }
                    return
                }
            }
            platform.state.withLock { s in
                s.update(virq) { $0.started = true }
                s.setupAffinity(virq)
            }
            try chipUnmask(virq)
        } catch {
            platform.table.state.withLock { t in t.uninstall(virq) }
            platform.state.withLock { s in s.update(virq) { $0.started = false } }
            throw error
        }
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
            platform.state.withLock { s in
                s.update(virq) { r in
                    if shutDown { r.masked = true }
                    r.started = false
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
