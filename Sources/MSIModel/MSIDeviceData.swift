// struct msi_device_data and the locked operations of kernel/irq/msi.c: descriptor insert and
// free, iteration with its cursor, virq lookup, device domains, interrupt allocation and
// freeing with the kernel's rollback.
//
// Every method here requires the device lock: they are reached through
// ``MSIDevice/withLockedDescriptors(_:)`` (the kernel's `guard(msi_descs_lock)`) or through the
// ``MSIDevice`` wrappers that take the lock themselves.

/// What a range allocation that did not fail outright returned (`msi_domain_alloc_irqs_*`).
public enum MSIAllocResult: Hashable, Sendable {
    /// 0: every descriptor in the range got its interrupts.
    case allocated
    /// A positive return: a PCI allocation failed part-way, **everything was rolled back**, and
    /// this many could have been allocated (1 for a failed multi-MSI descriptor). PCI callers
    /// retry with this count.
    case retry(Int)
}

/// The PCI state of a device (the `struct pci_dev` fields MSI uses).
struct PCIState: Sendable {
    var quirks: PCIMSIQuirks
    /// `dev->irq`.
    var irq: Int
    var msiEnabled = false
    var msixEnabled = false
    /// `dev->msix_base != NULL`.
    var msixTableMapped = false
    var power: PCIPowerState = .d0
}

/// The locked per-device MSI state: `struct msi_device_data` (descriptor stores, device
/// domains, iterator cursor) plus the `struct pci_dev` fields the PCI/MSI code uses.
///
/// You get one `inout` inside ``MSIDevice/withLockedDescriptors(_:)``. Methods named after
/// `*_locked` kernel functions live here; the cursor (`first`/`next`) is only meaningful inside
/// one locked scope, because leaving the scope parks it (`__msi_unlock_descs`).
public struct MSIDeviceData: ~Copyable {
    /// `MSI_XA_MAX_INDEX`: where unlocking parks the iterator cursor.
    @usableFromInline static let parkedCursor = Int.max - 1

    let deviceName: String
    let deviceID: UInt32
    let platform: MSIPlatform
    /// `dev->msi.domain` is an MSI parent.
    let hasMSIParent: Bool
    /// `dev->msi.data != NULL`.
    @usableFromInline var isSetUp = false
    var generation = 0
    var store0 = DescriptorStore()
    var store1 = DescriptorStore()
    /// Lookup views of the two stores, refreshed after every store mutation, so that the
    /// inlinable ``virq(domain:index:)`` reads the page tables directly.
    @usableFromInline var lookup0: StoreLookup
    @usableFromInline var lookup1: StoreLookup
    /// While PCI MSI is enabled, the multi-MSI view ``lookup0`` points at.
    var multiMSIView: MultiMSIView?
    var domain0: DeviceDomain?
    var domain1: DeviceDomain?
    /// The domains' `hwsize` (65536 without a domain), kept apart for cheap reads.
    var hwsize0 = MSILimits.domainSize
    var hwsize1 = MSILimits.domainSize
    /// `__iter_idx`.
    @usableFromInline var iterIndex = MSIDeviceData.parkedCursor
    var warningLog = WarningLog()
    /// The PCI flags (plain values: cheap to read on hot paths).
    var pci: PCIState?
    /// The PCI hardware (existentials: kept apart so reading a flag copies no references).
    let pciHardware: PCIFunctionHardware?

    init(name: String, id: UInt32, platform: MSIPlatform, hasMSIParent: Bool, pci: PCIFunctionHardware?) {
        lookup0 = store0.lookup
        lookup1 = store1.lookup
        deviceName = name
        deviceID = id
        self.platform = platform
        self.hasMSIParent = hasMSIParent
        self.pci = pci.map { PCIState(quirks: $0.quirks, irq: $0.intxIRQ) }
        pciHardware = pci
    }

