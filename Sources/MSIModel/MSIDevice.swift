// The public face of a device: struct device + msi_device_data + struct pci_dev, each call
// taking the device lock like the kernel function it models.
import MSIShimCore  // PackageMutex, used by the @inlinable lock paths below
import Synchronization  // inlinable code calls Mutex.withLock through PackageMutex

/// A device whose MSI interrupts the model manages: a PCI function (MSI, MSI-X, IMS) or any
/// device with per-device MSI domains.
///
/// Every method takes the device lock for its duration (the kernel's `msi_lock_descs()`), as
/// the kernel functions without `_locked` in their name do. To combine several operations
/// atomically, or to iterate, use ``withLockedDescriptors(_:)``. Thread-safe; the lock order is
/// device, then platform.
public final class MSIDevice: Sendable {
    /// `dev_name()`, e.g. "0000:00:03.0".
    public let name: String
    /// The machine the device is attached to (its MSI parent).
    public let platform: MSIPlatform
    let id: UInt32
    @usableFromInline let state: PackageMutex<MSIDeviceData>

    /// Attaches a device to `platform`.
    /// - Parameters:
    ///   - name: the device's name (`dev_name()`, e.g. `0000:03:00.0`); it names the device's
    ///     irq domains and appears in errors.
    ///   - platform: the interrupt controller model (vector matrix, remapping, delivery) the
    ///     device's interrupts are allocated from.
    ///   - pci: the function's hardware; nil for a non-PCI device (only the generic domain API
    ///     applies then).
    ///   - hasMSIParent: whether `dev->msi.domain` is the platform's MSI parent (false models a
    ///     device the platform gives no MSI domain: PCI allocation fails with ENOTSUPP, domain
    ///     creation with ENODEV).
    ///   - storeLayout: where domains created without an explicit ``MSIDescriptorStore`` keep
    ///     their descriptors (the device's data, as the kernel does, by default).
    ///   - node: the device's NUMA node (`dev_to_node`, sysfs `numa_node`); -1 for none. It
    ///     becomes the node of interrupts allocated without an affinity descriptor.
    public init(name: String, platform: MSIPlatform, pci: PCIFunctionHardware? = nil, hasMSIParent: Bool = true,
                storeLayout: MSIStoreLayout = .device, node: Int = -1) {
        self.name = name
        self.platform = platform
        let id = platform.state.withLock { s -> UInt32 in
            defer { s.nextDeviceID &+= 1 }
            if node >= 0 { s.deviceNodes[s.nextDeviceID] = node }
            return s.nextDeviceID
        }
        self.id = id
        state = PackageMutex(MSIDeviceData(name: name, id: id, platform: platform, hasMSIParent: hasMSIParent, pci: pci,
                                    storeLayout: storeLayout))
    }

    /// Runs `body` with the descriptor lock held (`guard(msi_descs_lock)`), giving access to
    /// every `*_locked` operation and to iteration. Leaving the scope parks the iterator cursor
    /// (`__msi_unlock_descs`), so a later ``MSIDeviceData/next(domain:_:)`` without
    /// ``MSIDeviceData/first(domain:_:)`` returns nil. The lock is not recursive: inside `body`,
    /// use the ``MSIDeviceData`` methods, never this device's own methods.
    public func withLockedDescriptors<R: Sendable, E: Error>(_ body: (inout MSIDeviceData) throws(E) -> R) throws(E) -> R {
        try state.withLock { (data: inout MSIDeviceData) throws(E) -> R in
            defer { data.setCursor(MSIDeviceData.parkedCursor) }
            return try body(&data)
        }
    }

    // MARK: msi_device_data and domains

    /// `msi_setup_device_data()`: idempotent; returns the data's identity (equal across calls).
    @discardableResult
    public func setupDeviceData() -> Int { withLockedDescriptors { $0.setupDeviceData() } }

    /// `msi_device_data_release()` (device removal): removes domains, WARNs for non-empty stores.
    public func releaseDeviceData() { withLockedDescriptors { $0.releaseDeviceData() } }

