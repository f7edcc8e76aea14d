// The kernel's MSI vocabulary: domain ids, limits, flags, filters, msi_map, msi_msg.
// Values follow include/linux/msi.h, msi_api.h and irqdomain_defs.h.

/// The id of a per-device MSI domain (`MSI_DEFAULT_DOMAIN`, `MSI_SECONDARY_DOMAIN`).
///
/// Any integer can be spelled so that misuse is expressible; operations on an id at or above
/// the platform's ``MSIPlatformConfiguration/maxDeviceDomains`` (by default
/// ``MSIDomainID/maxDomains``) fail with EINVAL as `msi_ctrl_valid()` would.
public struct MSIDomainID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The domain id as the kernel numbers it (`domid`).
    public let rawValue: Int
    /// An id from its number (any number; invalid ones are rejected by the operations).
    @inlinable public init(rawValue: Int) { self.rawValue = rawValue }

    /// `MSI_DEFAULT_DOMAIN` (0): PCI MSI or MSI-X.
    @inlinable public static var `default`: MSIDomainID { MSIDomainID(rawValue: 0) }
    /// `MSI_SECONDARY_DOMAIN` (1): IMS. Only v6.2…v6.9 kernels had it; this model keeps it.
    @inlinable public static var secondary: MSIDomainID { MSIDomainID(rawValue: 1) }
    /// `MSI_MAX_DEVICE_IRQDOMAINS`: 2 (the v6.2…v6.9 value; 1 since v6.10). The default of
    /// ``MSIPlatformConfiguration/maxDeviceDomains``, which sizes every device's domain array.
    @inlinable public static var maxDomains: Int { 2 }

    /// True for an id below the default ``maxDomains`` (a platform configured with another
    /// ``MSIPlatformConfiguration/maxDeviceDomains`` checks against that).
    public var isValid: Bool { rawValue >= 0 && rawValue < Self.maxDomains }

    /// Orders ids numerically.
    public static func < (a: MSIDomainID, b: MSIDomainID) -> Bool { a.rawValue < b.rawValue }
    /// A human-readable form.
    public var description: String {
        switch rawValue {
        case 0: "default"
        case 1: "secondary"
        default: "domain \(rawValue)"
        }
    }
}

/// Index-space limits (kernel/irq/msi.c, include/linux/msi.h).
public enum MSILimits {
    /// `MSI_MAX_INDEX` = `USHRT_MAX`: the largest descriptor index.
    @inlinable public static var maxIndex: Int { 65535 }
    /// `MSI_XA_DOMAIN_SIZE`: the largest (and the default) domain `hwsize`.
    @inlinable public static var domainSize: Int { 65536 }
}

/// Where to allocate: a fixed index or `MSI_ANY_INDEX` (the lowest free one).
public enum MSIIndexRequest: Hashable, Sendable {
    /// Exactly this index (-ERANGE past `hwsize`, -EBUSY if taken).
    case index(Int)
    /// `MSI_ANY_INDEX`: the lowest free index in `0…hwsize-1` (-EBUSY when full).
    case any
}

/// `enum msi_desc_filter`: which descriptors an iteration visits.
public enum MSIDescriptorFilter: Hashable, Sendable, CaseIterable {
    /// `MSI_DESC_ALL`.
    case all
    /// `MSI_DESC_NOTASSOCIATED`: no Linux interrupt (`irq == 0`).
    case notAssociated
    /// `MSI_DESC_ASSOCIATED`: has a Linux interrupt.
    case associated

    /// `msi_desc_match()`.
    @inlinable public func matches(virq: Int) -> Bool {
        switch self {
        case .all: true
        case .notAssociated: virq == 0
        case .associated: virq != 0
        }
    }
}

/// `struct msi_map`: the index and Linux interrupt of one allocation.
///
/// The kernel returns `{-errno, 0}` on failure; the model throws instead, so a map in hand is
/// always a success.
public struct MSIMap: Hashable, Sendable, CustomStringConvertible {
    /// The descriptor index (MSI-X entry, IMS slot).
    public var index: Int
    /// The Linux interrupt number.
    public var virq: Int

    /// A map of an index and its interrupt.
    public init(index: Int, virq: Int) {
        self.index = index
        self.virq = virq
    }

    /// A human-readable form.
    public var description: String { "{index \(index), virq \(virq)}" }
}

/// `struct msi_msg`: the address/data pair a device writes to signal.
public struct MSIMessage: Hashable, Sendable, CustomStringConvertible {
    /// `address_lo`.
    public var addressLo: UInt32
    /// `address_hi` (0 for every x86 interrupt message).
    public var addressHi: UInt32
    /// `data`.
    public var data: UInt32