    mutating func warn(_ fn: String, _ message: String) { warningLog.warn(fn, message) }

    /// The device's name (`dev_name()`).
    public var name: String { deviceName }

    /// Warnings recorded so far (WARN_ON splats the kernel would have printed).
    public var warnings: [MSIWarning] { warningLog.entries }

    // MARK: store access

    func domain(_ d: MSIDomainID) -> DeviceDomain? {
        switch d.rawValue {
        case 0: domain0
        case 1: domain1
        default: nil
        }
    }

    mutating func setDomain(_ d: MSIDomainID, _ v: DeviceDomain?) {
        let size = v?.info.hwsize ?? MSILimits.domainSize
        switch d.rawValue {
        case 0: domain0 = v; hwsize0 = size
        case 1: domain1 = v; hwsize1 = size
        default: break
        }
    }

    /// Whether a device domain exists at `d` (without copying it).
    func hasDomain(_ d: MSIDomainID) -> Bool {
        switch d.rawValue {
        case 0: domain0 != nil
        case 1: domain1 != nil
        default: false
        }
    }

    func slot(_ d: MSIDomainID, _ index: Int) -> UnsafeMutablePointer<PackedDescriptor>? {
        switch d.rawValue {
        case 0: store0.slot(index)
        case 1: store1.slot(index)
        default: nil
        }
    }

    /// The lowest index in `from…last` holding a descriptor that matches `filter`.
    func storeNext(_ d: MSIDomainID, from: Int, _ filter: MSIDescriptorFilter, last: Int = MSILimits.maxIndex) -> Int? {
        let s: UnsafeMutablePointer<PackedDescriptor>?
        switch d.rawValue {
        case 0: s = store0.nextSlot(from: from, matching: filter, last: last)
        case 1: s = store1.nextSlot(from: from, matching: filter, last: last)
        default: s = nil
        }
        return s.map { Int($0.pointee.index) }
    }

    func storeCount(_ d: MSIDomainID) -> Int {
        switch d.rawValue {
        case 0: store0.count
        case 1: store1.count
        default: 0
        }
    }

    func storeLowestFree(_ d: MSIDomainID, below limit: Int) -> Int? {
        switch d.rawValue {
        case 0: store0.lowestFree(below: limit)
        case 1: store1.lowestFree(below: limit)
        default: nil
        }
    }

    mutating func storeInsert(_ d: MSIDomainID, _ desc: PackedDescriptor, at index: Int) {
        switch d.rawValue {
        case 0:
            store0.insert(desc, at: index)
            syncMultiMSIView()
            refreshLookup0()  // the first insert replaces the shared empty table
        case 1:
            store1.insert(desc, at: index)
            lookup1 = store1.lookup
        default: break
        }
    }

    mutating func storeRemove(_ d: MSIDomainID, at index: Int) -> PackedDescriptor? {
        switch d.rawValue {
        case 0:
            let old = store0.remove(at: index)
            syncMultiMSIView()
            return old
        case 1: return store1.remove(at: index)
        default: return nil
        }
    }

    mutating func storeAffinity(_ d: MSIDomainID, _ a: [IRQAffinityDescriptor]?) -> UInt32 {
        switch d.rawValue {
        case 0: store0.storeAffinity(a)
        case 1: store1.storeAffinity(a)
        default: 0
        }
    }

    mutating func releaseAffinity(_ d: MSIDomainID, _ ref: UInt32) {
        switch d.rawValue {
        case 0: store0.releaseAffinity(ref)
        case 1: store1.releaseAffinity(ref)
        default: break
        }
    }

    func affinity(_ d: MSIDomainID, _ ref: UInt32) -> [IRQAffinityDescriptor]? {
        switch d.rawValue {
        case 0: store0.affinity(ref)
        case 1: store1.affinity(ref)
        default: nil
        }
    }

