// The MSI level of an interrupt: activation (compose + write), deactivation (all-zero
// message), msi_init_virq, and the irq_chip callbacks of the PCI MSI, PCI MSI-X and device
// (IMS) chips, dispatched per interrupt. Also the PCI hardware primitives of
// drivers/pci/msi/msi.c and msi.h, one protocol call per hardware access.
import MSIShimCore

/// Runs one hardware access, turning a backend error into an ``MSIError`` (its errno, or EIO).
@inline(__always)
func hardware<T>(_ fn: String, _ body: () throws -> T) throws(MSIError) -> T {
    do {
        return try body()
    } catch let e as MSIError {
        throw e
    } catch {
        let code = (error as? any ErrnoCarrying)?.errno ?? .EIO
        throw MSIError(code, fn, "hardware access failed: \(error)")
    }
}

extension MSIDeviceData {
    // MARK: platform record helpers

    /// Domain and descriptor index of `virq`, if this device owns it.
    func location(_ virq: Int) -> (MSIDomainID, Int)? {
        let id = deviceID
        return platform.state.withLock { s in
            guard let r = s.rec(virq), r.pointee.owner == id else { return nil }
            return (r.pointee.domain, r.pointee.msiIndex)
        }
    }

    func isActivated(_ virq: Int) -> Bool {
        platform.state.withLock { $0.rec(virq)?.pointee.activated ?? false }
    }

    /// Domain, index and activation state of `virq` in one look at the platform, if this
    /// device owns it.
    func locationAndState(_ virq: Int) -> (MSIDomainID, Int, activated: Bool)? {
        let id = deviceID
        return platform.state.withLock { s in
            guard let r = s.rec(virq), r.pointee.owner == id else { return nil }
            return (r.pointee.domain, r.pointee.msiIndex, r.pointee.activated)
        }
    }

    /// Which chip domain `d` has (a plain value read in place: this runs on every chip
    /// callback).
    @inline(__always)
    func chipKind(_ d: MSIDomainID) -> DomainChipKind {
        isValidDomain(d) ? slots[d.rawValue].chipKind : .none
    }

    /// Runs `body` on domain `d`'s device chip, borrowed through its box (no existential copy,
    /// no reference counting), turning a backend error into an ``MSIError`` as ``hardware(_:_:)``
    /// does. Nothing happens when the domain has no device chip.
    @inline(__always)
    func withDeviceChip(_ d: MSIDomainID, _ fn: String, _ body: (any IMSChip) throws -> Void) throws(MSIError) {
        guard isValidDomain(d), let box = slots[d.rawValue].chipBox else { return }
        try hardware(fn) { try box._withUnsafeGuaranteedRef { try body($0.chip) } }
    }

    // MARK: activation (msi_domain_activate / msi_domain_deactivate)

    /// `irq_domain_activate_irq(irqd, reserve)`: parents first (vector, remapping), then the MSI
    /// level composes and writes the message. A no-op if already activated.
    mutating func activate(_ virq: Int, reserve: Bool) throws(MSIError) {
        guard let (d, index) = location(virq) else {
            throw MSIError(.EINVAL, "irq_domain_activate_irq", "irq \(virq) does not belong to \(deviceName)")
        }
        try activate(virq, d, index, reserve: reserve)
    }

    /// ``activate(_:reserve:)`` for an interrupt whose domain and index the caller looked up:
    /// the activation check and the parents' work take the platform lock once.
    mutating func activate(_ virq: Int, _ d: MSIDomainID, _ index: Int, reserve: Bool) throws(MSIError) {
        let composed = try platform.state.withLock { s throws(MSIError) -> MSIMessage? in
            guard let r = s.rec(virq), !r.pointee.activated else { return nil }
            return try s.activateParents(virq, reserve: reserve)
        }
        guard let message = composed else { return }
        try writeActivated(virq, d, index, message)
    }

