// The PCI/MSI layer (drivers/pci/msi/api.c, msi.c, irqdomain.c): enabling MSI-X and MSI with
// the kernel's check order, retry loop and hardware programming order, pci_irq_vector, disable
// and free, dynamic MSI-X, and IMS (v6.2…v6.9's pci_create_ims_domain / pci_ims_alloc_irq).
import MSIShimCore

extension MSIDeviceData {
    /// `pci_msi_domain_supports(dev, feature, mode)`: without an MSI parent the answer is
    /// false (x86 has no legacy arch fallbacks); otherwise the parent's supported flags decide.
    func pciDomainSupports(_ feature: MSIDomainFlags) -> Bool {
        hasMSIParent && platform.supportedFlags.isSuperset(of: feature)
    }

    /// `pci_msi_supported(dev, nvec)`: MSI globally enabled, not `dev->no_msi`, `nvec >= 1`.
    func pciMSISupported(_ nvec: Int) -> Bool {
        guard let pci, platform.configuration.msiEnabled, !pci.quirks.noMSI, nvec >= 1 else { return false }
        return true
    }

    /// `pci_setup_msix_device_domain()` / `pci_setup_msi_device_domain()`: keep a matching
    /// domain, replace the other type's, create one sized `hwsize`.
    mutating func setupPCIDeviceDomain(msix: Bool, hwsize: Int) -> Bool {
        let token: IRQDomainBusToken = msix ? .pciDeviceMSIX : .pciDeviceMSI
        let other: IRQDomainBusToken = msix ? .pciDeviceMSI : .pciDeviceMSIX
        if let pci, msix ? pci.msiEnabled : pci.msixEnabled {
            warn(msix ? "pci_setup_msix_device_domain" : "pci_setup_msi_device_domain", "the other mode is enabled")
            return false
        }
        if domainMatches(.default, busToken: token) { return true }
        if domainMatches(.default, busToken: other) { removeDomain(.default) }
        guard hasMSIParent else { return true }
        let rm = platform.configuration.reservationMode
        do throws(MSIError) {
            try createDomain(.default, template: msix ? .pciMSIX(reservationMode: rm) : .pciMSI(reservationMode: rm), hwsize: hwsize)
            return true
        } catch {
            return false
        }
    }

    /// `pci_msix_vec_count()`: the table size from Message Control (-EINVAL without MSI-X).
    func msixVectorCount() throws(MSIError) -> Int {
        let hw = try msixHW("pci_msix_vec_count")
        let c = try hardware("pci_msix_vec_count") { try hw.readMSIXControl() }
        return Int(c & PCIReg.MSIX.tableSizeMask) + 1
    }

    /// `pci_msi_vec_count()`: `1 << MMC` (-EINVAL without MSI).
    func msiVectorCount() throws(MSIError) -> Int {
        let hw = try msiHW("pci_msi_vec_count")
        let c = try hardware("pci_msi_vec_count") { try hw.readMSIControl() }
        return 1 << Int((c & PCIReg.MSI.qmask) >> 1)
    }

    // MARK: MSI-X

