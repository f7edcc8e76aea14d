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

/// One entry of the kernel's `msi_device_data::__domains[]` (`struct msi_dev_domain`): the
/// domain's descriptor store and the domain itself.
@usableFromInline
struct DomainSlot {
    /// Where this slot's descriptors live: the device's own store for the slot, or an
    /// ``MSIDescriptorStore``'s storage.
    @usableFromInline var store: UnsafeMutablePointer<DescriptorStore>
    /// The external store ``store`` points into (kept alive while attached), nil for the
    /// device's own.
    var external: MSIDescriptorStore?
    var domain: DeviceDomain?
    /// `domain != nil` and the domain's `hwsize` (65536 without one), kept apart so that hot
    /// paths read plain values instead of copying the domain (a name and a chip reference).
    @usableFromInline var hasDomain = false
    @usableFromInline var hwsize: Int
    // The domain's parts every allocation and chip callback reads, as plain values (copying
    // ``domain`` would copy its name and chip and count references on each call).
    /// Which chip the domain has.
    var chipKind = DomainChipKind.none
    /// A device chip, boxed once when the domain is created and held +1 until it goes:
    /// callbacks reach it through this unowned reference, with no existential copy.
    var chipBox: Unmanaged<IMSChipBox>?
    /// The device chip has `irq_shutdown` (free_irq calls it instead of masking).
    var chipHasShutdown = false
    /// `info.flags`.
    var flags: MSIDomainFlags = []
    /// `info.bus_token` is one the core treats as PCI; and whether it is PCI_DEVICE_MSI.
    var busIsPCI = false
    var busIsPCIDeviceMSI = false
    /// The domain's name as the platform interned it (what its interrupts' records name).
    var nameRef = 0
}

/// Which `irq_chip` a device domain has (``MSIDomainChip`` without the chip itself).
enum DomainChipKind: UInt8 {
    case none, pciMSI, pciMSIX, device
}

/// A device chip held by reference, so a callback borrows it instead of copying the
/// existential (a device chip is a value holding its table's region: copying it counts
/// references).
final class IMSChipBox: Sendable {
    let chip: any IMSChip
    init(_ chip: any IMSChip) { self.chip = chip }
}

/// The locked per-device MSI state: `struct msi_device_data` (one descriptor store and one
/// domain per domain id, iterator cursor) plus the `struct pci_dev` fields the PCI/MSI code
/// uses.
///
/// You get one `inout` inside ``MSIDevice/withLockedDescriptors(_:)``. Methods named after
/// `*_locked` kernel functions live here; the cursor (`first`/`next`) is only meaningful inside
/// one locked scope, because leaving the scope parks it (`__msi_unlock_descs`).
///
/// The per-domain state is one array indexed by the domain id, sized by the platform's
/// ``MSIPlatformConfiguration/maxDeviceDomains`` (the kernel's `MSI_MAX_DEVICE_IRQDOMAINS`);
/// no operation knows how many domains there are.
public struct MSIDeviceData: ~Copyable {
    /// `MSI_XA_MAX_INDEX`: where unlocking parks the iterator cursor.
    @inlinable static var parkedCursor: Int { Int.max - 1 }

    let deviceName: String
    let deviceID: UInt32
    let platform: MSIPlatform
    /// `dev->msi.domain` is an MSI parent.
    @usableFromInline let hasMSIParent: Bool
    /// `dev->msi.data != NULL`.
    @usableFromInline var isSetUp = false
    var generation = 0
    /// `MSI_MAX_DEVICE_IRQDOMAINS` of the modelled kernel: the number of ``slots``.
    @usableFromInline let domainCount: Int
    /// `__domains[]`, one per domain id.
    @usableFromInline let slots: UnsafeMutablePointer<DomainSlot>
    /// The flat interrupt array ``virq(domain:index:)`` reads for each domain id, copied from
    /// the store whenever it moves (grows, reset, store swap) or the multi-MSI view changes.
    /// Always ``maxLookupTables`` entries; ids past ``domainCount`` have an empty one, so a
    /// lookup needs no separate domain check on its fast path.
    @usableFromInline let lookupTables: UnsafeMutablePointer<StoreLookup>
    /// Entries of ``lookupTables``: the largest `maxDeviceDomains` a platform accepts.
    @inlinable static var maxLookupTables: Int { 8 }
    /// The device's own stores, one per slot (used unless a slot has an external store).
    let ownStores: UnsafeMutablePointer<DescriptorStore>
    /// Which store a domain created without an explicit one gets.
    let storeLayout: MSIStoreLayout
    /// While PCI MSI is enabled, the multi-MSI view the default slot's lookup points at.
    var multiMSIView: MultiMSIView? {
        didSet { hasMultiMSIView = multiMSIView != nil }
    }
    /// `multiMSIView != nil`, readable from inlinable code.
    @usableFromInline var hasMultiMSIView = false
    /// `__iter_idx`. Set it through ``setCursor(_:)`` (which drops the page-word cache).
    @usableFromInline var iterIndex = Int.max - 1
    /// The cursor's cached page word: the bits matching the last filter above the cursor in
    /// its page, valid while ``iterStamp`` matches the store's generation, domain and filter.
    /// `next` then takes the next index from a register-sized word instead of re-reading the
    /// store, which keeps its dependency chain to a bit scan.
    @usableFromInline var iterWord: UInt64 = 0
    @usableFromInline var iterWordBase = 0
    @usableFromInline var iterStamp: UInt64 = 0
    /// The WARNs recorded for this device (by reference: see ``DeviceWarnings``).
    @usableFromInline let warningLog = DeviceWarnings()
    /// The PCI flags (plain values: cheap to read on hot paths).
    var pci: PCIState?
    /// `desc->write_msi_msg` of default-domain descriptors, by index (only those whose
    /// ``PackedDescriptor/hasWriteCallback`` flag is set are called).
    var writeCallbacks: [Int: MSIMessageWrittenCallback] = [:]
    /// The PCI hardware (existentials: kept apart so reading a flag copies no references).
    let pciHardware: PCIFunctionHardware?

