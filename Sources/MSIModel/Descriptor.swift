// struct msi_desc: the public value type and the packed form the store keeps.

/// The PCI part of a descriptor (`struct pci_msi_desc`).
public struct PCIMSIAttributes: Hashable, Sendable {
    /// `msi_attrib.is_msix`.
    public var isMSIX = false
    /// `msi_attrib.multiple`: log2 of the vectors allocated (written to MME).
    public var multipleLog2 = 0
    /// `msi_attrib.multi_cap`: log2 of the vectors the function can do (MMC).
    public var multipleCapableLog2 = 0
    /// `msi_attrib.can_mask`: per-vector masking works.
    public var canMask = false
    /// `msi_attrib.is_64`: 64-bit message address.
    public var is64Bit = false
    /// `msi_attrib.is_virtual`: an MSI-X index beyond the table (no hardware behind it).
    public var isVirtual = false
    /// `msi_attrib.default_irq`: the INTx interrupt to restore on disable.
    public var defaultIRQ = 0
    /// `mask_pos`: config offset of the MSI mask register (0 for MSI-X).
    public var maskPosition = 0
    /// `msi_mask` (MSI) or `msix_ctrl` (MSI-X): the cached mask register / vector control.
    public var maskCache: UInt32 = 0
    /// `mask_base != NULL`: the MSI-X descriptor was prepared against a mapped table.
    public var hasTableBase = false

    /// Attributes as `msi_setup_msi_desc()` / `msix_prepare_msi_desc()` fill them.
    public init(isMSIX: Bool = false, multipleLog2: Int = 0, multipleCapableLog2: Int = 0, canMask: Bool = false,
                is64Bit: Bool = false, isVirtual: Bool = false, defaultIRQ: Int = 0, maskPosition: Int = 0,
                maskCache: UInt32 = 0, hasTableBase: Bool = false) {
        self.isMSIX = isMSIX
        self.multipleLog2 = multipleLog2
        self.multipleCapableLog2 = multipleCapableLog2
        self.canMask = canMask
        self.is64Bit = is64Bit
        self.isVirtual = isVirtual
        self.defaultIRQ = defaultIRQ
        self.maskPosition = maskPosition
        self.maskCache = maskCache
        self.hasTableBase = hasTableBase
    }
}

/// `struct msi_desc`: one entry of a device's descriptor store.
///
/// A plain value without references: reading one from the store copies 68 bytes and nothing
/// is reference-counted (the affinity is an id into the module's interned affinity table), so iteration costs
/// what a C loop over the store costs. To change the store, use the operations of
/// ``MSIDeviceData``.
public struct MSIDescriptor: Hashable, Sendable, CustomStringConvertible {
    /// The stored fields; `packed.affinityRef` is the interned affinity (0 = none).
    @usableFromInline var packed: PackedDescriptor

    /// `affinity`: one entry per vector, or nil.
    public var affinity: [IRQAffinityDescriptor]? {
        get { AffinityTable.shared.lookup(packed.affinityRef) }
        set { packed.affinityRef = AffinityTable.shared.intern(newValue) }
    }

    /// An initializer descriptor for ``MSIDeviceData/insertDescriptor(_:domain:)``
    /// (`msi_domain_insert_msi_desc` copies `nvec_used`, `affinity`, `pci` and uses
    /// `msi_index`).
    public init(index: Int = 0, vectorCount: Int = 1, affinity: [IRQAffinityDescriptor]? = nil,
                pci: PCIMSIAttributes = PCIMSIAttributes()) {
        packed = PackedDescriptor()
        packed.index = UInt16(truncatingIfNeeded: index)
        packed.nvecUsed = UInt16(clamping: max(vectorCount, 0))
        packed.pci = pci
        packed.affinityRef = AffinityTable.shared.intern(affinity)
        requestedIndex = index
        requestedVectorCount = vectorCount
    }