    /// A message from its three words.
    public init(addressLo: UInt32, addressHi: UInt32 = 0, data: UInt32) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
    }

    /// Builds a message from a 64-bit address.
    public init(address: UInt64, data: UInt32) {
        self.init(addressLo: UInt32(truncatingIfNeeded: address), addressHi: UInt32(address >> 32), data: data)
    }

    /// The all-zero message `msi_domain_deactivate()` writes.
    public static let zero = MSIMessage(addressLo: 0, addressHi: 0, data: 0)

    /// The full 64-bit address.
    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }

    /// A human-readable form.
    public var description: String {
        "addr 0x\(hexString(addressHi, 8))_\(hexString(addressLo, 8)) data 0x\(hexString(data, 4))"
    }
}

/// `MSI_FLAG_*` (include/linux/msi.h). Bits 0–15 are generic; the rest can be restricted by
/// the parent domain's `supported_flags`.
public struct MSIDomainFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The `MSI_FLAG_*` bits.
    public let rawValue: UInt32
    /// Flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `MSI_FLAG_USE_DEF_DOM_OPS`: fill in default domain ops.
    public static let useDefaultDomainOps = MSIDomainFlags(rawValue: 1 << 0)
    /// `MSI_FLAG_USE_DEF_CHIP_OPS`: fill in default chip ops.
    public static let useDefaultChipOps = MSIDomainFlags(rawValue: 1 << 1)
    /// Activate (write the message) at allocation time, before the device is enabled.
    public static let activateEarly = MSIDomainFlags(rawValue: 1 << 2)
    /// Reactivation needed after reservation (x86 reservation mode).
    public static let mustReactivate = MSIDomainFlags(rawValue: 1 << 3)
    /// Populate `msi_irqs/` in sysfs.
    public static let deviceSysfs = MSIDomainFlags(rawValue: 1 << 4)
    /// The core allocates one descriptor per index of a range allocation.
    public static let allocSimpleDescriptors = MSIDomainFlags(rawValue: 1 << 5)
    /// Freeing interrupts also erases their descriptors.
    public static let freeDescriptors = MSIDomainFlags(rawValue: 1 << 6)
    /// PCI multi-MSI (several vectors behind one MSI capability).
    public static let multiPCIMSI = MSIDomainFlags(rawValue: 1 << 16)
    /// `MSI_FLAG_PCI_MSIX`: PCI MSI-X support.
    public static let pciMSIX = MSIDomainFlags(rawValue: 1 << 17)
    /// `MSI_FLAG_LEVEL_CAPABLE`: level-triggered MSI (two messages).
    public static let levelCapable = MSIDomainFlags(rawValue: 1 << 18)
    /// `MSI_FLAG_MSIX_CONTIGUOUS`: MSI-X entries must be 0…n-1 without gaps.
    public static let msixContiguous = MSIDomainFlags(rawValue: 1 << 19)
    /// Dynamic MSI-X allocation after enable (`pci_msix_alloc_irq_at`).
    public static let pciMSIXAllocDynamic = MSIDomainFlags(rawValue: 1 << 20)
    /// `MSI_FLAG_NO_AFFINITY`: no `irq_set_affinity`.
    public static let noAffinity = MSIDomainFlags(rawValue: 1 << 21)
    /// `MSI_FLAG_NO_MASK`: the device cannot mask (no reservation mode, no `can_mask`).
    public static let noMask = MSIDomainFlags(rawValue: 1 << 22)

    /// `MSI_GENERIC_FLAGS_MASK`: bits 0–15.
    public static let genericMask = MSIDomainFlags(rawValue: 0xFFFF)

    /// A human-readable form.
    public var description: String {
        let names: [(MSIDomainFlags, String)] = [
            (.useDefaultDomainOps, "USE_DEF_DOM_OPS"), (.useDefaultChipOps, "USE_DEF_CHIP_OPS"),
            (.activateEarly, "ACTIVATE_EARLY"), (.mustReactivate, "MUST_REACTIVATE"),
            (.deviceSysfs, "DEV_SYSFS"), (.allocSimpleDescriptors, "ALLOC_SIMPLE_MSI_DESCS"),
            (.freeDescriptors, "FREE_MSI_DESCS"), (.multiPCIMSI, "MULTI_PCI_MSI"), (.pciMSIX, "PCI_MSIX"),
            (.levelCapable, "LEVEL_CAPABLE"), (.msixContiguous, "MSIX_CONTIGUOUS"),
            (.pciMSIXAllocDynamic, "PCI_MSIX_ALLOC_DYN"), (.noAffinity, "NO_AFFINITY"), (.noMask, "NO_MASK"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "0" : set.joined(separator: "|")
    }
}

/// `enum irq_domain_bus_token` values the model distinguishes.
public enum IRQDomainBusToken: Hashable, Sendable, CustomStringConvertible {
    /// `DOMAIN_BUS_PCI_MSI`: a global (non-per-device) PCI/MSI domain.
    case pciMSI
    /// `DOMAIN_BUS_VMD_MSI`.
    case vmdMSI
    /// `DOMAIN_BUS_PCI_DEVICE_MSI`: a per-device PCI MSI domain.
    case pciDeviceMSI
    /// `DOMAIN_BUS_PCI_DEVICE_MSIX`: a per-device PCI MSI-X domain.
    case pciDeviceMSIX
    /// `DOMAIN_BUS_PCI_DEVICE_IMS` (v6.2…v6.9): a per-device IMS domain.
    case pciDeviceIMS
    /// Any other token (platform MSI, wired-to-MSI…): not a PCI token for the core's checks.
    case other(String)

    /// The tokens `msi_check_reservation_mode()` and `msi_handle_pci_fail()` treat as PCI.
    public var isPCI: Bool {
        switch self {
        case .pciMSI, .vmdMSI, .pciDeviceMSI, .pciDeviceMSIX: true
        case .pciDeviceIMS, .other: false
        }
    }

    /// A human-readable form.
    public var description: String {
        switch self {
        case .pciMSI: "PCI_MSI"
        case .vmdMSI: "VMD_MSI"
        case .pciDeviceMSI: "PCI_DEVICE_MSI"
        case .pciDeviceMSIX: "PCI_DEVICE_MSIX"
        case .pciDeviceIMS: "PCI_DEVICE_IMS"
        case .other(let s): s
        }
    }
}

/// `PCI_IRQ_*` flags of `pci_alloc_irq_vectors()` (include/linux/pci.h).
public struct PCIIRQFlags: OptionSet, Hashable, Sendable {
    /// The `PCI_IRQ_*` bits.
    public let rawValue: UInt32
    /// Flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `PCI_IRQ_INTX`: legacy INTx is acceptable.
    public static let intx = PCIIRQFlags(rawValue: 1 << 0)
    /// `PCI_IRQ_MSI`.
    public static let msi = PCIIRQFlags(rawValue: 1 << 1)
    /// `PCI_IRQ_MSIX`.
    public static let msix = PCIIRQFlags(rawValue: 1 << 2)
    /// Spread the vectors over the CPUs (managed affinity).
    public static let affinity = PCIIRQFlags(rawValue: 1 << 3)
    /// Allow more vectors than the MSI-X table has (the "virtual" entries of some hypervisor
    /// devices).
    public static let virtual = PCIIRQFlags(rawValue: 1 << 4)
    /// `PCI_IRQ_ALL_TYPES`.
    public static let allTypes: PCIIRQFlags = [.intx, .msi, .msix]
}

/// `struct irq_affinity_desc`: the CPU mask of one vector and whether it is managed.
public struct IRQAffinityDescriptor: Hashable, Sendable {
    /// The CPUs the vector may target.
    public var mask: CPUMask
    /// Managed interrupts have kernel-owned affinity and vectors reserved on every CPU of the mask.
    public var isManaged: Bool

    /// An affinity entry.
    public init(mask: CPUMask, isManaged: Bool) {
        self.mask = mask
        self.isManaged = isManaged
    }
}

/// `struct irq_affinity`: how a driver wants its vectors spread.
public struct IRQAffinity: Sendable {
    /// Vectors at the start that get the default affinity and are not managed.
    public var preVectors: Int
    /// Vectors at the end that get the default affinity and are not managed.
    public var postVectors: Int
    /// The driver's `calc_sets()` callback: given the number of vectors to spread, returns the
    /// sizes of the interrupt sets (at most 4). `nil` means one set with all of them.
    public var calculateSets: (@Sendable (_ affinityVectors: Int) -> [Int])?

    /// A spreading request (all zero: `struct irq_affinity {}`, as `PCI_IRQ_AFFINITY` without a descriptor).
    public init(preVectors: Int = 0, postVectors: Int = 0,
                calculateSets: (@Sendable (_ affinityVectors: Int) -> [Int])? = nil) {
        self.preVectors = preVectors
        self.postVectors = postVectors
        self.calculateSets = calculateSets
    }

    /// `IRQ_AFFINITY_MAX_SETS`.
    public static let maxSets = 4
}

@usableFromInline func hexString<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
    let s = String(v, radix: 16)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