    init(name: String, id: UInt32, platform: MSIPlatform, hasMSIParent: Bool, pci: PCIFunctionHardware?,
         storeLayout: MSIStoreLayout = .device) {
        let n = platform.configuration.maxDeviceDomains
        domainCount = n
        ownStores = .allocate(capacity: n)
        slots = .allocate(capacity: n)
        lookupTables = .allocate(capacity: Self.maxLookupTables)
        lookupTables.initialize(repeating: .empty, count: Self.maxLookupTables)
        for i in 0..<n {
            (ownStores + i).initialize(to: DescriptorStore())
            (slots + i).initialize(to: DomainSlot(
                store: ownStores + i, external: nil, domain: nil,
                hasDomain: false, hwsize: MSILimits.domainSize))
        }
        self.storeLayout = storeLayout
        deviceName = name
        deviceID = id
        self.platform = platform
        self.hasMSIParent = hasMSIParent
        self.pci = pci.map { PCIState(quirks: $0.quirks, irq: $0.intxIRQ) }
        pciHardware = pci
    }

    deinit {
        for i in 0..<domainCount {
            slots[i].external?.detach()
            slots[i].chipBox?.release()
        }
        slots.deinitialize(count: domainCount)
        slots.deallocate()
        ownStores.deinitialize(count: domainCount)
        ownStores.deallocate()
        lookupTables.deallocate()
    }

    func warn(_ fn: String, _ message: String) { warningLog.log.warn(fn, message) }

    /// The device's name (`dev_name()`).
    public var name: String { deviceName }

    /// Warnings recorded so far (WARN_ON splats the kernel would have printed).
    public var warnings: [MSIWarning] { warningLog.log.entries }

    /// `MSI_MAX_DEVICE_IRQDOMAINS` on this device's platform: valid domain ids are below it.
    public var maxDeviceDomains: Int { domainCount }

    // MARK: store access (every per-domain operation goes through the slot array)

    /// True for a domain id this device has a slot for.
    @inlinable @inline(__always)
    func isValidDomain(_ d: MSIDomainID) -> Bool { UInt(bitPattern: d.rawValue) < UInt(bitPattern: domainCount) }

    /// The store of a valid domain id, nil for an invalid one.
    @inlinable @inline(__always)
    func store(_ d: MSIDomainID) -> UnsafeMutablePointer<DescriptorStore>? {
        isValidDomain(d) ? slots[d.rawValue].store : nil
    }

    func domain(_ d: MSIDomainID) -> DeviceDomain? { isValidDomain(d) ? slots[d.rawValue].domain : nil }

    mutating func setDomain(_ d: MSIDomainID, _ v: DeviceDomain?, nameRef: Int = 0) {
        guard isValidDomain(d) else { return }
        let i = d.rawValue
        slots[i].domain = v
        slots[i].hasDomain = v != nil
        slots[i].hwsize = v?.info.hwsize ?? MSILimits.domainSize
        slots[i].chipBox?.release()
        slots[i].chipBox = nil
        slots[i].chipHasShutdown = false
        switch v?.chip {
        case nil: slots[i].chipKind = .none
        case .pciMSI?: slots[i].chipKind = .pciMSI
        case .pciMSIX?: slots[i].chipKind = .pciMSIX
        case .device(let chip)?:
            slots[i].chipKind = .device
            slots[i].chipBox = Unmanaged.passRetained(IMSChipBox(chip))
            slots[i].chipHasShutdown = v?.info.chipOperations.contains(.shutdown) ?? false
        }
        slots[i].flags = v?.info.flags ?? []
        slots[i].busIsPCI = v?.info.busToken.isPCI ?? false
        slots[i].busIsPCIDeviceMSI = v?.info.busToken == .pciDeviceMSI
        slots[i].nameRef = nameRef
    }