    /// `__pci_enable_msix_range(dev, entries, minvec, maxvec, affd, flags)`.
    mutating func enableMSIXRange(entries: [Int]?, min minvec: Int, max maxvec: Int, affinity: IRQAffinity?,
                                  flags: PCIIRQFlags) throws(MSIError) -> Int {
        let fn = "__pci_enable_msix_range"
        var nvec = maxvec
        guard maxvec >= minvec else { throw MSIError(.ERANGE, fn, "maxvec \(maxvec) < minvec \(minvec)") }
        let pci = try pciHW(fn)
        guard !pci.msiEnabled else { throw MSIError(.EINVAL, fn, "can't enable MSI-X (MSI already enabled)") }
        guard !pci.msixEnabled else {
            warn(fn, "\(deviceName): MSI-X already enabled")
            throw MSIError(.EINVAL, fn, "MSI-X is already enabled")
        }
        guard pciDomainSupports(.pciMSIX) else { throw MSIError(.ENOTSUPP, fn, "the MSI parent does not support PCI MSI-X") }
        guard pciMSISupported(nvec), pci.power == .d0 else {
            throw MSIError(.EINVAL, fn, "MSI not supported for \(deviceName) (pci=nomsi, no_msi, nvec < 1 or not in D0)")
        }
        var hwsize = try msixVectorCount()
        if let entries {
            // pci_msix_validate_entries
            let count = Swift.min(nvec, entries.count)
            let nogap = pciDomainSupports(.msixContiguous)
            for i in 0..<count {
                for j in (i + 1)..<Swift.max(count, i + 1) where entries[i] == entries[j] {
                    throw MSIError(.EINVAL, "pci_msix_validate_entries", "duplicate entry \(entries[i])")
                }
                if nogap && entries[i] != i { throw MSIError(.EINVAL, "pci_msix_validate_entries", "gap at entry \(i)") }
                if entries[i] < 0 { throw MSIError(.EINVAL, "pci_msix_validate_entries", "negative entry \(entries[i])") }
            }
            guard entries.count >= nvec else {
                throw MSIError(.EINVAL, fn, "\(entries.count) entries given for \(nvec) vectors")
            }
        }
        if hwsize < nvec {
            if flags.contains(.virtual) { hwsize = nvec } else { nvec = hwsize }
        }
        guard nvec >= minvec else { throw MSIError(.ENOSPC, fn, "the table has \(nvec) entries, \(minvec) needed") }
        _ = setupDeviceData()
        guard setupPCIDeviceDomain(msix: true, hwsize: hwsize) else {
            throw MSIError(.ENODEV, fn, "could not set up the MSI-X device domain")
        }
        while true {
            if let affinity {
                nvec = IRQAffinitySpreading.calcVectors(minVectors: minvec, maxVectors: nvec, affinity: affinity,
                                                        possibleCPUs: platform.cpuCount)
                guard nvec >= minvec else { throw MSIError(.ENOSPC, fn, "affinity leaves \(nvec) vectors, \(minvec) needed") }
            }
            let rc = try msixCapabilityInit(entries: entries, nvec: nvec, affinity: affinity)
            if rc == 0 { return nvec }
            guard rc >= minvec else { throw MSIError(.ENOSPC, fn, "only \(rc) vectors could be allocated, \(minvec) needed") }
            nvec = rc
        }
    }

    /// `msix_capability_init()`: MASKALL|ENABLE first, map the table, set up descriptors and
    /// interrupts (entries written by early activation), INTx off, every entry's vector control
    /// = 1, clear MASKALL. Returns 0 or a positive retry count; on failure MSI-X is disabled
    /// again (MASKALL and ENABLE cleared).
    mutating func msixCapabilityInit(entries: [Int]?, nvec: Int, affinity: IRQAffinity?) throws(MSIError) -> Int {
        let fn = "msix_capability_init"
        try msixClearAndSetControl(clear: 0, set: PCIReg.MSIX.functionMask | PCIReg.MSIX.enable)
        pci?.msixEnabled = true
        var result = 0
        var interruptsSetUp = false
        do throws(MSIError) {
            let hw = try msixHW(fn)
            let control = try hardware(fn) { try hw.readMSIXControl() }
            let tsize = Int(control & PCIReg.MSIX.tableSizeMask) + 1
            do {
                try hw.mapTable(entries: tsize)
            } catch {
                throw MSIError(.ENOMEM, "msix_map_region", "cannot map the MSI-X table: \(error)")
            }
            pci?.msixTableMapped = true
            result = try msixSetupInterrupts(entries: entries, nvec: nvec, affinity: affinity)
            guard result == 0 else { throw MSIError(.ENOSPC, fn, "retry with \(result)") }
            interruptsSetUp = true
            try intxForMSI(enable: false)
            if !parentSupports(.noMask) { try msixMaskAll(tsize) }
            try msixClearAndSetControl(clear: PCIReg.MSIX.functionMask, set: 0)
            return 0
        } catch {
            // out_disable. The kernel cannot fail after the interrupts are set up; a backend can
            // (a hardware access error), and then the interrupts are released too.
            if interruptsSetUp { freePCIIRQs() }
            pci?.msixEnabled = false
            do throws(MSIError) {
                try msixClearAndSetControl(clear: PCIReg.MSIX.functionMask | PCIReg.MSIX.enable, set: 0)
            } catch {
                warn(fn, "disabling MSI-X after a failure: \(error)")
            }
            if result > 0 { return result }
            throw error
        }
    }