    @inlinable
    init(packed: PackedDescriptor) {
        self.packed = packed
        requestedIndex = Int(packed.index)
        requestedVectorCount = Int(packed.nvecUsed)
    }

    // What the caller asked for, before packing (so an out-of-range request is reported as
    // such instead of being truncated).
    @usableFromInline var requestedIndex: Int
    @usableFromInline var requestedVectorCount: Int

    /// `msi_index`: MSI-X entry, IMS slot, 0 for MSI.
    public var index: Int {
        get { requestedIndex }
        set { requestedIndex = newValue; packed.index = UInt16(truncatingIfNeeded: newValue) }
    }
    /// `irq`: the first Linux interrupt, 0 when not associated.
    public var virq: Int {
        get { Int(packed.virq) }
        set { packed.virq = UInt32(truncatingIfNeeded: newValue) }
    }
    /// `nvec_used`: consecutive Linux interrupts behind this descriptor (> 1 only for PCI
    /// multi-MSI).
    public var vectorCount: Int {
        get { requestedVectorCount }
        set { requestedVectorCount = newValue; packed.nvecUsed = UInt16(clamping: max(newValue, 0)) }
    }
    /// `msg`: the last message written (cached even when the hardware was not touched).
    public var message: MSIMessage {
        get { packed.message }
        set { packed.message = newValue }
    }
    /// `pci`: the PCI attributes (meaningful on PCI MSI/MSI-X descriptors).
    public var pci: PCIMSIAttributes {
        get { packed.pci }
        set { packed.pci = newValue }
    }
    /// `data.icookie`: the instance cookie, as the allocation was given it (IMS: a PASID or a
    /// storage handle). The kernel's union aliases it with `pci` on PCI descriptors; the model
    /// keeps both.
    public var instanceCookie: UInt64 {
        get { packed.instanceCookie }
        set { packed.instanceCookie = newValue }
    }
    /// `data.dcookie`: the domain cookie a chip's `prepare_desc` stored.
    public var domainCookie: UInt64 {
        get { packed.domainCookie }
        set { packed.domainCookie = newValue }
    }

    /// True when a Linux interrupt is associated (`MSI_DESC_ASSOCIATED`).
    public var isAssociated: Bool { packed.virq != 0 }

    /// A human-readable form.
    public var description: String {
        var s = "desc \(index): virq \(virq)"
        if vectorCount != 1 { s += "+\(vectorCount - 1)" }
        s += ", \(message)"
        if pci.isMSIX { s += ", msix_ctrl 0x\(hexString(pci.maskCache, 8))" }
        if instanceCookie != 0 { s += ", icookie 0x\(hexString(instanceCookie, 1))" }
        return s
    }

    /// Two descriptors are equal when every field, the affinity and the requested index/count
    /// are (interned affinities are equal exactly when their ids are).
    public static func == (a: MSIDescriptor, b: MSIDescriptor) -> Bool {
        a.packed == b.packed && a.requestedIndex == b.requestedIndex && a.requestedVectorCount == b.requestedVectorCount
    }

    /// Hashes the stored fields (the affinity through its interned id).
    public func hash(into h: inout Hasher) {
        h.combine(packed)
    }
}

/// The descriptor as stored: 52 bytes, no references. Affinity arrays are interned in
/// ``AffinityTable`` and referenced by `affinityRef` (0 = none).
@usableFromInline
struct PackedDescriptor: Hashable, Sendable {
    @usableFromInline var virq: UInt32 = 0
    @usableFromInline var addressLo: UInt32 = 0
    @usableFromInline var addressHi: UInt32 = 0
    @usableFromInline var data: UInt32 = 0
    @usableFromInline var maskCache: UInt32 = 0
    @usableFromInline var defaultIRQ: UInt32 = 0
    @usableFromInline var affinityRef: UInt32 = 0
    @usableFromInline var icookieLo: UInt32 = 0
    @usableFromInline var icookieHi: UInt32 = 0
    @usableFromInline var dcookieLo: UInt32 = 0
    @usableFromInline var dcookieHi: UInt32 = 0
    @usableFromInline var index: UInt16 = 0
    @usableFromInline var nvecUsed: UInt16 = 0
    @usableFromInline var attrs: UInt16 = 0
    @usableFromInline var maskPos: UInt8 = 0
    @usableFromInline var flags: UInt8 = 0