    /// The MSI level's half of an activation whose parents are done: writes `message`; if
    /// the write fails the parents are deactivated again.
    mutating func writeActivated(_ virq: Int, _ d: MSIDomainID, _ index: Int, _ message: MSIMessage) throws(MSIError) {
        do throws(MSIError) {
            try chipWriteMessage(virq, d, index, message)
        } catch {
            platform.state.withLock { $0.deactivateParents(virq) }
            throw error
        }
    }

    /// `irq_domain_deactivate_irq()`: the MSI level writes the all-zero message, then the
    /// parents release (remapping entry cleared, vector freed or re-reserved).
    mutating func deactivate(_ virq: Int) {
        guard let (d, index, activated) = locationAndState(virq), activated else { return }
        deactivateActivated(virq, d, index)
    }

    /// ``deactivate(_:)`` for an interrupt the caller knows is activated, at `d`/`index`.
    mutating func deactivateActivated(_ virq: Int, _ d: MSIDomainID, _ index: Int) {
        writeDeactivated(virq, d, index)
        platform.state.withLock { $0.deactivateParents(virq) }
    }

    /// The MSI level's half of a deactivation: the all-zero message (a failure is WARNed; the
    /// parents are deactivated regardless).
    mutating func writeDeactivated(_ virq: Int, _ d: MSIDomainID, _ index: Int) {
        do throws(MSIError) {
            try chipWriteMessage(virq, d, index, .zero)
        } catch {
            warn("msi_domain_deactivate", "irq \(virq): \(error)")
        }
    }

    /// `msi_init_virq()`.
    mutating func initVirq(_ virq: Int, canReserve: Bool, activateEarly: Bool) throws(MSIError) {
        if !canReserve {
            let shutDown = platform.state.withLock { s in s.initVirqNoReserve(virq, activateEarly: activateEarly) }
            if shutDown { return }
        }
        try initVirqActivation(virq, canReserve: canReserve, activateEarly: activateEarly)
    }

    /// The part of `msi_init_virq()` after the reservation flags: early activation (reserved:
    /// the vector domain points the message at the shutdown vector and the interrupt is not
    /// marked activated, so `request_irq()` activates it for real).
    mutating func initVirqActivation(_ virq: Int, canReserve: Bool, activateEarly: Bool) throws(MSIError) {
        guard activateEarly else { return }
        try activate(virq, reserve: canReserve)
        if canReserve { platform.state.withLock { s in s.update(virq) { $0.activated = false } } }
    }

    // MARK: irq_chip dispatch

    func imsDescriptor(_ s: UnsafeMutablePointer<PackedDescriptor>) -> IMSDescriptor {
        IMSDescriptor(index: Int(s.pointee.index), virq: Int(s.pointee.virq),
                      instanceCookie: s.pointee.instanceCookie, domainCookie: s.pointee.domainCookie)
    }

    /// `irq_chip_write_msi_msg()` for `virq`.
    mutating func chipWriteMessage(_ virq: Int, _ d: MSIDomainID, _ index: Int, _ message: MSIMessage) throws(MSIError) {
        let kind = chipKind(d)
        guard kind != .none, let s = slot(d, index) else { return }
        switch kind {
        case .pciMSI, .pciMSIX:
            // pci_msi_domain_write_msg: only the first interrupt of a multi-MSI block writes.
            if Int(s.pointee.virq) == virq { try pciWriteMessage(s, message) }
        case .device:
            let desc = imsDescriptor(s)
            try withDeviceChip(d, "irq_write_msi_msg") { try $0.writeMessage(message, for: desc) }
            s.pointee.message = message
        case .none:
            break
        }
    }

    /// `irq_mask` of the interrupt's chip.
    mutating func chipMask(_ virq: Int) throws(MSIError) {
        guard let (d, index) = location(virq) else { return }
        try chipMaskHardware(virq, d, index)
        platform.state.withLock { p in p.update(virq) { $0.masked = true } }
    }