    /// `msix_setup_interrupts()`: descriptors, interrupts, `msi_verify_entries()`; on any
    /// failure `pci_free_msi_irqs()`.
    mutating func msixSetupInterrupts(entries: [Int]?, nvec: Int, affinity: IRQAffinity?) throws(MSIError) -> Int {
        let masks = affinity.flatMap {
            IRQAffinitySpreading.createMasks(vectors: nvec, affinity: $0, cpus: .first(platform.cpuCount),
                                             defaultAffinity: .first(platform.cpuCount), nodes: platform.nodeCPUs)
        }
        if let affinity, (affinity.calculateSets?(Swift.max(0, nvec - affinity.preVectors - affinity.postVectors)).count ?? 1) > IRQAffinity.maxSets {
            warn("irq_create_affinity_masks", "more than IRQ_AFFINITY_MAX_SETS sets")
        }
        do throws(MSIError) {
            try msixSetupDescriptors(entries: entries, nvec: nvec, masks: masks)
            switch try allocAllIRQs(domain: .default, count: nvec) {
            case .allocated: break
            case .retry(let n):
                freePCIIRQs()
                return n
            }
            try verifyEntries()
            return 0
        } catch {
            freePCIIRQs()
            throw error
        }
    }

    /// `msix_setup_msi_descs()`: one descriptor per vector at `entries[i]` (or `i`), virtual
    /// beyond the table, prepared (vector control read into the cache) and inserted.
    mutating func msixSetupDescriptors(entries: [Int]?, nvec: Int, masks: [IRQAffinityDescriptor]?) throws(MSIError) {
        let vecCount = try msixVectorCount()
        for i in 0..<nvec {
            let index = entries?[i] ?? i
            guard index >= 0, index <= MSILimits.maxIndex else {
                throw MSIError(.ERANGE, "msi_insert_desc", "index \(index) outside 0…\(hwsize(.default) - 1)")
            }
            var p = PackedDescriptor()
            p.index = UInt16(index)
            p.set(PackedDescriptor.isVirtual, index >= vecCount)
            try msixPrepareDescriptor(&p)
            p.affinityRef = storeAffinity(.default, masks.map { [$0[i]] })
            do throws(MSIError) {
                _ = try insertPacked(p, domain: .default, at: .index(index))
            } catch {
                releaseAffinity(.default, p.affinityRef)
                throw error
            }
        }
    }

    /// `msi_verify_entries()`: with `no_64bit_msi`, a message address above 4 GiB is -EIO.
    mutating func verifyEntries() throws(MSIError) {
        guard let pci, pci.quirks.no64BitMSI else { return }
        for d in descriptors(domain: .default) where d.message.addressHi != 0 {
            throw MSIError(.EIO, "msi_verify_entries", "64-bit MSI address \(d.message) but the device only supports 32 bits")
        }
    }

    /// `pci_free_msi_irqs()`: free every interrupt of the default domain (descriptors go too,
    /// FREE_MSI_DESCS) and unmap the MSI-X table.
    mutating func freePCIIRQs() {
        if hasDomain(.default) { freeLocked(.default, 0, hwsize(.default) - 1) }
        if pci?.msixTableMapped == true, let hw = pciHardware?.msix {
            hw.unmapTable()
            pci?.msixTableMapped = false
        }
    }