    /// Whether a device domain exists at `d` (without copying it).
    func hasDomain(_ d: MSIDomainID) -> Bool { isValidDomain(d) && slots[d.rawValue].hasDomain }

    @inline(__always)
    func slot(_ d: MSIDomainID, _ index: Int) -> UnsafeMutablePointer<PackedDescriptor>? {
        store(d)?.pointee.slot(index)
    }

    /// The lowest index in `from…last` holding a descriptor that matches `filter`.
    func storeNext(_ d: MSIDomainID, from: Int, _ filter: MSIDescriptorFilter, last: Int = MSILimits.maxIndex) -> Int? {
        store(d)?.pointee.nextSlot(from: from, matching: filter, last: last).map { Int($0.pointee.index) }
    }

    func storeCount(_ d: MSIDomainID) -> Int { store(d)?.pointee.count ?? 0 }

    @inline(__always)
    func storeLowestFree(_ d: MSIDomainID, below limit: Int) -> Int? { store(d)?.pointee.lowestFree(below: limit) }

    /// The one insert path of every descriptor (``insertPacked(_:domain:at:)`` decides the index).
    @inline(__always)
    mutating func storeInsert(_ d: MSIDomainID, _ desc: PackedDescriptor, at index: Int) {
        guard let s = store(d) else { return }
        s.pointee.insert(desc, at: index)
        storeChanged(d, s)
    }

    @inlinable @inline(__always)
    mutating func storeRemove(_ d: MSIDomainID, at index: Int) -> PackedDescriptor? {
        guard let s = store(d) else { return nil }
        let old = s.pointee.remove(at: index)
        storeChanged(d, s)
        return old
    }

    /// Associates (or, with 0, disassociates) the descriptor at `index` with its first Linux
    /// interrupt, keeping the store's ASSOCIATED mark and flat interrupt array in step.
    mutating func storeSetVirq(_ d: MSIDomainID, _ index: Int, _ virq: Int) {
        guard let s = store(d) else { return }
        s.pointee.setVirq(UInt32(truncatingIfNeeded: virq), at: index)
        storeChanged(d, s)
    }

    /// After a store change: copy its lookup again if the flat array moved, and keep the
    /// multi-MSI view in step with the default store (only misuse changes it while MSI is on).
    @inlinable @inline(__always)
    mutating func storeChanged(_ d: MSIDomainID, _ s: UnsafeMutablePointer<DescriptorStore>) {
        if s.pointee.lookupMoved {
            s.pointee.lookupMoved = false
            refreshLookup(d)
        }
        if d == .default && hasMultiMSIView { syncMultiMSIView() }
    }

    mutating func storeAffinity(_ d: MSIDomainID, _ a: [IRQAffinityDescriptor]?) -> UInt32 {
        store(d)?.pointee.storeAffinity(a) ?? 0
    }

    mutating func releaseAffinity(_ d: MSIDomainID, _ ref: UInt32) { store(d)?.pointee.releaseAffinity(ref) }

    func affinity(_ d: MSIDomainID, _ ref: UInt32) -> [IRQAffinityDescriptor]? { store(d)?.pointee.affinity(ref) }

    func publicDescriptor(_ d: MSIDomainID, _ p: PackedDescriptor) -> MSIDescriptor {
        store(d)?.pointee.publicDescriptor(p) ?? MSIDescriptor(packed: p)
    }

    /// Points the domain's lookup at its store's flat array, or at the multi-MSI view for the
    /// default domain while PCI MSI is on.
    @usableFromInline
    mutating func refreshLookup(_ d: MSIDomainID) {
        guard isValidDomain(d) else { return }
        let table = slots[d.rawValue].store.pointee.lookup
        lookupTables[d.rawValue] = d == .default ? (multiMSIView?.lookup ?? table) : table
    }

    /// Gives slot `d` the store a new domain there must use: `requested`, else (external
    /// layout) the slot's current external store or a fresh one, else the device's own.
    /// - Throws: EBUSY when the slot must change stores but its current one still holds
    ///   descriptors, or when `requested` is attached elsewhere. Nothing changes on failure.
    mutating func placeStore(_ d: MSIDomainID, _ requested: MSIDescriptorStore?, _ fn: String) throws(MSIError) {
        let i = d.rawValue
        let current = slots[i].external
        let wanted = requested ?? (storeLayout == .external ? (current ?? MSIDescriptorStore()) : nil)
        if wanted === current { return }
        guard slots[i].store.pointee.isEmpty else {
            throw MSIError(.EBUSY, fn, "the \(d) store still holds \(slots[i].store.pointee.count) descriptors")
        }
        if let wanted, !wanted.attach() {
            throw MSIError(.EBUSY, fn, "the descriptor store is already attached to another domain")
        }
        current?.detach()
        iterStamp = 0
        slots[i].external = wanted
        slots[i].store = wanted?.storage ?? ownStores + i
        refreshLookup(d)
    }

