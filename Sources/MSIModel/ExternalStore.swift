// Where a domain's descriptors live: in the device's data (the kernel's layout,
// msi_device_data::__domains[domid].store) or in a store object a consumer owns (the
// Dec-2021 thread's open question: "could the IMS xarray be outside the struct device?").
// Both layouts are reached through the same pointer under the same device lock, so every
// operation behaves and costs the same; what differs is who owns the memory and when it goes.
import Synchronization

/// Which store a device gives a domain that is created without an explicit
/// ``MSIDescriptorStore`` (including the MSI/MSI-X domains the PCI layer creates itself).
public enum MSIStoreLayout: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The kernel's layout: each domain's store is part of the device's MSI data and lives as
    /// long as that data (until ``MSIDevice/releaseDeviceData()`` or the device goes).
    case device
    /// Every such domain gets its own ``MSIDescriptorStore`` object, as if a consumer had
    /// passed one; the domain slot keeps it alive while attached.
    case external

    /// The layout's name.
    public var description: String { rawValue }
}

/// A descriptor store owned outside the device: a consumer (a queue group, a sub-device)
/// creates one and passes it when a domain is created
/// (``MSIDevice/createDomain(_:template:hwsize:store:)``,
/// ``MSIDevice/createIMSDomain(template:hwsize:store:)``), so that domain's descriptors live
/// here instead of in the device's data.
///
/// **Locking.** There is no second lock: while attached, the store is read and written only
/// under the device lock of the device it is attached to, exactly like a store in the
/// device's data (the kernel keeps one descriptor mutex per device). Consumers of different
/// stores on one device therefore still serialize on that device's lock.
///
/// **Lifetime.** A store is attached to at most one domain slot at a time. Freeing the
/// domain's interrupts and removing the domain (``MSIDevice/freeAllIRQs(domain:)`` then
/// ``MSIDevice/removeDomain(_:)``) detaches an emptied store; the consumer may then attach it
/// elsewhere or drop it, which frees its memory. A domain removed while descriptors remain
/// keeps its store attached (the kernel keeps those descriptors in the device until release).
/// ``MSIDevice/releaseDeviceData()`` empties and detaches every store, as it frees the
/// device's own.
public final class MSIDescriptorStore: @unchecked Sendable {
    // @unchecked: `storage` is only touched under the lock of the device the store is attached
    // to (attachment is claimed atomically), or in init/deinit when no device can hold it.
    let storage: UnsafeMutablePointer<DescriptorStore>
    private let attached = Atomic<Bool>(false)

    /// An empty store, not attached to any domain.
    public init() {
        storage = .allocate(capacity: 1)
        storage.initialize(to: DescriptorStore())
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    /// Whether a device domain slot currently uses this store.
    public var isAttached: Bool { attached.load(ordering: .acquiring) }

    /// Claims the store for one domain slot; false when another slot has it.
    func attach() -> Bool {
        attached.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    /// Gives the store back (called under the device lock that had it).
    func detach() { attached.store(false, ordering: .releasing) }
}