    func publicDescriptor(_ d: MSIDomainID, _ p: PackedDescriptor) -> MSIDescriptor {
        d.rawValue == 1 ? store1.publicDescriptor(p) : store0.publicDescriptor(p)
    }

    // MARK: msi_device_data

    /// `msi_setup_device_data()`: allocates the data once; later calls succeed without change.
    /// Returns the data's identity (the same value on every call until it is released).
    public mutating func setupDeviceData() -> Int {
        if !isSetUp {
            isSetUp = true
            generation &+= 1
            iterIndex = Self.parkedCursor
        }
        return generation
    }

    /// The identity of the current `msi_device_data`, nil when not set up.
    public var deviceDataIdentity: Int? { isSetUp ? generation : nil }

    /// `msi_device_data_release()` (devres, on device removal): removes every device domain and
    /// WARNs for each store that is not empty. Descriptors left behind are leaked with their
    /// interrupts, as in the kernel.
    public mutating func releaseDeviceData() {
        guard isSetUp else { return }
        for id in [MSIDomainID.default, .secondary] {
            removeDomain(id)
            if storeCount(id) != 0 {
                warn("msi_device_data_release", "\(deviceName): \(storeCount(id)) descriptors left in the \(id) store")
            }
        }
        store0 = DescriptorStore()
        store1 = DescriptorStore()
        refreshLookup0()
        lookup1 = store1.lookup
        isSetUp = false
        iterIndex = Self.parkedCursor
    }

    func requireData(_ fn: String) throws(MSIError) {
        guard isSetUp else { throw MSIError(.EINVAL, fn, "\(deviceName) has no MSI device data (msi_setup_device_data not called)") }
    }

    // MARK: domains and hwsize

    /// `msi_get_device_domain()`: the device domain at `d`, WARN for a bad id.
    mutating func deviceDomain(_ d: MSIDomainID, _ fn: String) -> DeviceDomain? {
        guard d.isValid else {
            warn(fn, "domain id \(d.rawValue) >= MSI_MAX_DEVICE_IRQDOMAINS")
            return nil
        }
        return domain(d)
    }

    /// `msi_domain_get_hwsize()`: the domain's `hwsize`, 65536 without a domain.
    public func hwsize(_ d: MSIDomainID) -> Int {
        switch d.rawValue {
        case 0: hwsize0
        case 1: hwsize1
        default: MSILimits.domainSize
        }
    }

    /// The device domain at `d`, nil if none.
    public func domainInfo(_ d: MSIDomainID) -> MSIDeviceDomainInfo? { domain(d)?.info }

    /// `msi_ctrl_valid()`: WARN and EINVAL for a bad domain id, a missing domain on a device
    /// with an MSI parent, `first > last`, or an index past `hwsize`.
    mutating func checkControl(_ d: MSIDomainID, _ first: Int, _ last: Int, _ fn: String) throws(MSIError) {
        guard d.isValid, !hasMSIParent || hasDomain(d) else {
            warn("msi_ctrl_valid", "\(fn): no device domain \(d.rawValue)")
            throw MSIError(.EINVAL, fn, d.isValid ? "no device domain \(d) on \(deviceName)" : "domain id \(d.rawValue) out of range")
        }
        let size = hwsize(d)
        guard first <= last, first >= 0, first < size, last < size else {
            warn("msi_ctrl_valid", "\(fn): range \(first)…\(last) invalid for hwsize \(size)")
            throw MSIError(.EINVAL, fn, "range \(first)…\(last) is invalid (hwsize \(size))")
        }
    }