    /// `pci_msix_shutdown()`: mask every descriptor, clear ENABLE, INTx back on.
    mutating func msixShutdown() throws(MSIError) {
        guard let pci, pci.msixEnabled, platform.configuration.msiEnabled else { return }
        if pci.power == .disconnected {
            self.pci?.msixEnabled = false
            return
        }
        var i = 0
        while let index = storeNext(.default, from: i, .all), let s = slot(.default, index) {
            i = index + 1
            try msixMask(s)
        }
        try msixClearAndSetControl(clear: PCIReg.MSIX.enable, set: 0)
        try intxForMSI(enable: true)
        self.pci?.msixEnabled = false
    }

    /// `pci_disable_msix()`.
    mutating func disableMSIX() throws(MSIError) {
        guard let pci, pci.msixEnabled, platform.configuration.msiEnabled else { return }
        try checkNotRequested(.default, 0, hwsize(.default) - 1, "pci_disable_msix")
        do throws(MSIError) { try msixShutdown() } catch { warn("pci_msix_shutdown", "\(error)") }
        self.pci?.msixEnabled = false
        freePCIIRQs()
    }

    // MARK: MSI

    /// `__pci_enable_msi_range(dev, minvec, maxvec, affd)`.
    mutating func enableMSIRange(min minvec: Int, max maxvec: Int, affinity: IRQAffinity?) throws(MSIError) -> Int {
        let fn = "__pci_enable_msi_range"
        let pci = try pciHW(fn)
        guard pciMSISupported(minvec), pci.power == .d0 else {
            throw MSIError(.EINVAL, fn, "MSI not supported for \(deviceName) (pci=nomsi, no_msi, minvec < 1 or not in D0)")
        }
        guard !pci.msixEnabled else { throw MSIError(.EINVAL, fn, "can't enable MSI (MSI-X already enabled)") }
        guard maxvec >= minvec else { throw MSIError(.ERANGE, fn, "maxvec \(maxvec) < minvec \(minvec)") }
        guard !pci.msiEnabled else {
            warn(fn, "\(deviceName): MSI already enabled")
            throw MSIError(.EINVAL, fn, "MSI is already enabled")
        }
        guard pciDomainSupports([]) else { throw MSIError(.ENOTSUPP, fn, "no MSI parent domain") }
        var nvec = try msiVectorCount()
        guard nvec >= minvec else { throw MSIError(.ENOSPC, fn, "the function can do \(nvec) vectors, \(minvec) needed") }
        _ = setupDeviceData()
        guard setupPCIDeviceDomain(msix: false, hwsize: nvec) else {
            throw MSIError(.ENODEV, fn, "could not set up the MSI device domain")
        }
        nvec = Swift.min(nvec, maxvec)
        while true {
            if let affinity {
                nvec = IRQAffinitySpreading.calcVectors(minVectors: minvec, maxVectors: nvec, affinity: affinity,
                                                        possibleCPUs: platform.cpuCount)
                guard nvec >= minvec else { throw MSIError(.ENOSPC, fn, "affinity leaves \(nvec) vectors, \(minvec) needed") }
            }
            let rc = try msiCapabilityInit(nvec: nvec, affinity: affinity)
            if rc == 0 { return nvec }
            guard rc >= minvec else { throw MSIError(.ENOSPC, fn, "only \(rc) vectors possible, \(minvec) needed") }
            nvec = rc
        }
    }