    /// Detaches an empty external store from slot `d` (the slot falls back to the device's own).
    mutating func detachEmptyStore(_ d: MSIDomainID) {
        guard isValidDomain(d), let ext = slots[d.rawValue].external, ext.storage.pointee.isEmpty else { return }
        ext.detach()
        slots[d.rawValue].external = nil
        slots[d.rawValue].store = ownStores + d.rawValue
        refreshLookup(d)
    }

    /// Whether slot `d` keeps its descriptors in an external ``MSIDescriptorStore``.
    public func usesExternalStore(_ d: MSIDomainID) -> Bool { isValidDomain(d) && slots[d.rawValue].external != nil }

    // MARK: msi_device_data

    /// `msi_setup_device_data()`: allocates the data once; later calls succeed without change.
    /// Returns the data's identity (the same value on every call until it is released).
    public mutating func setupDeviceData() -> Int {
        if !isSetUp {
            isSetUp = true
            generation &+= 1
            setCursor(Self.parkedCursor)
        }
        return generation
    }

    /// The identity of the current `msi_device_data`, nil when not set up.
    public var deviceDataIdentity: Int? { isSetUp ? generation : nil }

    /// `msi_device_data_release()` (devres, on device removal): removes every device domain and
    /// WARNs for each store that is not empty. Descriptors left behind are leaked with their
    /// interrupts, as in the kernel; every store is emptied (`xa_destroy`), and external stores
    /// are detached.
    public mutating func releaseDeviceData() {
        guard isSetUp else { return }
        for i in 0..<domainCount {
            let id = MSIDomainID(rawValue: i)
            removeDomain(id)
            if storeCount(id) != 0 {
                warn("msi_device_data_release", "\(deviceName): \(storeCount(id)) descriptors left in the \(id) store")
            }
            slots[i].store.pointee = DescriptorStore()
            detachEmptyStore(id)
            refreshLookup(id)
        }
        isSetUp = false
        setCursor(Self.parkedCursor)
    }

    @inlinable @inline(__always)
    func requireData(_ fn: String) throws(MSIError) {
        guard isSetUp else { throw noDataError(fn) }
    }

    @usableFromInline @inline(never)
    func noDataError(_ fn: String) -> MSIError {
        MSIError(.EINVAL, fn, "\(deviceName) has no MSI device data (msi_setup_device_data not called)")
    }

    // MARK: domains and hwsize

    /// `msi_get_device_domain()`: the device domain at `d`, WARN for a bad id.
    mutating func deviceDomain(_ d: MSIDomainID, _ fn: String) -> DeviceDomain? {
        guard isValidDomain(d) else {
            warn(fn, "domain id \(d.rawValue) >= MSI_MAX_DEVICE_IRQDOMAINS (\(domainCount))")
            return nil
        }
        return domain(d)
    }

    /// ``deviceDomain(_:_:)`` as a yes or no, without copying the domain.
    @inline(__always)
    mutating func hasDeviceDomain(_ d: MSIDomainID, _ fn: @autoclosure () -> String) -> Bool {
        guard isValidDomain(d) else {
            warn(fn(), "domain id \(d.rawValue) >= MSI_MAX_DEVICE_IRQDOMAINS (\(domainCount))")
            return false
        }
        return slots[d.rawValue].hasDomain
    }

    /// `msi_domain_get_hwsize()`: the domain's `hwsize`, 65536 without a domain.
    public func hwsize(_ d: MSIDomainID) -> Int {
        isValidDomain(d) ? slots[d.rawValue].hwsize : MSILimits.domainSize
    }

    /// The device domain at `d`, nil if none.
    public func domainInfo(_ d: MSIDomainID) -> MSIDeviceDomainInfo? { domain(d)?.info }

    /// `msi_ctrl_valid()`: WARN and EINVAL for a bad domain id, a missing domain on a device
    /// with an MSI parent, `first > last`, or an index past `hwsize`.
    @inlinable @inline(__always)
    func checkControl(_ d: MSIDomainID, _ first: Int, _ last: Int, _ fn: String) throws(MSIError) {
        guard isValidDomain(d), !hasMSIParent || slots[d.rawValue].hasDomain else { throw controlDomainError(d, fn) }
        let size = slots[d.rawValue].hwsize
        guard first <= last, first >= 0, last < size else { throw controlRangeError(d, first, last, fn) }
    }