    /// `msi_create_device_irq_domain(dev, domid, template, hwsize)` with the descriptor lock
    /// held. The kernel returns false on failure; the model throws: ENODEV (no MSI parent),
    /// EINVAL (bad id, `hwsize` > 65536, template the default chip ops cannot use), EEXIST (a
    /// domain already exists at `domid`, WARN), ENOTSUPP (the parent's `init_dev_msi_info`
    /// rejects the bus token). `hwsize` 0 means 65536.
    public mutating func createDomain(_ d: MSIDomainID, template: MSIDomainTemplate, hwsize: Int) throws(MSIError) {
        let fn = "msi_create_device_irq_domain"
        guard hasMSIParent else { throw MSIError(.ENODEV, fn, "\(deviceName) has no MSI parent domain") }
        guard d.isValid else { throw MSIError(.EINVAL, fn, "domain id \(d.rawValue) >= MSI_MAX_DEVICE_IRQDOMAINS") }
        guard hwsize >= 0, hwsize <= MSILimits.domainSize else {
            throw MSIError(.EINVAL, "__msi_create_irq_domain", "hwsize \(hwsize) exceeds \(MSILimits.domainSize)")
        }
        _ = setupDeviceData()
        guard domain(d) == nil else {
            warn(fn, "\(deviceName): a domain already exists at id \(d.rawValue)")
            throw MSIError(.EEXIST, fn, "\(deviceName) already has a \(d) domain")
        }
        // init_dev_msi_info of the parent (x86_init_dev_msi_info / msi_parent_init_dev_msi_info)
        switch template.busToken {
        case .pciDeviceMSI, .pciDeviceMSIX:
            break
        case .pciDeviceIMS:
            guard platform.hasInterruptRemapping || platform.configuration.allowIMSWithoutRemapping else {
                warn("x86_init_dev_msi_info", "IMS is not supported by the vector domain")
                throw MSIError(.ENOTSUPP, fn, "the MSI parent does not support IMS")
            }
        default:
            warn("x86_init_dev_msi_info", "bus token \(template.busToken) not supported")
            throw MSIError(.ENOTSUPP, fn, "the MSI parent does not support bus token \(template.busToken)")
        }
        // msi_domain_update_chip_ops: BUG_ON(!chip->irq_mask || !chip->irq_unmask)
        guard template.chipOperations.isSuperset(of: [.mask, .unmask]) else {
            throw MSIError(.EINVAL, "msi_domain_update_chip_ops", "the chip has no irq_mask/irq_unmask")
        }
        let flags = template.flags.intersection(platform.supportedFlags).union(platform.requiredFlags)
        let info = MSIDeviceDomainInfo(
            id: d, name: platform.parentPrefix + template.chipName + "-" + deviceName, busToken: template.busToken,
            flags: flags, hwsize: hwsize == 0 ? MSILimits.domainSize : hwsize, chipOperations: template.chipOperations)
        setDomain(d, DeviceDomain(info: info, chip: template.chip))
    }

    /// `msi_remove_device_irq_domain()`: no-op without a domain; does not free descriptors.
    public mutating func removeDomain(_ d: MSIDomainID) {
        guard d.isValid else { return }
        setDomain(d, nil)
    }

    /// `msi_match_device_irq_domain()`.
    public func domainMatches(_ d: MSIDomainID, busToken: IRQDomainBusToken) -> Bool {
        domain(d)?.info.busToken == busToken
    }

    // MARK: descriptors

    /// `msi_insert_desc()`: inserts a zeroed-and-initialised descriptor at `index` or at the
    /// lowest free index. Returns the index used.
    /// - Throws: ERANGE (`index >= hwsize`), EBUSY (occupied, or no free index).
    mutating func insertPacked(_ desc: PackedDescriptor, domain d: MSIDomainID, at request: MSIIndexRequest) throws(MSIError) -> Int {
        let size = hwsize(d)
        switch request {
        case .any:
            guard let index = storeLowestFree(d, below: size) else {
                throw MSIError(.EBUSY, "msi_insert_desc", "no free index below \(size) in the \(d) store")
            }
            storeInsert(d, desc, at: index)
            return index
        case .index(let index):
            guard index >= 0, index < size else {
                throw MSIError(.ERANGE, "msi_insert_desc", "index \(index) outside 0…\(size - 1)")
            }
            guard slot(d, index) == nil else {
                throw MSIError(.EBUSY, "msi_insert_desc", "index \(index) is occupied")
            }
            storeInsert(d, desc, at: index)
            return index
        }
    }

