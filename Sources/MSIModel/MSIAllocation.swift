// Interrupt allocation and freeing on a device domain (kernel/irq/msi.c):
// __msi_domain_alloc_irqs, msi_handle_pci_fail, msi_domain_alloc_locked with its full-range
// rollback, __msi_domain_alloc_irq_at, msi_domain_free_locked.

extension MSIDeviceData {
    /// `msi_check_reservation_mode()`: PCI bus token, MUST_REACTIVATE, not NO_MASK, and the
    /// first descriptor of the default store can mask (MSI-X always can). Like the kernel it
    /// uses `msi_first_desc()`, which moves the iterator cursor.
    mutating func checkReservationMode(_ d: MSIDomainID) -> Bool {
        let flags = slots[d.rawValue].flags
        guard slots[d.rawValue].busIsPCI, flags.contains(.mustReactivate), !flags.contains(.noMask) else {
            return false
        }
        setCursor(0)
        guard let first = findDesc(.default, .all) else { return false }
        return first.pci.isMSIX || first.pci.canMask
    }

    /// `msi_handle_pci_fail()`: non-PCI → -ENOSPC; a multi-MSI descriptor → retry with 1;
    /// otherwise the number already allocated, or -ENOSPC when none.
    func handlePCIFail(_ d: MSIDomainID, nvec: Int, allocated: Int, _ cause: MSIError) throws(MSIError) -> Int {
        guard slots[d.rawValue].busIsPCI else {
            throw MSIError(.ENOSPC, "msi_handle_pci_fail", "allocation failed on a non-PCI domain: \(cause.reason)")
        }
        if nvec > 1 { return 1 }
        if allocated > 0 { return allocated }
        throw MSIError(.ENOSPC, "msi_handle_pci_fail", "no interrupt could be allocated: \(cause.reason)")
    }

    /// The domain's `prepare_desc` op: MSI-X fills a descriptor not prepared against the table
    /// (`pci_msix_prepare_desc`); a device chip binds the slot.
    mutating func prepareDescriptor(_ d: MSIDomainID, _ index: Int) throws(MSIError) {
        guard let s = slot(d, index) else { return }
        switch chipKind(d) {
        case .pciMSIX:
            if !s.pointee.has(PackedDescriptor.hasTableBase) { try msixPrepareDescriptor(&s.pointee) }
        case .pciMSI, .none:
            break
        case .device:
            var desc = imsDescriptor(s)
            try withDeviceChip(d, "prepare_desc") { try $0.prepare(&desc) }
            s.pointee.instanceCookie = desc.instanceCookie
            s.pointee.domainCookie = desc.domainCookie
        }
    }

    /// `__msi_domain_alloc_irqs()`: for each not-associated descriptor in `first…last`,
    /// ascending: prepare it, allocate `nvec_used` interrupts from the parent, associate them
    /// and run `msi_init_virq()`. Returns 0 or the positive `msi_handle_pci_fail()` count.
    /// `d` must hold a domain.
    mutating func allocCore(_ d: MSIDomainID, _ first: Int, _ last: Int, nirqs: Int) throws(MSIError) -> Int {
        let flags = slots[d.rawValue].flags
        let activateEarly = flags.contains(.activateEarly)
        let canReserve = checkReservationMode(d)
        let (owner, nameRef, isMultiMSI) = (deviceID, slots[d.rawValue].nameRef, slots[d.rawValue].busIsPCIDeviceMSI)
        var allocated = 0
        var i = first
        while let index = storeNext(d, from: i, .notAssociated, last: last) {
            i = index + 1
            if allocated >= nirqs {
                warn("__msi_domain_alloc_irqs", "\(deviceName): more descriptors than the \(nirqs) interrupts asked for")
                throw MSIError(.EINVAL, "__msi_domain_alloc_irqs", "more unassociated descriptors than nirqs (\(nirqs))")
            }
            try prepareDescriptor(d, index)
            guard let s = slot(d, index) else { continue }
            let nvec = Int(s.pointee.nvecUsed)
            let ref = s.pointee.affinityRef
            let affinity = ref == 0 ? nil : self.affinity(d, ref)
            // The parents' allocation and, for a single interrupt, the platform half of
            // msi_init_virq in the same platform lock (nothing between them touches hardware).
            let base: Int
            let shutDown: Bool
            do throws(MSIError) {
                (base, shutDown) = try platform.state.withLock { p throws(MSIError) -> (Int, Bool) in
                    let base = try p.allocBlock(count: nvec, affinity: affinity, owner: owner, domain: d, msiIndex: index,
                                                domainNameRef: nameRef, isPCIMultiMSI: isMultiMSI)
                    guard nvec == 1, !canReserve else { return (base, false) }
                    return (base, p.initVirqNoReserve(base, activateEarly: activateEarly))
                }
            } catch {
                return try handlePCIFail(d, nvec: nvec, allocated: allocated, error)
            }
            storeSetVirq(d, index, base)
            if nvec == 1 {
                if !shutDown { try initVirqActivation(base, canReserve: canReserve, activateEarly: activateEarly) }
            } else {
                for k in 0..<nvec {
                    try initVirq(base + k, canReserve: canReserve, activateEarly: activateEarly)
                }
            }
            allocated += 1
        }
        return 0
    }