    /// The hardware part of `irq_mask` (the caller records IRQD_IRQ_MASKED).
    mutating func chipMaskHardware(_ virq: Int, _ d: MSIDomainID, _ index: Int) throws(MSIError) {
        let kind = chipKind(d)
        guard kind != .none, let s = slot(d, index) else { return }
        switch kind {
        case .pciMSIX: try msixMask(s)
        case .pciMSI: try msiUpdateMask(s, clear: 0, set: 1 << UInt32(max(0, virq - Int(s.pointee.virq)) & 31))
        case .device:
            let desc = imsDescriptor(s)
            try withDeviceChip(d, "irq_mask") { try $0.mask(desc) }
        case .none: break
        }
    }

    /// `irq_unmask` of the interrupt's chip.
    mutating func chipUnmask(_ virq: Int) throws(MSIError) {
        guard let (d, index) = location(virq) else { return }
        try chipUnmask(virq, d, index)
    }

    /// `irq_unmask` of the chip of `virq` at `d`/`index`.
    mutating func chipUnmask(_ virq: Int, _ d: MSIDomainID, _ index: Int) throws(MSIError) {
        guard chipKind(d) != .none, slot(d, index) != nil else { return }
        try chipUnmaskHardware(virq, d, index)
        platform.state.withLock { p in p.update(virq) { $0.masked = false } }
    }

    /// The hardware part of `irq_unmask` (the caller records IRQD_IRQ_MASKED cleared).
    mutating func chipUnmaskHardware(_ virq: Int, _ d: MSIDomainID, _ index: Int) throws(MSIError) {
        let kind = chipKind(d)
        guard kind != .none, let s = slot(d, index) else { return }
        switch kind {
        case .pciMSIX: try msixUnmask(s)
        case .pciMSI: try msiUpdateMask(s, clear: 1 << UInt32(max(0, virq - Int(s.pointee.virq)) & 31), set: 0)
        case .device:
            let desc = imsDescriptor(s)
            try withDeviceChip(d, "irq_unmask") { try $0.unmask(desc) }
        case .none: break
        }
    }

    /// The hardware part of `irq_shutdown()`: the chip's `irq_shutdown` when it has one, else
    /// mask (the caller records IRQD_IRQ_MASKED).
    mutating func chipShutdownHardware(_ virq: Int, _ d: MSIDomainID, _ index: Int) throws(MSIError) {
        let kind = chipKind(d)
        guard kind != .none, let s = slot(d, index) else { return }
        if kind == .device && slots[d.rawValue].chipHasShutdown {
            let desc = imsDescriptor(s)
            try withDeviceChip(d, "irq_shutdown") { try $0.shutdown(desc) }
        } else {
            try chipMaskHardware(virq, d, index)
        }
    }

    // MARK: PCI hardware primitives

    func pciHW(_ fn: String) throws(MSIError) -> PCIState {
        guard let pci else { throw MSIError(.ENODEV, fn, "\(deviceName) is not a PCI device") }
        return pci
    }

    func msixHW(_ fn: String) throws(MSIError) -> any MSIXHardware {
        _ = try pciHW(fn)
        guard let hw = pciHardware?.msix else { throw MSIError(.EINVAL, fn, "\(deviceName) has no MSI-X capability") }
        return hw
    }

    func msiHW(_ fn: String) throws(MSIError) -> any MSIHardware {
        _ = try pciHW(fn)
        guard let hw = pciHardware?.msi else { throw MSIError(.EINVAL, fn, "\(deviceName) has no MSI capability") }
        return hw
    }

    /// `pci_intx_for_msi()` → `pci_intx()`: read Command, write it only if the INTx disable bit
    /// changes.
    mutating func intxForMSI(enable: Bool) throws(MSIError) {
        guard let pci, !pci.quirks.intxDisableBug, let cmd = pciHardware?.command else { return }
        let old = try hardware("pci_intx") { try cmd.readCommand() }
        let new = enable ? old & ~PCIReg.Command.intxDisable : old | PCIReg.Command.intxDisable
        if new != old { try hardware("pci_intx") { try cmd.writeCommand(new) } }
    }

    /// `pci_intx(dev, 1)` for the INTx fallback of `pci_alloc_irq_vectors()` (no quirk check).
    mutating func pciIntx(enable: Bool) throws(MSIError) {
        guard let cmd = pciHardware?.command else { return }
        let old = try hardware("pci_intx") { try cmd.readCommand() }
        let new = enable ? old & ~PCIReg.Command.intxDisable : old | PCIReg.Command.intxDisable
        if new != old { try hardware("pci_intx") { try cmd.writeCommand(new) } }
    }