    /// What `msi_domain_insert_msi_desc` copies: `nvec_used` and the PCI attributes.
    func pack(_ desc: MSIDescriptor) -> PackedDescriptor {
        var p = PackedDescriptor()
        p.nvecUsed = desc.packed.nvecUsed
        p.attrs = desc.packed.attrs
        p.maskCache = desc.packed.maskCache
        p.defaultIRQ = desc.packed.defaultIRQ
        p.maskPos = desc.packed.maskPos
        return p
    }

    /// `msi_domain_insert_msi_desc(dev, domid, init_desc)`: a new descriptor at
    /// `initializer.index`, copying only `vectorCount`, `affinity` and the PCI attributes.
    /// - Throws: EINVAL (bad domain id or no data), ERANGE, EBUSY.
    public mutating func insertDescriptor(_ initializer: MSIDescriptor, domain d: MSIDomainID = .default) throws(MSIError) {
        let fn = "msi_domain_insert_msi_desc"
        try requireData(fn)
        guard d.isValid else { throw MSIError(.EINVAL, fn, "domain id \(d.rawValue) out of range") }
        guard initializer.vectorCount >= 1, initializer.vectorCount <= Int(UInt16.max) else {
            throw MSIError(.EINVAL, fn, "nvec_used \(initializer.vectorCount) is invalid")
        }
        guard initializer.index >= 0, initializer.index <= MSILimits.maxIndex else {
            throw MSIError(.ERANGE, "msi_insert_desc", "index \(initializer.index) outside 0…\(hwsize(d) - 1)")
        }
        var p = pack(initializer)
        p.affinityRef = storeAffinity(d, initializer.affinity)
        do throws(MSIError) {
            _ = try insertPacked(p, domain: d, at: .index(initializer.index))
        } catch {
            releaseAffinity(d, p.affinityRef)
            throw error
        }
    }

    /// `msi_insert_desc()` itself (the core's insert, which PCI reaches through
    /// `msi_domain_insert_msi_desc` and dynamic allocation through `msi_domain_alloc_irq_at`):
    /// a descriptor initialised like ``insertDescriptor(_:domain:)`` at `request` — a fixed index
    /// or the lowest free one. Returns the index used.
    /// - Throws: EINVAL (no data, bad domain id), ERANGE, EBUSY.
    @discardableResult
    public mutating func insertDescriptor(_ initializer: MSIDescriptor, domain d: MSIDomainID, at request: MSIIndexRequest) throws(MSIError) -> Int {
        let fn = "msi_insert_desc"
        try requireData(fn)
        guard d.isValid else { throw MSIError(.EINVAL, fn, "domain id \(d.rawValue) out of range") }
        guard initializer.vectorCount >= 1, initializer.vectorCount <= Int(UInt16.max) else {
            throw MSIError(.EINVAL, fn, "nvec_used \(initializer.vectorCount) is invalid")
        }
        if case .index(let i) = request, i < 0 || i > MSILimits.maxIndex {
            throw MSIError(.ERANGE, fn, "index \(i) outside 0…\(hwsize(d) - 1)")
        }
        var p = pack(initializer)
        p.affinityRef = storeAffinity(d, initializer.affinity)
        do throws(MSIError) {
            return try insertPacked(p, domain: d, at: request)
        } catch {
            releaseAffinity(d, p.affinityRef)
            throw error
        }
    }

