// Moving an interrupt to other CPUs: irq_set_affinity() (kernel/irq/manage.c) as user space
// reaches it through /proc/irq/N/smp_affinity_list (kernel/irq/proc.c), down to the x86 vector
// domain (apic_set_affinity, assign_vector_locked in arch/x86/kernel/apic/vector.c), the PCI
// MSI chip's msi_set_affinity (arch/x86/kernel/apic/msi.c), msi_domain_set_affinity
// (kernel/irq/msi.c) and Intel remapping's IRTE rewrite.
//
// What the model does differently, on purpose:
// - On the x86 vector parent the PCI MSI/MSI-X chips are IRQCHIP_MOVE_DEFERRED: the kernel
//   records the new mask and moves the interrupt from its next interrupt's ack
//   (__irq_move_irq: mask unless masked, irq_do_set_affinity, unmask). The model runs that
//   same sequence at the call, so the next message already goes to the new CPU, and an
//   exhausted vector space is reported (ENOSPC) instead of being logged at interrupt time.
// - The old vector is released at once, not after the first interrupt on the new one
//   (apic_update_vector's move_in_progress and the cleanup timer are not modelled), so a
//   second move never finds a move in progress (the kernel's EBUSY, then a pending move).

/// Where an interrupt's message points after an affinity change: the CPU and vector of its
/// `irq_cfg` (0xEF on the first online CPU while it holds only a reservation).
public struct IRQTarget: Hashable, Sendable {
    /// The Linux interrupt.
    public var virq: Int
    /// The CPU the message targets.
    public var cpu: Int
    /// The vector on that CPU.
    public var vector: Int
    /// The mask now recorded for the interrupt (`irq_common_data.affinity`).
    public var affinity: CPUMask

    /// A target.
    public init(virq: Int, cpu: Int, vector: Int, affinity: CPUMask) {
        self.virq = virq
        self.cpu = cpu
        self.vector = vector
        self.affinity = affinity
    }
}

extension MSIDeviceData {
    /// `irq_set_affinity()` as a write of `cpus` to `/proc/irq/N/smp_affinity_list` makes it,
    /// for one of this device's interrupts.
    ///
    /// Checks in the kernel's order: `irq_can_set_affinity_usr()` (a managed interrupt is
    /// refused with EPERM; kernels before 2024 returned EIO), the cpulist parser (a CPU at or
    /// past `nr_cpu_ids` is ERANGE), no online CPU in the mask (EINVAL from
    /// `irq_select_affinity_usr()`). Then `irq_set_affinity_locked()`: an interrupt not yet
    /// activated only records the mask (activation at `request_irq()` uses it); an activated
    /// one gets a vector on a CPU of the mask from the matrix and its message rewritten with
    /// the sequence of the table it lives in:
    /// - PCI MSI-X / MSI on the x86 vector parent (`msi_set_affinity`, run as the kernel's
    ///   deferred move does it): mask unless masked; then, for a started interrupt that can
    ///   mask and changes both vector and CPU, the new vector on the old CPU first and then
    ///   the final message, otherwise the final message at once (each a `__pci_write_msi_msg`,
    ///   so `write_msi_msg` callbacks see both); unmask again.
    /// - IMS on the vector parent (`msi_domain_set_affinity`): one write of the new message.
    /// - Under interrupt remapping: the IRTE takes the new CPU and vector; the message, which
    ///   names only the IRTE, is not written.
    /// The old vector returns to the matrix.
    /// - Throws: EINVAL (not this device's interrupt, no online CPU in `cpus`), EPERM
    ///   (managed), ERANGE (a CPU past the last), ENOSPC (no free vector on the CPUs asked
    ///   for), hardware errors. Nothing changes on a refusal.
    public mutating func setAffinity(_ virq: Int, to cpus: CPUMask) throws(MSIError) -> IRQTarget {
        let fn = "irq_set_affinity"
        guard let (d, index) = location(virq) else { throw MSIError(.EINVAL, fn, "irq \(virq) does not belong to \(deviceName)") }
        let record = platform.state.withLock { $0.record(virq) }
        guard let record else { throw MSIError(.EINVAL, fn, "irq \(virq) is not allocated") }
        guard !record.managed else {
            throw MSIError(.EPERM, "write_irq_affinity", "irq \(virq) has kernel-managed affinity \(record.affinity)")
        }
        let cpuCount = platform.cpuCount
        if let past = cpus.first(where: { $0 >= cpuCount }) {
            throw MSIError(.ERANGE, "bitmap_parselist", "CPU \(past) is past the last CPU (\(cpuCount - 1))")
        }
        let online = platform.state.withLock { $0.online }
        guard cpus.intersects(online) else {
            throw MSIError(.EINVAL, "irq_select_affinity_usr", "no online CPU in \(cpus) (online: \(online))")
        }
        guard record.activated else {
            // irq_set_affinity_deactivated: only the mask is kept; activation uses it.
            platform.state.withLock { s in s.update(virq) { r in r.affinity = cpus; r.affinitySet = true } }
            return target(virq)
        }
        guard let dom = domain(d) else { throw MSIError(.EINVAL, fn, "irq \(virq): no \(d) domain") }
        if platform.hasInterruptRemapping {
            // intel_ir_set_affinity: apic_set_affinity, then the IRTE; IRQ_SET_MASK_OK_DONE.
            _ = try platform.state.withLock { s throws(MSIError) in try s.apicSetAffinity(virq, cpus) }
        } else {
            switch dom.chip {
            case .pciMSI, .pciMSIX:
                try pciMoveDeferred(virq, d, index, to: cpus, started: record.started, wasMasked: record.masked,
                                    canReserve: record.irqdCanReserve)
            case .device:
                // msi_domain_set_affinity: the parent moves, the chip writes the new message.
                _ = try platform.state.withLock { s throws(MSIError) in try s.apicSetAffinity(virq, cpus) }
                let message = try platform.state.withLock { s throws(MSIError) in try s.compose(virq) }
                try chipWriteMessage(virq, d, index, message)
            }
        }
        platform.state.withLock { s in s.update(virq) { r in r.affinity = cpus; r.affinitySet = true } }
        return target(virq)
    }