    /// `pci_msix_clear_and_set_ctrl()`: read-modify-write of MSI-X Message Control.
    func msixClearAndSetControl(clear: UInt16, set: UInt16) throws(MSIError) {
        let hw = try msixHW("pci_msix_clear_and_set_ctrl")
        let c = try hardware("pci_msix_clear_and_set_ctrl") { try hw.readMSIXControl() }
        try hardware("pci_msix_clear_and_set_ctrl") { try hw.writeMSIXControl((c & ~clear) | set) }
    }

    /// `pci_msi_set_enable()`.
    func msiSetEnable(_ on: Bool) throws(MSIError) {
        let hw = try msiHW("pci_msi_set_enable")
        var c = try hardware("pci_msi_set_enable") { try hw.readMSIControl() }
        c &= ~PCIReg.MSI.enable
        if on { c |= PCIReg.MSI.enable }
        try hardware("pci_msi_set_enable") { try hw.writeMSIControl(c) }
    }

    /// `__pci_write_msi_msg()`: writes the hardware unless the device is not in D0 or is
    /// disconnected, and always caches the message.
    func pciWriteMessage(_ s: UnsafeMutablePointer<PackedDescriptor>, _ msg: MSIMessage) throws(MSIError) {
        guard let pci else { return }
        if pci.power == .d0 {
            if s.pointee.has(PackedDescriptor.isMSIX) {
                try pciWriteMessageMSIX(s, msg)
            } else {
                try pciWriteMessageMSI(s, msg)
            }
        }
        s.pointee.message = msg
        if s.pointee.flags & PackedDescriptor.hasWriteCallback != 0, let callback = writeCallbacks[Int(s.pointee.index)] {
            callback(publicDescriptor(.default, s.pointee))
        }
    }

    /// `pci_write_msg_msix()`: skip virtual entries; mask an unmasked entry around the update;
    /// write address lo, hi, data; restore; read data back to flush.
    func pciWriteMessageMSIX(_ s: UnsafeMutablePointer<PackedDescriptor>, _ msg: MSIMessage) throws(MSIError) {
        if s.pointee.has(PackedDescriptor.isVirtual) { return }
        let hw = try msixHW("pci_write_msg_msix")
        let index = Int(s.pointee.index)
        let ctrl = s.pointee.maskCache
        let unmasked = ctrl & PCIReg.MSIX.vectorControlMask == 0
        if unmasked { try msixWriteVectorControl(s, ctrl | PCIReg.MSIX.vectorControlMask) }
        try hardware("pci_write_msg_msix") {
            try hw.writeEntry(index, .addressLo, msg.addressLo)
            try hw.writeEntry(index, .addressHi, msg.addressHi)
            try hw.writeEntry(index, .data, msg.data)
        }
        if unmasked { try msixWriteVectorControl(s, ctrl) }
        _ = try hardware("pci_write_msg_msix") { try hw.readEntry(index, .data) }
    }

    /// `pci_write_msg_msi()`: MME into Message Control, address, data, read Control back.
    func pciWriteMessageMSI(_ s: UnsafeMutablePointer<PackedDescriptor>, _ msg: MSIMessage) throws(MSIError) {
        let hw = try msiHW("pci_write_msg_msi")
        let multiple = UInt16(s.pointee.multipleLog2)
        let is64 = s.pointee.has(PackedDescriptor.is64)
        try hardware("pci_write_msg_msi") {
            var c = try hw.readMSIControl()
            c = (c & ~PCIReg.MSI.qsize) | (multiple << 4 & PCIReg.MSI.qsize)
            try hw.writeMSIControl(c)
            try hw.writeAddressLo(msg.addressLo)
            if is64 {
                try hw.writeAddressHi(msg.addressHi)
            }
            try hw.writeData(UInt16(truncatingIfNeeded: msg.data))
            _ = try hw.readMSIControl()
        }
    }