    /// `msi_domain_free_descs()` on a range: erases every descriptor; one still associated with
    /// an interrupt is WARNed about and leaked (gone from the store, interrupt not freed).
    mutating func freeDescs(_ d: MSIDomainID, _ first: Int, _ last: Int) {
        var i = first
        while let index = storeNext(d, from: i, .all, last: last) {
            i = index + 1
            guard let old = storeRemove(d, at: index) else { continue }
            if old.virq != 0 {
                warn("msi_domain_free_descs", "\(deviceName): descriptor \(index) still has irq \(old.virq): leaked")
            } else {
                releaseAffinity(d, old.affinityRef)
            }
        }
    }

    /// `msi_domain_free_msi_descs_range(dev, domid, first, last)`.
    /// - Throws: EINVAL for what `msi_ctrl_valid()` rejects (the kernel WARNs and returns).
    public mutating func freeDescriptors(domain d: MSIDomainID = .default, first: Int = 0, last: Int = MSILimits.maxIndex) throws(MSIError) {
        try requireData("msi_domain_free_msi_descs_range")
        try checkControl(d, first, last, "msi_domain_free_msi_descs_range")
        freeDescs(d, first, last)
    }

    /// `xa_load()`: the descriptor at `index`, nil if none.
    public func descriptor(domain d: MSIDomainID = .default, index: Int) -> MSIDescriptor? {
        guard let s = slot(d, index) else { return nil }
        return publicDescriptor(d, s.pointee)
    }

    /// Number of descriptors in a store.
    public func descriptorCount(domain d: MSIDomainID = .default) -> Int { storeCount(d) }

    /// Every descriptor matching `filter`, ascending (a snapshot; does not move the cursor).
    public func descriptors(domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) -> [MSIDescriptor] {
        var r: [MSIDescriptor] = []
        var i = 0
        while let index = storeNext(d, from: i, filter), let s = slot(d, index) {
            r.append(publicDescriptor(d, s.pointee))
            i = index + 1
        }
        return r
    }

    // MARK: iteration (msi_domain_first_desc / msi_next_desc)

    /// `msi_find_desc()`: from the cursor, the first match; parks the cursor when none.
    mutating func findDesc(_ d: MSIDomainID, _ filter: MSIDescriptorFilter) -> MSIDescriptor? {
        let s: UnsafeMutablePointer<PackedDescriptor>?
        switch d.rawValue {
        case 0: s = store0.nextSlot(from: iterIndex, matching: filter)
        case 1: s = store1.nextSlot(from: iterIndex, matching: filter)
        default: s = nil
        }
        if let s {
            iterIndex = Int(s.pointee.index)
            return publicDescriptor(d, s.pointee)
        }
        iterIndex = Self.parkedCursor
        return nil
    }

    /// `msi_domain_first_desc()`: resets the cursor to 0 and returns the first matching
    /// descriptor in ascending index order.
    /// - Throws: EINVAL without device data or for a bad domain id (the kernel WARNs, NULL).
    public mutating func first(domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) throws(MSIError) -> MSIDescriptor? {
        guard isSetUp, d.isValid else {
            warn("msi_domain_first_desc", "no device data or domain id \(d.rawValue) out of range")
            throw MSIError(.EINVAL, "msi_domain_first_desc", isSetUp ? "domain id \(d.rawValue) out of range" : "no MSI device data")
        }
        iterIndex = 0
        return findDesc(d, filter)
    }

    /// `msi_next_desc()`: the next matching descriptor after the cursor. Returns nil when the
    /// cursor is parked (iteration ended, or the lock was dropped since ``first(domain:_:)``).
    /// Removing the current descriptor between calls is allowed.
    public mutating func next(domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) throws(MSIError) -> MSIDescriptor? {
        guard isSetUp, d.isValid else {
            warn("msi_next_desc", "no device data or domain id \(d.rawValue) out of range")
            throw MSIError(.EINVAL, "msi_next_desc", isSetUp ? "domain id \(d.rawValue) out of range" : "no MSI device data")
        }
        guard iterIndex < MSILimits.maxIndex else { return nil }
        iterIndex += 1
        return findDesc(d, filter)
    }