    /// `msi_capability_init()` + `__msi_capability_init()`: multi-MSI only with a parent that
    /// supports it (else retry with 1); clear enable; one descriptor; mask all vectors
    /// (`msi_multi_mask`); allocate and activate (MME + message); INTx off; set enable;
    /// `dev->irq` = the first interrupt. On failure: unmask, free.
    mutating func msiCapabilityInit(nvec: Int, affinity: IRQAffinity?) throws(MSIError) -> Int {
        if nvec > 1 && !pciDomainSupports(.multiPCIMSI) { return 1 }
        try msiSetEnable(false)
        let masks = affinity.flatMap {
            IRQAffinitySpreading.createMasks(vectors: nvec, affinity: $0, cpus: .first(platform.cpuCount),
                                             defaultAffinity: .first(platform.cpuCount), nodes: platform.nodeCPUs)
        }
        try msiSetupDescriptor(nvec: nvec, masks: masks)
        guard let s = slot(.default, 0) else { return 0 }
        try msiUpdateMask(s, clear: 0, set: Self.msiMultiMask(multiCapLog2: s.pointee.multiCapLog2))
        let saved = s.pointee
        do throws(MSIError) {
            switch try allocAllIRQs(domain: .default, count: nvec) {
            case .allocated: break
            case .retry(let n):
                try unmaskSaved(saved)
                freePCIIRQs()
                return n
            }
            try verifyEntries()
        } catch {
            do throws(MSIError) { try unmaskSaved(saved) } catch { warn("msi_capability_init", "\(error)") }
            freePCIIRQs()
            throw error
        }
        setPCIMSIEnabled(true)
        do throws(MSIError) {
            try intxForMSI(enable: false)
            try msiSetEnable(true)
        } catch {
            // Only a failing backend gets here (the kernel cannot fail after the allocation).
            setPCIMSIEnabled(false)
            do throws(MSIError) { try unmaskSaved(saved) } catch { warn("msi_capability_init", "\(error)") }
            freePCIIRQs()
            throw error
        }
        let first = lookupVirqRaw(.default, 0)
        pci?.irq = first
        return 0
    }

    /// The error path's `pci_msi_unmask(&desc, msi_multi_mask(&desc))` on the saved copy.
    func unmaskSaved(_ saved: PackedDescriptor) throws(MSIError) {
        var copy = saved
        try withUnsafeMutablePointer(to: &copy) { (p) throws(MSIError) in
            try msiUpdateMask(p, clear: Self.msiMultiMask(multiCapLog2: saved.multiCapLog2), set: 0)
        }
    }

    /// `msi_multi_mask()`: the mask bits of every vector the function can do (all ones for 32).
    public static func msiMultiMask(multiCapLog2: Int) -> UInt32 {
        multiCapLog2 >= 5 ? 0xFFFF_FFFF : (1 << (1 << UInt32(multiCapLog2))) - 1
    }

    /// `msi_setup_msi_desc()`: reads Message Control (quirk and NO_MASK adjust the mask bit),
    /// fills the single descriptor, saves the initial mask register, inserts it at index 0.
    mutating func msiSetupDescriptor(nvec: Int, masks: [IRQAffinityDescriptor]?) throws(MSIError) {
        let hw = try msiHW("msi_setup_msi_desc")
        guard let pci else { return }
        var control = try hardware("msi_setup_msi_desc") { try hw.readMSIControl() }
        if pci.quirks.hasMSIMasking { control |= PCIReg.MSI.perVectorMask }
        if parentSupports(.noMask) { control &= ~PCIReg.MSI.perVectorMask }
        var p = PackedDescriptor()
        p.nvecUsed = UInt16(nvec)
        let is64 = control & PCIReg.MSI.is64Bit != 0
        var multiple = 0
        while (1 << multiple) < nvec { multiple += 1 }
        p.pci = PCIMSIAttributes(
            isMSIX: false, multipleLog2: multiple, multipleCapableLog2: Int((control & PCIReg.MSI.qmask) >> 1),
            canMask: control & PCIReg.MSI.perVectorMask != 0, is64Bit: is64, defaultIRQ: pci.irq,
            maskPosition: is64 ? PCIReg.MSI.mask64 : PCIReg.MSI.mask32)
        if p.has(PackedDescriptor.canMask) {
            p.maskCache = try hardware("msi_setup_msi_desc") { try hw.readMask() }
        }
        p.affinityRef = storeAffinity(.default, masks)
        do throws(MSIError) {
            _ = try insertPacked(p, domain: .default, at: .index(0))
        } catch {
            releaseAffinity(.default, p.affinityRef)
            throw error
        }
    }