    /// `msi_create_device_irq_domain()`, the descriptors kept in `store` when one is given; see
    /// ``MSIDeviceData/createDomain(_:template:hwsize:store:)``.
    public func createDomain(_ id: MSIDomainID, template: MSIDomainTemplate, hwsize: Int,
                             store: MSIDescriptorStore? = nil) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.createDomain(id, template: template, hwsize: hwsize, store: store)
        }
    }

    /// Whether domain `id` keeps its descriptors in an external ``MSIDescriptorStore``.
    public func usesExternalStore(_ id: MSIDomainID) -> Bool { withLockedDescriptors { $0.usesExternalStore(id) } }

    /// `MSI_MAX_DEVICE_IRQDOMAINS` on this device's platform.
    public var maxDeviceDomains: Int { platform.configuration.maxDeviceDomains }

    /// `msi_remove_device_irq_domain()`.
    public func removeDomain(_ id: MSIDomainID) { withLockedDescriptors { $0.removeDomain(id) } }

    /// The device domain at `id`, nil if none.
    public func domainInfo(_ id: MSIDomainID) -> MSIDeviceDomainInfo? { withLockedDescriptors { $0.domainInfo(id) } }

    // MARK: descriptors

    /// `msi_domain_insert_msi_desc()`.
    public func insertDescriptor(_ initializer: MSIDescriptor, domain: MSIDomainID = .default) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.insertDescriptor(initializer, domain: domain) }
    }

    /// `msi_domain_free_msi_descs_range()`.
    public func freeDescriptors(domain: MSIDomainID = .default, first: Int = 0, last: Int = MSILimits.maxIndex) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.freeDescriptors(domain: domain, first: first, last: last) }
    }

    /// The descriptor at `index`, nil if none.
    public func descriptor(domain: MSIDomainID = .default, index: Int) -> MSIDescriptor? {
        withLockedDescriptors { $0.descriptor(domain: domain, index: index) }
    }

    /// Every descriptor matching `filter`, ascending.
    public func descriptors(domain: MSIDomainID = .default, _ filter: MSIDescriptorFilter = .all) -> [MSIDescriptor] {
        withLockedDescriptors { $0.descriptors(domain: domain, filter) }
    }

    /// `msi_domain_get_virq(dev, domid, index)` (takes the lock): the Linux interrupt or 0.
    /// - Throws: EINVAL for `index > 65535` or a bad domain id (the kernel WARNs, returns 0).
    @inlinable
    public func getVirq(domain: MSIDomainID = .default, index: Int) throws(MSIError) -> Int {
        try state.withLock { (d: inout MSIDeviceData) throws(MSIError) -> Int in
            defer { d.setCursor(MSIDeviceData.parkedCursor) }
            return try d.virq(domain: domain, index: index)
        }
    }

    // MARK: interrupts

    /// `msi_domain_alloc_irqs_range()`.
    public func allocIRQs(domain: MSIDomainID = .default, first: Int, last: Int) throws(MSIError) -> MSIAllocResult {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.allocIRQs(domain: domain, first: first, last: last) }
    }

    /// `msi_domain_alloc_irqs_all_locked()` under the lock.
    public func allocAllIRQs(domain: MSIDomainID = .default, count: Int) throws(MSIError) -> MSIAllocResult {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.allocAllIRQs(domain: domain, count: count) }
    }

    /// `msi_domain_alloc_irq_at()`.
    public func allocIRQ(domain: MSIDomainID = .default, at request: MSIIndexRequest,
                         affinity: IRQAffinityDescriptor? = nil, cookie: UInt64? = nil) throws(MSIError) -> MSIMap {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.allocIRQ(domain: domain, at: request, affinity: affinity, cookie: cookie)
        }
    }

    /// `msi_domain_free_irqs_range()`.
    public func freeIRQs(domain: MSIDomainID = .default, first: Int, last: Int) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.freeIRQs(domain: domain, first: first, last: last) }
    }

    /// `msi_domain_free_irqs_all()`.
    public func freeAllIRQs(domain: MSIDomainID = .default) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.freeAllIRQs(domain: domain) }
    }

    /// `request_irq()`; see ``MSIDeviceData/requestIRQ(_:handler:)``.
    public func requestIRQ(_ virq: Int, handler: IRQHandler? = nil) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.requestIRQ(virq, handler: handler) }
    }

    /// `free_irq()`; see ``MSIDeviceData/freeIRQ(_:)``.
    public func freeIRQ(_ virq: Int) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.freeIRQ(virq) }
    }

    /// `disable_irq()` (masking at once); see ``MSIDeviceData/maskIRQ(_:)``.
    public func maskIRQ(_ virq: Int) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.maskIRQ(virq) }
    }

    /// `enable_irq()`; see ``MSIDeviceData/unmaskIRQ(_:)``.
    public func unmaskIRQ(_ virq: Int) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.unmaskIRQ(virq) }
    }

    /// `pci_write_msi_msg()`; see ``MSIDeviceData/writeMSIMessage(virq:_:)``.
    public func writeMSIMessage(virq: Int, _ message: MSIMessage) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.writeMSIMessage(virq: virq, message) }
    }

    // MARK: PCI

    /// `pci_alloc_irq_vectors_affinity()`; see ``MSIDeviceData/allocIRQVectors(min:max:flags:affinity:)``.
    public func allocIRQVectors(min: Int, max: Int, flags: PCIIRQFlags, affinity: IRQAffinity? = nil) throws(MSIError) -> Int {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.allocIRQVectors(min: min, max: max, flags: flags, affinity: affinity)
        }
    }

    /// `pci_enable_msix_range()` with an entry list.
    public func enableMSIXRange(entries: [Int], min: Int, max: Int) throws(MSIError) -> Int {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.enableMSIXRange(entries: entries, min: min, max: max) }
    }

    /// `pci_irq_vector()`.
    public func irqVector(_ nr: Int) throws(MSIError) -> Int {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.irqVector(nr) }
    }

    /// `pci_free_irq_vectors()`.
    public func freeIRQVectors() throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.freeIRQVectors() }
    }

    /// `pci_msix_can_alloc_dyn()`.
    public var msixCanAllocateDynamically: Bool { withLockedDescriptors { $0.msixCanAllocateDynamically } }

    /// `pci_msix_alloc_irq_at()`.
    public func msixAllocIRQ(at request: MSIIndexRequest, affinity: IRQAffinityDescriptor? = nil) throws(MSIError) -> MSIMap {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.msixAllocIRQ(at: request, affinity: affinity) }
    }

    /// `pci_msix_free_irq()`.
    public func msixFreeIRQ(_ map: MSIMap) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.msixFreeIRQ(map) }
    }

    /// `pci_create_ims_domain()` (v6.2…v6.9; kept by this model), the descriptors kept in
    /// `store` when one is given.
    public func createIMSDomain(template: MSIDomainTemplate, hwsize: Int, store: MSIDescriptorStore? = nil) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.createIMSDomain(template: template, hwsize: hwsize, store: store)
        }
    }

    /// `pci_ims_alloc_irq()`.
    public func imsAllocIRQ(cookie: UInt64, affinity: IRQAffinityDescriptor? = nil) throws(MSIError) -> MSIMap {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.imsAllocIRQ(cookie: cookie, affinity: affinity) }
    }

    /// `pci_ims_free_irq()`.
    public func imsFreeIRQ(_ map: MSIMap) throws(MSIError) {
        try withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.imsFreeIRQ(map) }
    }

    /// `dev->msi_enabled`.
    public var isMSIEnabled: Bool { withLockedDescriptors { $0.isMSIEnabled } }
    /// `dev->msix_enabled`.
    public var isMSIXEnabled: Bool { withLockedDescriptors { $0.isMSIXEnabled } }
    /// `dev->irq`.
    public var irq: Int { withLockedDescriptors { $0.irq } }

    /// Sets `dev->current_state` / disconnection.
    public func setPowerState(_ state: PCIPowerState) { withLockedDescriptors { $0.setPowerState(state) } }

    /// The WARNs recorded for this device, oldest first.
    public var warnings: [MSIWarning] { withLockedDescriptors { $0.warnings } }

    /// Forgets recorded warnings.
    public func clearWarnings() { withLockedDescriptors { $0.warningLog.log.clear() } }
}