    /// ``setAffinity(_:to:)`` with the single CPU `cpu` (`echo CPU > smp_affinity_list`).
    /// - Throws: ERANGE for a CPU past the last (or past what a mask holds), then as
    ///   ``setAffinity(_:to:)``.
    public mutating func setAffinity(_ virq: Int, toCPU cpu: Int) throws(MSIError) -> IRQTarget {
        guard cpu >= 0, cpu < platform.cpuCount else {
            // The kernel checks the interrupt before it parses the mask; keep that order.
            guard location(virq) != nil else {
                throw MSIError(.EINVAL, "irq_set_affinity", "irq \(virq) does not belong to \(deviceName)")
            }
            if platform.state.withLock({ $0.record(virq)?.managed ?? false }) {
                throw MSIError(.EPERM, "write_irq_affinity", "irq \(virq) has kernel-managed affinity")
            }
            throw MSIError(.ERANGE, "bitmap_parselist", "CPU \(cpu) is past the last CPU (\(platform.cpuCount - 1))")
        }
        return try setAffinity(virq, to: .of(cpu))
    }

    /// The kernel's deferred move of a PCI MSI/MSI-X interrupt on the x86 vector parent
    /// (`__irq_move_irq` → `irq_do_set_affinity` → `msi_set_affinity`), run now.
    mutating func pciMoveDeferred(_ virq: Int, _ d: MSIDomainID, _ index: Int, to cpus: CPUMask, started: Bool,
                                  wasMasked: Bool, canReserve: Bool) throws(MSIError) {
        let maskAround = started && !wasMasked
        if maskAround { try chipMask(virq) }
        let old: (cpu: Int, vector: Int)
        do throws(MSIError) {
            old = try platform.state.withLock { s throws(MSIError) in try s.apicSetAffinity(virq, cpus) }
        } catch {
            if maskAround { try chipUnmask(virq) }
            throw error
        }
        let (final, intermediate) = try platform.state.withLock { s throws(MSIError) -> (MSIMessage, MSIMessage?) in
            let final = try s.compose(virq)
            guard let r = s.record(virq) else { return (final, nil) }
            // msi_set_affinity's direct-update conditions (apic IDs compared via the CPUs).
            let direct = !canReserve || r.cfgVector == old.vector || old.vector == X86Vectors.managedShutdown
                || !started || s.apics[r.cfgCPU] == s.apics[min(max(old.cpu, 0), s.apics.count - 1)]
            return (final, direct ? nil : try s.composeCompatibility(cpu: old.cpu, vector: r.cfgVector))
        }
        if let intermediate { try chipWriteMessage(virq, d, index, intermediate) }
        try chipWriteMessage(virq, d, index, final)
        if maskAround { try chipUnmask(virq) }
    }

    /// Where `virq`'s message points now, and its recorded mask.
    func target(_ virq: Int) -> IRQTarget {
        platform.state.withLock { s in
            let r = s.record(virq)
            return IRQTarget(virq: virq, cpu: r?.cfgCPU ?? 0, vector: r?.cfgVector ?? 0, affinity: r?.affinity ?? CPUMask())
        }
    }
}

extension MSIDevice {
    /// `irq_set_affinity()` from user space (`/proc/irq/N/smp_affinity_list`); see
    /// ``MSIDeviceData/setAffinity(_:to:)``.
    public func setAffinity(_ virq: Int, to cpus: CPUMask) throws(MSIError) -> IRQTarget {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.setAffinity(virq, to: cpus) }
    }

    /// ``setAffinity(_:to:)`` with one CPU; see ``MSIDeviceData/setAffinity(_:toCPU:)``.
    public func setAffinity(_ virq: Int, toCPU cpu: Int) throws(MSIError) -> IRQTarget {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.setAffinity(virq, toCPU: cpu) }
    }
}