    /// `pci_msi_shutdown()`: clear enable, INTx on, unmask every vector, restore `dev->irq`.
    mutating func msiShutdown() throws(MSIError) {
        guard let pci, pci.msiEnabled, platform.configuration.msiEnabled else { return }
        try msiSetEnable(false)
        try intxForMSI(enable: true)
        setPCIMSIEnabled(false)
        guard let s = slot(.default, 0) else {
            warn("pci_msi_shutdown", "\(deviceName): no MSI descriptor")
            return
        }
        try msiUpdateMask(s, clear: Self.msiMultiMask(multiCapLog2: s.pointee.multiCapLog2), set: 0)
        self.pci?.irq = Int(s.pointee.defaultIRQ)
    }

    /// `pci_disable_msi()`.
    mutating func disableMSI() throws(MSIError) {
        guard let pci, pci.msiEnabled, platform.configuration.msiEnabled else { return }
        try checkNotRequested(.default, 0, hwsize(.default) - 1, "pci_disable_msi")
        do throws(MSIError) { try msiShutdown() } catch { warn("pci_msi_shutdown", "\(error)") }
        setPCIMSIEnabled(false)
        if let irq = slot(.default, 0).map({ Int($0.pointee.defaultIRQ) }) { self.pci?.irq = irq }
        freePCIIRQs()
    }

    // MARK: the driver API (api.c)

    /// `pci_alloc_irq_vectors_affinity(dev, min, max, flags, affd)`: MSI-X, then MSI, then
    /// INTx (only for `min == 1` and a device with an INTx irq). Returns the number of vectors;
    /// throws the last attempt's error (ENOSPC if nothing was attempted).
    public mutating func allocIRQVectors(min minvec: Int, max maxvec: Int, flags: PCIIRQFlags,
                                         affinity: IRQAffinity? = nil) throws(MSIError) -> Int {
        let fn = "pci_alloc_irq_vectors_affinity"
        _ = try pciHW(fn)
        guard minvec >= 0, maxvec >= 0, minvec <= Int(UInt32.max), maxvec <= Int(UInt32.max) else {
            throw MSIError(.EINVAL, fn, "min_vecs/max_vecs are unsigned 32-bit counts (got \(minvec), \(maxvec))")
        }
        var affd = affinity
        if flags.contains(.affinity) {
            if affd == nil { affd = IRQAffinity() }
        } else if affd != nil {
            warn(fn, "affinity descriptor given without PCI_IRQ_AFFINITY: ignored")
            affd = nil
        }
        var last = MSIError(.ENOSPC, fn, "no interrupt type was allowed")
        if flags.contains(.msix) {
            do throws(MSIError) {
                let n = try enableMSIXRange(entries: nil, min: minvec, max: maxvec, affinity: affd, flags: flags)
                if n > 0 { return n }
            } catch { last = error }
        }
        if flags.contains(.msi) {
            do throws(MSIError) {
                let n = try enableMSIRange(min: minvec, max: maxvec, affinity: affd)
                if n > 0 { return n }
            } catch { last = error }
        }
        if flags.contains(.intx), minvec == 1, let pci, pci.irq != 0 {
            try pciIntx(enable: true)
            return 1
        }
        throw last
    }

    /// `pci_enable_msix_range(dev, entries, minvec, maxvec)`: the legacy entry-list API.
    public mutating func enableMSIXRange(entries: [Int], min minvec: Int, max maxvec: Int) throws(MSIError) -> Int {
        guard minvec >= 0, maxvec >= 0 else {
            throw MSIError(.EINVAL, "pci_enable_msix_range", "negative vector counts (\(minvec), \(maxvec))")
        }
        return try enableMSIXRange(entries: entries, min: minvec, max: maxvec, affinity: nil, flags: [])
    }