    /// `pci_msix_write_vector_ctrl()`: writes only if the entry can mask; never updates the
    /// cache.
    func msixWriteVectorControl(_ s: UnsafeMutablePointer<PackedDescriptor>, _ ctrl: UInt32) throws(MSIError) {
        guard s.pointee.has(PackedDescriptor.canMask) else { return }
        let hw = try msixHW("pci_msix_write_vector_ctrl")
        let index = Int(s.pointee.index)
        try hardware("pci_msix_write_vector_ctrl") { try hw.writeEntry(index, .vectorControl, ctrl) }
    }

    /// `pci_msix_mask()`: set the cached mask bit, write it, flush with a read of the table
    /// base (`readl(desc->pci.mask_base)`, i.e. entry 0's address low).
    func msixMask(_ s: UnsafeMutablePointer<PackedDescriptor>) throws(MSIError) {
        s.pointee.maskCache |= PCIReg.MSIX.vectorControlMask
        try msixWriteVectorControl(s, s.pointee.maskCache)
        let hw = try msixHW("pci_msix_mask")
        _ = try hardware("pci_msix_mask") { try hw.readEntry(0, .addressLo) }
    }

    /// `pci_msix_unmask()`: clear the cached mask bit and write it (no flush).
    func msixUnmask(_ s: UnsafeMutablePointer<PackedDescriptor>) throws(MSIError) {
        s.pointee.maskCache &= ~PCIReg.MSIX.vectorControlMask
        try msixWriteVectorControl(s, s.pointee.maskCache)
    }

    /// `pci_msi_update_mask()`: no-op unless the function can mask; updates the cache and
    /// writes the whole mask register.
    func msiUpdateMask(_ s: UnsafeMutablePointer<PackedDescriptor>, clear: UInt32, set: UInt32) throws(MSIError) {
        guard s.pointee.has(PackedDescriptor.canMask) else { return }
        s.pointee.maskCache = (s.pointee.maskCache & ~clear) | set
        let hw = try msiHW("pci_msi_update_mask")
        let v = s.pointee.maskCache
        try hardware("pci_msi_update_mask") { try hw.writeMask(v) }
    }

    /// `msix_mask_all()`: vector control = 1 in every entry of the table (no cache update).
    func msixMaskAll(_ tableSize: Int) throws(MSIError) {
        let hw = try msixHW("msix_mask_all")
        try hardware("msix_mask_all") {
            for i in 0..<tableSize { try hw.writeEntry(i, .vectorControl, PCIReg.MSIX.vectorControlMask) }
        }
    }

    /// `msix_prepare_msi_desc()`: fills a zeroed MSI-X descriptor: one vector, MSI-X, 64-bit,
    /// the INTx irq to restore, the table base; and unless NO_MASK or virtual, `can_mask` and
    /// the entry's vector control read into the cache.
    func msixPrepareDescriptor(_ p: inout PackedDescriptor) throws(MSIError) {
        guard let pci else { return }
        p.nvecUsed = 1
        p.set(PackedDescriptor.isMSIX, true)
        p.set(PackedDescriptor.is64, true)
        p.defaultIRQ = UInt32(truncatingIfNeeded: pci.irq)
        p.set(PackedDescriptor.hasTableBase, true)
        if !parentSupports(.noMask) && !p.has(PackedDescriptor.isVirtual) {
            let hw = try msixHW("msix_prepare_msi_desc")
            let index = Int(p.index)
            p.set(PackedDescriptor.canMask, true)
            if pci.quirks.msixTouchEntryDataFirst {
                try hardware("msix_prepare_msi_desc") { try hw.writeEntry(index, .data, 0) }
            }
            p.maskCache = try hardware("msix_prepare_msi_desc") { try hw.readEntry(index, .vectorControl) }
        }
    }

    /// `pci_msi_domain_supports(dev, feature, DENY_LEGACY)`: the parent's supported flags.
    func parentSupports(_ f: MSIDomainFlags) -> Bool {
        hasMSIParent && platform.supportedFlags.isSuperset(of: f)
    }
}