    /// `__msi_domain_alloc_locked()`: validate, require a domain, create simple descriptors if
    /// the domain asks for them, then allocate.
    mutating func allocLockedInner(_ d: MSIDomainID, _ first: Int, _ last: Int, nirqs: Int, _ fn: String) throws(MSIError) -> Int {
        guard hasDeviceDomain(d, fn) else {
            throw MSIError(.ENODEV, fn, "\(deviceName) has no \(d) domain")
        }
        if slots[d.rawValue].flags.contains(.allocSimpleDescriptors) {
            // msi_domain_add_simple_msi_descs
            for index in first...last {
                do throws(MSIError) {
                    _ = try insertPacked(PackedDescriptor(nvecUsed: 1), domain: d, at: .index(index))
                } catch {
                    freeDescs(d, first, last)
                    throw error
                }
            }
        }
        return try allocCore(d, first, last, nirqs: nirqs)
    }

    /// `msi_domain_alloc_locked()`: any non-zero outcome (error or positive count) frees the
    /// whole range, including associated descriptors that existed before the call.
    mutating func allocLocked(_ d: MSIDomainID, _ first: Int, _ last: Int, nirqs: Int, _ fn: String) throws(MSIError) -> MSIAllocResult {
        try requireData(fn)
        try checkControl(d, first, last, fn)
        do throws(MSIError) {
            let r = try allocLockedInner(d, first, last, nirqs: nirqs, fn)
            if r != 0 { freeLocked(d, first, last) }
            return r == 0 ? .allocated : .retry(r)
        } catch {
            freeLocked(d, first, last)
            throw error
        }
    }

    /// `msi_domain_alloc_irqs_range_locked(dev, domid, first, last)`.
    /// - Throws: EINVAL (invalid range or domain id, missing domain slot on a device with an MSI
    ///   parent), ENODEV (no domain), ERANGE/EBUSY (simple descriptor creation), ENOSPC.
    public mutating func allocIRQs(domain d: MSIDomainID = .default, first: Int, last: Int) throws(MSIError) -> MSIAllocResult {
        try allocLocked(d, first, last, nirqs: last + 1 - first, "msi_domain_alloc_irqs_range_locked")
    }

    /// `msi_domain_alloc_irqs_all_locked(dev, domid, nirqs)`: every not-associated descriptor
    /// in `0…hwsize-1` (used by PCI, whose descriptors exist beforehand).
    public mutating func allocAllIRQs(domain d: MSIDomainID = .default, count nirqs: Int) throws(MSIError) -> MSIAllocResult {
        try allocLocked(d, 0, hwsize(d) - 1, nirqs: nirqs, "msi_domain_alloc_irqs_all_locked")
    }

    /// `__msi_domain_alloc_irq_at(dev, domid, index, affdesc, icookie)`: inserts one descriptor
    /// at `index` (or the lowest free one) and allocates its interrupt; on failure that index is
    /// freed again. Bypasses ALLOC_SIMPLE_MSI_DESCS.
    /// The instance cookie is stored in the descriptor as given (the kernel does not check it
    /// against the domain; on a PCI domain the kernel's union would alias it with the PCI
    /// attributes, the model keeps both).
    /// - Throws: ENODEV (no domain), ERANGE/EBUSY (insert), ENOSPC, and what the domain's
    ///   `prepare_desc` refuses.
    public mutating func allocIRQ(domain d: MSIDomainID = .default, at request: MSIIndexRequest,
                                  affinity: IRQAffinityDescriptor? = nil, cookie: UInt64? = nil) throws(MSIError) -> MSIMap {
        let fn = "msi_domain_alloc_irq_at"
        try requireData(fn)
        guard hasDeviceDomain(d, fn) else { throw MSIError(.ENODEV, fn, "\(deviceName) has no \(d) domain") }
        var p = PackedDescriptor()
        p.nvecUsed = 1
        p.instanceCookie = cookie ?? 0
        p.affinityRef = affinity == nil ? 0 : storeAffinity(d, affinity.map { [$0] })
        let index: Int
        do throws(MSIError) {
            index = try insertPacked(p, domain: d, at: request)
        } catch {
            releaseAffinity(d, p.affinityRef)
            throw error
        }
        do throws(MSIError) {
            let r = try allocCore(d, index, index, nirqs: 1)
            guard r == 0 else {
                freeLocked(d, index, index)
                throw MSIError(.ENOSPC, fn, "allocation at index \(index) failed")
            }
        } catch {
            freeLocked(d, index, index)
            throw error
        }
        return MSIMap(index: index, virq: lookupVirqRaw(d, index))
    }

    func lookupVirqRaw(_ d: MSIDomainID, _ index: Int) -> Int { Int(slot(d, index)?.pointee.virq ?? 0) }