    /// `pci_irq_vector(dev, nr)`: with neither MSI nor MSI-X enabled, `dev->irq` for 0 and
    /// -EINVAL otherwise; else the Linux interrupt of vector `nr` (-EINVAL when none).
    public mutating func irqVector(_ nr: Int) throws(MSIError) -> Int {
        let fn = "pci_irq_vector"
        let pci = try pciHW(fn)
        if !pci.msiEnabled && !pci.msixEnabled {
            guard nr == 0 else { throw MSIError(.EINVAL, fn, "vector \(nr) without MSI/MSI-X") }
            return pci.irq
        }
        guard nr >= 0 else { throw MSIError(.EINVAL, fn, "vector \(nr) is negative") }
        let v = try virq(domain: .default, index: nr)
        guard v != 0 else { throw MSIError(.EINVAL, fn, "vector \(nr) is not allocated") }
        return v
    }

    /// `pci_free_irq_vectors()`: `pci_disable_msix()` then `pci_disable_msi()`. IMS interrupts
    /// are not touched. The model refuses (EBUSY) while an interrupt is still requested.
    public mutating func freeIRQVectors() throws(MSIError) {
        _ = try pciHW("pci_free_irq_vectors")
        try disableMSIX()
        try disableMSI()
    }

    /// `pci_msix_can_alloc_dyn()`: an MSI-X capability and a parent with PCI_MSIX_ALLOC_DYN.
    public var msixCanAllocateDynamically: Bool {
        guard pci != nil, pciHardware?.msix != nil else { return false }
        return pciDomainSupports(.pciMSIXAllocDynamic)
    }

    /// `pci_msix_alloc_irq_at(dev, index, affdesc)`: one more MSI-X vector after enable, at
    /// `index` or the lowest free entry.
    /// - Throws: ENOTSUPP unless MSI-X is enabled and dynamic allocation is supported; then as
    ///   ``allocIRQ(domain:at:affinity:cookie:)`` (ERANGE, EBUSY, ENOSPC).
    public mutating func msixAllocIRQ(at request: MSIIndexRequest, affinity: IRQAffinityDescriptor? = nil) throws(MSIError) -> MSIMap {
        let fn = "pci_msix_alloc_irq_at"
        let pci = try pciHW(fn)
        guard pci.msixEnabled else { throw MSIError(.ENOTSUPP, fn, "MSI-X is not enabled") }
        guard msixCanAllocateDynamically else { throw MSIError(.ENOTSUPP, fn, "dynamic MSI-X allocation is not supported") }
        return try allocIRQ(domain: .default, at: request, affinity: affinity, cookie: nil)
    }

    /// `pci_msix_free_irq(dev, map)`: frees that one vector.
    /// - Throws: EINVAL for a map that is not a live allocation of this device (the kernel WARNs
    ///   and returns for a negative index or virq, and silently ignores an unknown index),
    ///   ENOTSUPP without dynamic allocation, EBUSY while the interrupt is requested.
    public mutating func msixFreeIRQ(_ map: MSIMap) throws(MSIError) {
        let fn = "pci_msix_free_irq"
        guard map.index >= 0, map.virq > 0 else {
            warn(fn, "invalid map \(map)")
            throw MSIError(.EINVAL, fn, "invalid map \(map)")
        }
        guard msixCanAllocateDynamically else {
            warn(fn, "dynamic MSI-X allocation is not supported")
            throw MSIError(.ENOTSUPP, fn, "dynamic MSI-X allocation is not supported")
        }
        try freeMapped(.default, map, fn)
    }

    mutating func freeMapped(_ d: MSIDomainID, _ map: MSIMap, _ fn: String) throws(MSIError) {
        guard hasDomain(d) else { throw MSIError(.ENODEV, fn, "\(deviceName) has no \(d) domain") }
        guard map.index < hwsize(d), let s = slot(d, map.index), Int(s.pointee.virq) == map.virq else {
            throw MSIError(.EINVAL, fn, "\(map) is not allocated on \(deviceName) (double free or unknown map)")
        }
        try freeIRQs(domain: d, first: map.index, last: map.index)
    }

    // MARK: IMS (v6.2…v6.9)