    /// `msi_ctrl_valid()`'s WARN and error for a bad domain id or a missing domain.
    @usableFromInline @inline(never)
    func controlDomainError(_ d: MSIDomainID, _ fn: String) -> MSIError {
        warn("msi_ctrl_valid", "\(fn): no device domain \(d.rawValue)")
        return MSIError(.EINVAL, fn, isValidDomain(d) ? "no device domain \(d) on \(deviceName)" : "domain id \(d.rawValue) out of range")
    }

    /// `msi_ctrl_valid()`'s WARN and error for a bad range.
    @usableFromInline @inline(never)
    func controlRangeError(_ d: MSIDomainID, _ first: Int, _ last: Int, _ fn: String) -> MSIError {
        let size = hwsize(d)
        warn("msi_ctrl_valid", "\(fn): range \(first)…\(last) invalid for hwsize \(size)")
        return MSIError(.EINVAL, fn, "range \(first)…\(last) is invalid (hwsize \(size))")
    }

    /// `msi_create_device_irq_domain(dev, domid, template, hwsize)` with the descriptor lock
    /// held. The kernel returns false on failure; the model throws: ENODEV (no MSI parent),
    /// EINVAL (bad id, `hwsize` > 65536, template the default chip ops cannot use), EEXIST (a
    /// domain already exists at `domid`, WARN), ENOTSUPP (the parent's `init_dev_msi_info`
    /// rejects the bus token), EBUSY (the store cannot be placed: see below). `hwsize` 0 means
    /// 65536.
    ///
    /// `store` chooses where the domain's descriptors live: nil for the device's layout (see
    /// ``MSIStoreLayout``), or a consumer's ``MSIDescriptorStore``. Changing a slot's store
    /// needs the old one empty, and a store serves one slot at a time (EBUSY otherwise).
    public mutating func createDomain(_ d: MSIDomainID, template: MSIDomainTemplate, hwsize: Int,
                                      store: MSIDescriptorStore? = nil) throws(MSIError) {
        let fn = "msi_create_device_irq_domain"
        guard hasMSIParent else { throw MSIError(.ENODEV, fn, "\(deviceName) has no MSI parent domain") }
        guard isValidDomain(d) else {
            throw MSIError(.EINVAL, fn, "domain id \(d.rawValue) >= MSI_MAX_DEVICE_IRQDOMAINS (\(domainCount))")
        }
        guard hwsize >= 0, hwsize <= MSILimits.domainSize else {
            throw MSIError(.EINVAL, "__msi_create_irq_domain", "hwsize \(hwsize) exceeds \(MSILimits.domainSize)")
        }
        _ = setupDeviceData()
        guard !hasDomain(d) else {
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
        try placeStore(d, store, fn)
        let flags = template.flags.intersection(platform.supportedFlags).union(platform.requiredFlags)
        let info = MSIDeviceDomainInfo(
            id: d, name: platform.parentPrefix + template.chipName + "-" + deviceName, busToken: template.busToken,
            flags: flags, hwsize: hwsize == 0 ? MSILimits.domainSize : hwsize, chipOperations: template.chipOperations)
        let nameRef = platform.state.withLock { $0.internDomainName(info.name) }
        setDomain(d, DeviceDomain(info: info, chip: template.chip), nameRef: nameRef)
    }

    /// `msi_remove_device_irq_domain()`: no-op without a domain; does not free descriptors. An
    /// external store left empty is detached (the consumer gets it back); one still holding
    /// descriptors stays with the slot, as those descriptors stay in the kernel's device data.
    public mutating func removeDomain(_ d: MSIDomainID) {
        guard isValidDomain(d) else { return }
        setDomain(d, nil)
        detachEmptyStore(d)
    }

    /// `msi_match_device_irq_domain()`.
    public func domainMatches(_ d: MSIDomainID, busToken: IRQDomainBusToken) -> Bool {
        domain(d)?.info.busToken == busToken
    }

    // MARK: descriptors

    /// `msi_insert_desc()`: inserts a zeroed-and-initialised descriptor at `index` or at the
    /// lowest free index. Returns the index used.
    /// - Throws: ERANGE (`index >= hwsize`), EBUSY (occupied, or no free index).
    @inlinable @inline(__always)
    mutating func insertPacked(_ desc: PackedDescriptor, domain d: MSIDomainID, at request: MSIIndexRequest) throws(MSIError) -> Int {
        guard isValidDomain(d) else { throw insertDomainError(d) }
        let s = slots[d.rawValue].store
        let size = slots[d.rawValue].hwsize
        let index: Int
        switch request {
        case .any:
            guard let free = s.pointee.lowestFree(below: size) else { throw insertFullError(d, size) }
            index = free
        case .index(let i):
            guard i >= 0, i < size else { throw insertRangeError(i, size) }
            guard s.pointee.slot(i) == nil else { throw insertBusyError(i) }
            index = i
        }
        s.pointee.insert(desc, at: index)
        storeChanged(d, s)
        return index
    }

    @usableFromInline @inline(never)
    func insertDomainError(_ d: MSIDomainID) -> MSIError {
        MSIError(.EINVAL, "msi_insert_desc", "domain id \(d.rawValue) out of range")
    }

    @usableFromInline @inline(never)
    func insertFullError(_ d: MSIDomainID, _ size: Int) -> MSIError {
        MSIError(.EBUSY, "msi_insert_desc", "no free index below \(size) in the \(d) store")
    }

    @usableFromInline @inline(never)
    func insertRangeError(_ index: Int, _ size: Int) -> MSIError {
        MSIError(.ERANGE, "msi_insert_desc", "index \(index) outside 0…\(size - 1)")
    }

    @usableFromInline @inline(never)
    func insertBusyError(_ index: Int) -> MSIError {
        MSIError(.EBUSY, "msi_insert_desc", "index \(index) is occupied")
    }

    /// What `msi_domain_insert_msi_desc` copies: `nvec_used` and the PCI attributes.
    @inlinable @inline(__always)
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
    @inlinable
    public mutating func insertDescriptor(_ initializer: MSIDescriptor, domain d: MSIDomainID = .default) throws(MSIError) {
        _ = try insertInitialized(initializer, domain: d, at: .index(initializer.requestedIndex), "msi_domain_insert_msi_desc")
    }

    /// `msi_insert_desc()` itself (the core's insert, which PCI reaches through
    /// `msi_domain_insert_msi_desc` and dynamic allocation through `msi_domain_alloc_irq_at`):
    /// a descriptor initialised like ``insertDescriptor(_:domain:)`` at `request` — a fixed index
    /// or the lowest free one. Returns the index used.
    /// - Throws: EINVAL (no data, bad domain id), ERANGE, EBUSY.
    @discardableResult @inlinable @inline(__always)
    public mutating func insertDescriptor(_ initializer: MSIDescriptor, domain d: MSIDomainID, at request: MSIIndexRequest) throws(MSIError) -> Int {
        try insertInitialized(initializer, domain: d, at: request, "msi_insert_desc")
    }

    /// The one path both public inserts take: validate, pack, park the affinity, insert.
    @inlinable @inline(__always)
    mutating func insertInitialized(_ initializer: MSIDescriptor, domain d: MSIDomainID, at request: MSIIndexRequest,
                                    _ fn: String) throws(MSIError) -> Int {
        try requireData(fn)
        guard isValidDomain(d) else { throw insertArgumentError(initializer, d, request, fn) }
        guard UInt(bitPattern: initializer.requestedVectorCount &- 1) < UInt(UInt16.max) else {
            throw insertArgumentError(initializer, d, request, fn)
        }
        if case .index(let i) = request, UInt(bitPattern: i) > UInt(MSILimits.maxIndex) {
            throw insertArgumentError(initializer, d, request, fn)
        }
        var p = pack(initializer)
        p.affinityRef = initializer.packed.affinityRef  // already interned
        return try insertPacked(p, domain: d, at: request)
    }

    /// What ``insertInitialized(_:domain:at:_:)`` refuses before touching the store.
    @usableFromInline @inline(never)
    func insertArgumentError(_ initializer: MSIDescriptor, _ d: MSIDomainID, _ request: MSIIndexRequest, _ fn: String) -> MSIError {
        guard isValidDomain(d) else { return MSIError(.EINVAL, fn, "domain id \(d.rawValue) out of range") }
        guard initializer.vectorCount >= 1, initializer.vectorCount <= Int(UInt16.max) else {
            return MSIError(.EINVAL, fn, "nvec_used \(initializer.vectorCount) is invalid")
        }
        if case .index(let i) = request { return insertRangeError(i, hwsize(d)) }
        return MSIError(.EINVAL, fn, "invalid insert")
    }

    /// `msi_domain_free_descs()` on a range: erases every descriptor; one still associated with
    /// an interrupt is WARNed about and leaked (gone from the store, interrupt not freed).
    @inlinable @inline(__always)
    mutating func freeDescs(_ d: MSIDomainID, _ first: Int, _ last: Int) {
        if first == last {  // one index (pci_ims_free_irq, a single-entry range): no scan
            if let old = storeRemove(d, at: first), old.virq != 0 { leakWarning(first, old.virq) }
            return
        }
        freeDescRange(d, first, last)
    }

    @usableFromInline @inline(never)
    mutating func freeDescRange(_ d: MSIDomainID, _ first: Int, _ last: Int) {
        var i = first
        while let index = storeNext(d, from: i, .all, last: last) {
            i = index + 1
            guard let old = storeRemove(d, at: index) else { continue }
            if old.virq != 0 {
                leakWarning(index, old.virq)
            } else {
                releaseAffinity(d, old.affinityRef)
            }
        }
    }

    @usableFromInline @inline(never)
    func leakWarning(_ index: Int, _ virq: UInt32) {
        warn("msi_domain_free_descs", "\(deviceName): descriptor \(index) still has irq \(virq): leaked")
    }

    /// `msi_domain_free_msi_descs_range(dev, domid, first, last)`.
    /// - Throws: EINVAL for what `msi_ctrl_valid()` rejects (the kernel WARNs and returns).
    @inlinable @inline(__always)
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
    //
    // Inlinable: a caller's loop compiles down to the store's bitmap walk (the kernel's
    // msi_for_each_desc is an xa_for_each_marked-style walk in the caller).

    /// `msi_find_desc()`: from the cursor, the first match; parks the cursor when none. `d`
    /// must be valid.
    @inlinable @inline(__always)
    mutating func findDesc(_ d: MSIDomainID, _ filter: MSIDescriptorFilter) -> MSIDescriptor? {
        let store = slots[d.rawValue].store
        let stamp = cursorStamp(d, filter)
        let index: Int
        if iterStamp == stamp && iterWord != 0 {
            let w = iterWord
            index = iterWordBase &+ w.trailingZeroBitCount
            iterWord = w & (w &- 1)
        } else {
            let m = store.pointee.nextMatch(from: iterIndex, matching: filter)
            guard m.index >= 0 else {
                setCursor(Self.parkedCursor)
                return nil
            }
            index = m.index
            iterWord = m.rest
            iterWordBase = m.index & ~63
            iterStamp = stamp
        }
        iterIndex = index
        return store.pointee.publicDescriptor(store.pointee.occupied(index))
    }

    /// Moves the cursor (first, park) and drops the cached page word.
    @inlinable @inline(__always)
    mutating func setCursor(_ index: Int) {
        iterIndex = index
        iterStamp = 0
    }

    /// `msi_domain_first_desc()`: resets the cursor to 0 and returns the first matching
    /// descriptor in ascending index order.
    /// - Throws: EINVAL without device data or for a bad domain id (the kernel WARNs, NULL).
    @inlinable
    public mutating func first(domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) throws(MSIError) -> MSIDescriptor? {
        guard isSetUp, isValidDomain(d) else { throw iteratorArgumentError("msi_domain_first_desc", d) }
        setCursor(0)
        return findDesc(d, filter)
    }

    /// `msi_next_desc()`: the next matching descriptor after the cursor. Returns nil when the
    /// cursor is parked (iteration ended, or the lock was dropped since ``first(domain:_:)``).
    /// Removing the current descriptor between calls is allowed.
    @inlinable
    public mutating func next(domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) throws(MSIError) -> MSIDescriptor? {
        guard isSetUp, isValidDomain(d) else { throw iteratorArgumentError("msi_next_desc", d) }
        guard iterIndex < MSILimits.maxIndex else { return nil }
        iterIndex &+= 1
        return findDesc(d, filter)
    }

    /// The WARN and error of `msi_domain_first_desc()` / `msi_next_desc()` for a bad call.
    @usableFromInline
    mutating func iteratorArgumentError(_ fn: String, _ d: MSIDomainID) -> MSIError {
        warn(fn, "no device data or domain id \(d.rawValue) out of range")
        return MSIError(.EINVAL, fn, isSetUp ? "domain id \(d.rawValue) out of range" : "no MSI device data")
    }

    /// `msi_domain_for_each_desc()`: calls `body` for each matching descriptor in ascending
    /// order, through the cursor, so `body` may free the current descriptor.
    @inlinable @inline(__always)
    public mutating func forEachDescriptor<E: Error>(
        domain d: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all,
        _ body: (inout MSIDeviceData, MSIDescriptor) throws(E) -> Void
    ) throws(E) {
        guard isSetUp, isValidDomain(d) else { return }
        let store = slots[d.rawValue].store
        setCursor(0)  // no cached page word while the loop runs: a `next` in the body rescans
        var m = store.pointee.nextMatch(from: 0, matching: filter)
        while m.index >= 0 {
            // The matching bits of the page are kept here, in registers; only the cursor
            // itself is stored (a `next` or a free in the body needs it). When the body leaves
            // the cursor and the store alone, the next match is a bit scan of that word.
            var index = m.index
            var word = m.rest
            let base = index & ~63
            while true {
                iterIndex = index
                let generation = store.pointee.generation
                try body(&self, store.pointee.publicDescriptor(store.pointee.occupied(index)))
                guard iterIndex == index, iterStamp == 0, slots[d.rawValue].store == store,
                      store.pointee.generation == generation else { break }
                guard word != 0 else { break }
                index = base &+ word.trailingZeroBitCount
                word &= word &- 1
            }
            // Like msi_next_desc: on from the cursor, wherever the body left it.
            guard iterIndex < MSILimits.maxIndex, slots[d.rawValue].store == store else { break }
            iterStamp = 0
            m = store.pointee.nextMatch(from: iterIndex &+ 1, matching: filter)
        }
        setCursor(Self.parkedCursor)
    }

    /// What ``iterStamp`` holds while the cached page word is valid for `d` and `filter`.
    @inlinable @inline(__always)
    func cursorStamp(_ d: MSIDomainID, _ filter: MSIDescriptorFilter) -> UInt64 {
        let f: UInt64 = filter == .all ? 1 : filter == .associated ? 2 : 3
        return slots[d.rawValue].store.pointee.generation &<< 8 | UInt64(truncatingIfNeeded: d.rawValue) &<< 2 | f
    }

    // MARK: virq lookup

    /// `msi_domain_get_virq()` without taking the lock: the Linux interrupt at `index`, or 0
    /// when absent or unassociated. On the default domain of a PCI device with MSI (not MSI-X)
    /// enabled, `index` selects a vector of the single multi-MSI descriptor at index 0.
    /// - Throws: EINVAL for `index > 65535` or a bad domain id (the kernel WARNs and returns 0).
    @inlinable
    public func virq(domain d: MSIDomainID = .default, index: Int) throws(MSIError) -> Int {
        // One bounds check and two loads, as in a C array: ``lookupTables`` holds each
        // store's flat array of associated interrupts. Everything else (an index past the
        // array, a bad argument) takes the out-of-line path, which gets plain values and the
        // warnings log, never `self`: nothing in a caller's loop of lookups can write the
        // device data, so the table stays in registers.
        if UInt(bitPattern: d.rawValue) < UInt(Self.maxLookupTables) {
            let t = lookupTables[d.rawValue]
            if UInt(bitPattern: index) < UInt(bitPattern: t.capacity) { return Int(t.virqs[index]) }
        }
        return try Self.virqPastTable(d, index, isSetUp: isSetUp, domainCount: domainCount, warnings: warningLog)
    }

    /// ``virq(domain:index:)`` past its store's flat array: 0 for a valid index (absent or
    /// not associated), EINVAL with a WARN for `index > 65535` or a bad domain id, and 0
    /// without device data (the kernel returns 0 before it looks at the arguments).
    @usableFromInline @inline(never)
    static func virqPastTable(_ d: MSIDomainID, _ index: Int, isSetUp: Bool, domainCount: Int,
                              warnings: DeviceWarnings) throws(MSIError) -> Int {
        guard UInt(bitPattern: index) > UInt(MSILimits.maxIndex) || UInt(bitPattern: d.rawValue) >= UInt(bitPattern: domainCount),
              isSetUp else { return 0 }
        throw virqArgumentError(warnings, d, index, domainCount: domainCount)
    }

    /// Rebuilds the multi-MSI view after the default store changed while MSI is enabled (only
    /// misuse gets there; the view must still say what the store says).
    @usableFromInline
    mutating func syncMultiMSIView() {
        if multiMSIView != nil { setPCIMSIEnabled(true) }
    }

    /// Sets `dev->msi_enabled` and switches the default domain's lookup accordingly.
    mutating func setPCIMSIEnabled(_ on: Bool) {
        pci?.msiEnabled = on
        if on, let s = slot(.default, 0) {
            multiMSIView = MultiMSIView(base: Int(s.pointee.virq), count: s.pointee.virq == 0 ? 0 : Int(s.pointee.nvecUsed))
        } else {
            multiMSIView = nil
        }
        refreshLookup(.default)
    }

    /// The WARN and error of `msi_domain_get_virq()` for a bad index or domain id.
    @usableFromInline @inline(never)
    static func virqArgumentError(_ warnings: DeviceWarnings, _ d: MSIDomainID, _ index: Int, domainCount: Int) -> MSIError {
        warnings.log.warn("msi_domain_get_virq", "index \(index) / domain id \(d.rawValue) out of range")
        return MSIError(.EINVAL, "msi_domain_get_virq", index < 0 || index > MSILimits.maxIndex
                        ? "index \(index) exceeds MSI_MAX_INDEX" : "domain id \(d.rawValue) out of range (\(domainCount) domains)")
    }
}

extension MSIDeviceData {
    /// Structural checks of every store (property tests): nil when consistent.
    func checkStoreInvariants() -> String? {
        for i in 0..<domainCount {
            if let e = slots[i].store.pointee.checkInvariants() { return "\(MSIDomainID(rawValue: i)) store: \(e)" }
        }
        return nil
    }
}