    /// `msi_domain_free_locked()`: for each associated descriptor in range, deactivate its
    /// activated interrupts, free them and clear the association; then, with FREE_MSI_DESCS,
    /// erase the range's descriptors. Invalid ranges are WARNed and ignored.
    mutating func freeLocked(_ d: MSIDomainID, _ first: Int, _ last: Int) {
        guard isValidDomain(d), !hasMSIParent || hasDomain(d), first <= last, first >= 0, last < hwsize(d) else {
            warn("msi_ctrl_valid", "free of range \(first)…\(last) on \(d) ignored")
            return
        }
        guard hasDomain(d) else { return }
        var i = first
        while let index = storeNext(d, from: i, .associated, last: last) {
            i = index + 1
            guard let s = slot(d, index) else { continue }
            _ = freeAssociated(d, index, base: Int(s.pointee.virq), count: Int(s.pointee.nvecUsed), refuseRequested: false)
        }
        if slots[d.rawValue].flags.contains(.freeDescriptors) { freeDescs(d, first, last) }
    }

    /// The interrupts of the associated descriptor at `index` (`count` from `base`): a WARN
    /// when one still has a handler, the activated ones deactivated (the MSI level writes the
    /// all-zero message), then freed; the association cleared. With `refuseRequested`, nothing
    /// is done when one is still requested, and that interrupt is returned.
    ///
    /// When none is activated (the usual case: `free_irq` deactivated it) the check and the
    /// free take the platform lock once.
    mutating func freeAssociated(_ d: MSIDomainID, _ index: Int, base: Int, count n: Int, refuseRequested: Bool) -> Int? {
        let (requested, activated) = platform.state.withLock { s -> (Int?, Bool) in
            var requested: Int?
            var activated = false
            for v in base..<(base + n) {
                guard let r = s.rec(v) else { continue }
                if requested == nil && r.pointee.requested { requested = v }
                activated = activated || r.pointee.activated
            }
            if requested != nil && refuseRequested { return (requested, activated) }
            if !activated { s.freeBlock(base, n) }
            return (requested, activated)
        }
        if let requested {
            if refuseRequested { return requested }
            warn("__msi_domain_free_irqs", "\(deviceName): freeing irq \(base) which still has a handler")
        }
        if activated {
            for k in 0..<n where isActivated(base + k) { deactivate(base + k) }
            platform.state.withLock { $0.freeBlock(base, n) }
        }
        storeSetVirq(d, index, 0)
        return nil
    }

    /// Throws EBUSY when an interrupt of an associated descriptor in range is still requested:
    /// the model refuses to free it (old kernels `BUG_ON(irq_has_action())`).
    func checkNotRequested(_ d: MSIDomainID, _ first: Int, _ last: Int, _ fn: String) throws(MSIError) {
        var i = first
        var busy: Int?
        while busy == nil, let index = storeNext(d, from: i, .associated, last: last) {
            i = index + 1
            guard let s = slot(d, index) else { continue }
            let base = Int(s.pointee.virq)
            let n = Int(s.pointee.nvecUsed)
            busy = platform.state.withLock { p in
                (base..<(base + n)).first { p.rec($0)?.pointee.requested ?? false }
            }
        }
        if let busy { throw requestedError(busy, fn) }
    }

    func requestedError(_ virq: Int, _ fn: String) -> MSIError {
        MSIError(.EBUSY, fn, "irq \(virq) is still requested: free_irq() it first")
    }

    /// `msi_domain_free_irqs_range_locked(dev, domid, first, last)`.
    /// - Throws: EINVAL for an invalid range or domain (the kernel WARNs and returns), EBUSY
    ///   if one of the interrupts is still requested.
    public mutating func freeIRQs(domain d: MSIDomainID = .default, first: Int, last: Int) throws(MSIError) {
        let fn = "msi_domain_free_irqs_range_locked"
        try requireData(fn)
        try checkControl(d, first, last, fn)
        if first == last, hasDomain(d), let s = slot(d, first), s.pointee.virq != 0 {
            // One associated descriptor (pci_msix_free_irq, pci_ims_free_irq): the request
            // check and the free in one platform lock.
            let (base, n) = (Int(s.pointee.virq), Int(s.pointee.nvecUsed))
            if let busy = freeAssociated(d, first, base: base, count: n, refuseRequested: true) { throw requestedError(busy, fn) }
            if slots[d.rawValue].flags.contains(.freeDescriptors) { freeDescs(d, first, last) }
            return
        }
        try checkNotRequested(d, first, last, fn)
        freeLocked(d, first, last)
    }

    /// `msi_domain_free_irqs_all_locked(dev, domid)`: the range `0…hwsize-1`.
    public mutating func freeAllIRQs(domain d: MSIDomainID = .default) throws(MSIError) {
        try freeIRQs(domain: d, first: 0, last: hwsize(d) - 1)
    }
}

extension PackedDescriptor {
    init(nvecUsed: UInt16) {
        self.init()
        self.nvecUsed = nvecUsed
    }
}