    /// `pci_create_ims_domain(pdev, template, hwsize, data)`: requires an MSI parent, bus token
    /// PCI_DEVICE_IMS, ALLOC_SIMPLE_MSI_DESCS and FREE_MSI_DESCS, a chip with mask, unmask and
    /// write_msg and without set_affinity; creates the secondary domain. The kernel returns
    /// false; the model throws EINVAL for a bad template (ENODEV without an MSI parent, and the
    /// errors of ``createDomain(_:template:hwsize:store:)``). IMS was removed from Linux in v6.10; this
    /// model keeps it. `store`: where the domain's descriptors live (see
    /// ``createDomain(_:template:hwsize:store:)``).
    public mutating func createIMSDomain(template: MSIDomainTemplate, hwsize: Int, store: MSIDescriptorStore? = nil) throws(MSIError) {
        let fn = "pci_create_ims_domain"
        _ = try pciHW(fn)
        guard hasMSIParent else { throw MSIError(.ENODEV, fn, "\(deviceName) has no MSI parent domain") }
        guard template.busToken == .pciDeviceIMS else { throw MSIError(.EINVAL, fn, "bus token must be PCI_DEVICE_IMS") }
        guard template.flags.isSuperset(of: [.allocSimpleDescriptors, .freeDescriptors]) else {
            throw MSIError(.EINVAL, fn, "the template needs ALLOC_SIMPLE_MSI_DESCS and FREE_MSI_DESCS")
        }
        let ops = template.chipOperations
        guard ops.isSuperset(of: [.mask, .unmask, .writeMessage]) else {
            throw MSIError(.EINVAL, fn, "the chip needs irq_mask, irq_unmask and irq_write_msi_msg")
        }
        guard !ops.contains(.setAffinity) else { throw MSIError(.EINVAL, fn, "an IMS chip must not have irq_set_affinity") }
        if case .device(let chip) = template.chip, let slots = chip.slotCount, hwsize == 0 || hwsize > slots {
            let asked = hwsize == 0 ? "hwsize 0 means the whole index space (\(MSILimits.domainSize)), more than" : "hwsize \(hwsize) exceeds"
            throw MSIError(.EINVAL, fn, "\(asked) the chip's \(slots) slots")
        }
        try createDomain(.secondary, template: template, hwsize: hwsize, store: store)
    }

    /// `pci_ims_alloc_irq(pdev, icookie, affdesc)`: an interrupt at the lowest free IMS index
    /// with `cookie` stored in the descriptor.
    public mutating func imsAllocIRQ(cookie: UInt64, affinity: IRQAffinityDescriptor? = nil) throws(MSIError) -> MSIMap {
        _ = try pciHW("pci_ims_alloc_irq")
        return try allocIRQ(domain: .secondary, at: .any, affinity: affinity, cookie: cookie)
    }

    /// `pci_ims_free_irq(pdev, map)`.
    /// - Throws: EINVAL for a negative index/virq (the kernel WARNs) or a map that is not a live
    ///   allocation (double free), ENODEV without an IMS domain, EBUSY while requested.
    public mutating func imsFreeIRQ(_ map: MSIMap) throws(MSIError) {
        let fn = "pci_ims_free_irq"
        guard map.index >= 0, map.virq > 0 else {
            warn(fn, "invalid map \(map)")
            throw MSIError(.EINVAL, fn, "invalid map \(map)")
        }
        try freeMapped(.secondary, map, fn)
    }

    // MARK: PCI state

    /// `dev->msi_enabled`.
    public var isMSIEnabled: Bool { pci?.msiEnabled ?? false }
    /// `dev->msix_enabled`.
    public var isMSIXEnabled: Bool { pci?.msixEnabled ?? false }
    /// `dev->irq`: INTx, or the first MSI interrupt while MSI is enabled.
    public var irq: Int { pci?.irq ?? 0 }

    /// Sets the power state (`dev->current_state`, disconnection).
    public mutating func setPowerState(_ state: PCIPowerState) { pci?.power = state }
}