    /// An absent (all-zero) slot.
    @inlinable init() {}

    // attrs bits
    static let isMSIX: UInt16 = 1 << 0
    static let canMask: UInt16 = 1 << 1
    static let is64: UInt16 = 1 << 2
    static let isVirtual: UInt16 = 1 << 3
    static let hasTableBase: UInt16 = 1 << 4
    static let multipleShift: UInt16 = 8   // 3 bits
    static let multiCapShift: UInt16 = 11  // 3 bits
    // flags bits
    @inlinable static var present: UInt8 { 1 << 0 }
    /// `desc->write_msi_msg != NULL`: a callback wants to hear about message writes (see
    /// ``MSIDeviceData/setMessageWrittenCallback(index:_:)``).
    @inlinable static var hasWriteCallback: UInt8 { 1 << 1 }

    @inlinable @inline(__always) var isPresent: Bool { flags & Self.present != 0 }

    var message: MSIMessage {
        get { MSIMessage(addressLo: addressLo, addressHi: addressHi, data: data) }
        set { addressLo = newValue.addressLo; addressHi = newValue.addressHi; data = newValue.data }
    }

    var instanceCookie: UInt64 {
        get { UInt64(icookieHi) << 32 | UInt64(icookieLo) }
        set { icookieLo = UInt32(truncatingIfNeeded: newValue); icookieHi = UInt32(newValue >> 32) }
    }

    var domainCookie: UInt64 {
        get { UInt64(dcookieHi) << 32 | UInt64(dcookieLo) }
        set { dcookieLo = UInt32(truncatingIfNeeded: newValue); dcookieHi = UInt32(newValue >> 32) }
    }

    @inline(__always) func has(_ bit: UInt16) -> Bool { attrs & bit != 0 }
    @inline(__always) mutating func set(_ bit: UInt16, _ on: Bool) {
        if on { attrs |= bit } else { attrs &= ~bit }
    }

    var multipleLog2: Int { Int((attrs >> Self.multipleShift) & 7) }
    var multiCapLog2: Int { Int((attrs >> Self.multiCapShift) & 7) }

    var pci: PCIMSIAttributes {
        get {
            PCIMSIAttributes(
                isMSIX: has(Self.isMSIX), multipleLog2: multipleLog2, multipleCapableLog2: multiCapLog2,
                canMask: has(Self.canMask), is64Bit: has(Self.is64), isVirtual: has(Self.isVirtual),
                defaultIRQ: Int(defaultIRQ), maskPosition: Int(maskPos), maskCache: maskCache,
                hasTableBase: has(Self.hasTableBase))
        }
        set {
            set(Self.isMSIX, newValue.isMSIX)
            set(Self.canMask, newValue.canMask)
            set(Self.is64, newValue.is64Bit)
            set(Self.isVirtual, newValue.isVirtual)
            set(Self.hasTableBase, newValue.hasTableBase)
            attrs = (attrs & ~(7 << Self.multipleShift)) | UInt16(newValue.multipleLog2 & 7) << Self.multipleShift
            attrs = (attrs & ~(7 << Self.multiCapShift)) | UInt16(newValue.multipleCapableLog2 & 7) << Self.multiCapShift
            defaultIRQ = UInt32(truncatingIfNeeded: newValue.defaultIRQ)
            maskPos = UInt8(truncatingIfNeeded: newValue.maskPosition)
            maskCache = newValue.maskCache
        }
    }
}