    /// `msi_domain_for_each_desc()`: calls `body` for each matching descriptor in ascending
    /// order, through the cursor, so `body` may free the current descriptor.
    public mutating func forEachDescriptor<E: Error>(
        domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all,
        _ body: (inout MSIDeviceData, MSIDescriptor) throws(E) -> Void
    ) throws(E) {
        guard isSetUp, d.isValid else { return }
        iterIndex = 0
        var current = findDesc(d, filter)
        while let desc = current {
            try body(&self, desc)
            guard iterIndex < MSILimits.maxIndex else { break }
            iterIndex += 1
            current = findDesc(d, filter)
        }
    }

    // MARK: virq lookup

    /// `msi_domain_get_virq()` without taking the lock: the Linux interrupt at `index`, or 0
    /// when absent or unassociated. On the default domain of a PCI device with MSI (not MSI-X)
    /// enabled, `index` selects a vector of the single multi-MSI descriptor at index 0.
    /// - Throws: EINVAL for `index > 65535` or a bad domain id (the kernel WARNs and returns 0).
    @inlinable
    public mutating func virq(domain d: MSIDomainID = .default, index: Int) throws(MSIError) -> Int {
        // Without device data the stores are empty (their tables all-zero), so a valid index
        // gives 0 as in the kernel; only the argument check needs to look at isSetUp.
        if UInt(bitPattern: index) > UInt(MSILimits.maxIndex) || UInt(bitPattern: d.rawValue) >= UInt(MSIDomainID.maxDomains) {
            if !isSetUp { return 0 }
            throw virqArgumentError(d, index)
        }
        if d.rawValue == 0 {
            return Int(lookup0.virq(at: index))
        }
        return Int(lookup1.virq(at: index))
    }

    /// Points ``lookup0`` at the default store, or at the multi-MSI view while PCI MSI is on.
    mutating func refreshLookup0() {
        lookup0 = multiMSIView?.lookup ?? store0.lookup
    }

    /// Rebuilds the multi-MSI view after the default store changed while MSI is enabled (only
    /// misuse gets there; the view must still say what the store says).
    mutating func syncMultiMSIView() {
        if multiMSIView != nil { setPCIMSIEnabled(true) }
    }

    /// Sets `dev->msi_enabled` and switches the default domain's lookup accordingly.
    mutating func setPCIMSIEnabled(_ on: Bool) {
        pci?.msiEnabled = on
        if on, let s = store0.slot(0) {
            multiMSIView = MultiMSIView(base: Int(s.pointee.virq), count: s.pointee.virq == 0 ? 0 : Int(s.pointee.nvecUsed))
        } else {
            multiMSIView = nil
        }
        refreshLookup0()
    }

    /// The WARN and error of `msi_domain_get_virq()` for a bad index or domain id.
    @usableFromInline
    mutating func virqArgumentError(_ d: MSIDomainID, _ index: Int) -> MSIError {
        warn("msi_domain_get_virq", "index \(index) / domain id \(d.rawValue) out of range")
        return MSIError(.EINVAL, "msi_domain_get_virq", index < 0 || index > MSILimits.maxIndex
                        ? "index \(index) exceeds MSI_MAX_INDEX" : "domain id \(d.rawValue) out of range")
    }

    /// PCI multi-MSI: one descriptor at index 0 covers `nvec_used` consecutive interrupts.
    @usableFromInline
    func multiMSIVirq(_ index: Int) -> Int {
        guard let s = store0.slot(0), s.pointee.virq != 0, index < Int(s.pointee.nvecUsed) else { return 0 }
        return Int(s.pointee.virq) + index
    }

}

extension MSIDeviceData {
    /// Structural checks of both stores (property tests): nil when consistent.
    func checkStoreInvariants() -> String? {
        if let e = store0.checkInvariants() { return "default store: \(e)" }
        if let e = store1.checkInvariants() { return "secondary store: \(e)" }
        return nil
    }
}
