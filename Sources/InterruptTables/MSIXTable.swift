public import MSIShimCore

/// One MSI-X table entry as the device holds it (16 bytes at `table + 16 * index`).
public struct MSIXEntry: Hashable, Sendable {
    /// Message Address, the entry's DWORD at offset 0x0 (`PCI_MSIX_ENTRY_LOWER_ADDR`): the low
    /// 32 bits of the address the device writes to. Bits 1:0 are always zero (the write is a
    /// DWORD); on x86 the value is `0xFEEx_xxxx` with the destination in its middle bits.
    public var addressLo: UInt32
    /// Message Upper Address, offset 0x4 (`PCI_MSIX_ENTRY_UPPER_ADDR`): bits 63:32 of the
    /// address. Zero on x86, where interrupt messages target the 32-bit `0xFEE` window.
    public var addressHi: UInt32
    /// Message Data, offset 0x8 (`PCI_MSIX_ENTRY_DATA`): the 32-bit value the device writes.
    /// On x86 its low byte is the CPU vector (compatibility format) or it holds the IRTE
    /// subhandle (remappable format).
    public var data: UInt32
    /// Vector Control, offset 0xC (`PCI_MSIX_ENTRY_VECTOR_CTRL`). Bit 0 is the Mask Bit
    /// (`PCI_MSIX_ENTRY_CTRL_MASKBIT`): while set the device does not send this entry's
    /// message and sets its pending bit instead. The other bits are reserved or device-specific
    /// (steering tags), and the kernel writes back whatever it read there.
    public var vectorControl: UInt32

    /// An entry with the given four DWORDs, in the order they sit in the table.
    public init(addressLo: UInt32, addressHi: UInt32, data: UInt32, vectorControl: UInt32) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
        self.vectorControl = vectorControl
    }

    /// The 64-bit message address.
    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
    /// Vector Control bit 0.
    public var masked: Bool { vectorControl & PCIReg.MSIX.vectorControlMask != 0 }
}

/// A device's MSI-X table and PBA over the BAR regions that hold them, plus the Message
/// Control word in config space. Each method is exactly one hardware access (or one per
/// DWORD for whole-entry reads), so access counts compare directly with the kernel's.
///
/// The regions are the whole BARs (offsets from BAR start), real (sysfs, UIO, VFIO) or mock.
public struct MSIXTable: Sendable {
    /// The function's config space, where Message Control (capability + 2) is read and written.
    public let config: any ConfigSpaceAccess
    /// The MSI-X capability as decoded at construction: its config offset, Table Size, and the
    /// BIR and offset of the table and of the PBA. Not re-read afterwards (the kernel also
    /// reads Table Offset/BIR once, in `msix_map_region()`).
    public let capability: MSIXCapability
    /// The whole BAR the Table BIR names; the table starts at `capability.tableOffset` in it.
    public let tableRegion: any MMIORegion
    /// The whole BAR the PBA BIR names (the same region as ``tableRegion`` when both share a
    /// BAR); the PBA starts at `capability.pbaOffset` in it.
    public let pbaRegion: any MMIORegion

    /// Reads the capability at `capOffset` and binds the table and PBA to their BARs.
    ///
    /// - Parameters:
    ///   - config: the function's config space; the capability is read from it (its header,
    ///     Message Control, Table Offset/BIR and PBA Offset/BIR).
    ///   - capOffset: the config-space offset of the MSI-X capability (from the capability
    ///     list, e.g. `capabilityList().first(PCICapabilityID.msix)`).
    ///   - region: returns the region of a BAR index (called for the table's and
    ///     the PBA's BIR).
    /// - Throws: `MSIXLayoutError` when a BIR is reserved or the table/PBA does not fit its
    ///   region; whatever `region` or the config read throws.
    public init(
        config: any ConfigSpaceAccess, capOffset: Int, region: (Int) throws -> any MMIORegion
    ) throws {
        try self.init(config: config, capability: MSIXCapability(config: config, at: capOffset), region: region)
    }

    /// Binds an already decoded capability (no config reads) to the table's and PBA's BARs.
    ///
    /// - Throws: `MSIXLayoutError` when a BIR is reserved (6 or 7) or the table or PBA runs
    ///   past the end of its region; whatever `region` throws.
    public init(
        config: any ConfigSpaceAccess, capability cap: MSIXCapability, region: (Int) throws -> any MMIORegion
    ) throws {
        guard cap.tableBIR < 6 else { throw MSIXLayoutError.reservedBIR(.table, bir: cap.tableBIR) }
        guard cap.pbaBIR < 6 else { throw MSIXLayoutError.reservedBIR(.pba, bir: cap.pbaBIR) }
        let table = try region(cap.tableBIR)
        let pba = cap.pbaBIR == cap.tableBIR ? table : try region(cap.pbaBIR)
        guard Int(cap.tableOffset) + cap.tableLength <= table.size else {
            throw MSIXLayoutError.pastBAREnd(
                .table, bir: cap.tableBIR, offset: Int(cap.tableOffset), length: cap.tableLength, barSize: UInt64(table.size))
        }
        guard Int(cap.pbaOffset) + cap.pbaLength <= pba.size else {
            throw MSIXLayoutError.pastBAREnd(
                .pba, bir: cap.pbaBIR, offset: Int(cap.pbaOffset), length: cap.pbaLength, barSize: UInt64(pba.size))
        }
        self.config = config
        self.capability = cap
        self.tableRegion = table
        self.pbaRegion = pba
    }

    /// The number of entries: Message Control's Table Size field plus one (1…2048), as read at
    /// construction.
    public var tableSize: Int { capability.tableSize }

    @inline(__always)
    func entryOffset(_ index: Int, _ field: Int) throws -> Int {
        guard index >= 0, index < capability.tableSize else {
            throw MSIXTableError.indexOutOfRange(index: index, tableSize: capability.tableSize)
        }
        return Int(capability.tableOffset) + index * PCIReg.MSIX.entrySize + field
    }

    // MARK: Message Control (config space)

    /// Reads Message Control (cap + 2).
    public func readControl() throws -> UInt16 { try config.read16(capability.capOffset + PCIReg.MSIX.flags) }

    /// Writes Message Control (only Enable and Function Mask are writable in hardware).
    public func writeControl(_ value: UInt16) throws {
        try config.write16(capability.capOffset + PCIReg.MSIX.flags, value)
    }

    // MARK: Entries (MMIO)
    //
    // Each accessor is one 32-bit MMIO access at `table + 16 * index + field`. An index
    // outside 0..<tableSize throws MSIXTableError.indexOutOfRange (ERANGE) before any access;
    // otherwise whatever the region's access throws is passed on.

    /// Reads entry `index`'s Message Address (offset 0x0): one DWORD read.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func readAddressLo(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryAddressLo)) }
    /// Reads entry `index`'s Message Upper Address (offset 0x4): one DWORD read.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func readAddressHi(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryAddressHi)) }
    /// Reads entry `index`'s Message Data (offset 0x8): one DWORD read.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func readData(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryData)) }
    /// Reads entry `index`'s Vector Control (offset 0xC, Mask Bit in bit 0): one DWORD read,
    /// as `msix_prepare_msi_desc()` does to learn the entry's mask state.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func readVectorControl(_ index: Int) throws -> UInt32 {
        try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryVectorControl))
    }

    /// Writes entry `index`'s Message Address (offset 0x0): one DWORD write, not read back.
    /// The spec leaves the result undefined while the entry is unmasked; the kernel writes
    /// address and data only with the entry masked (or MSI-X disabled).
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func writeAddressLo(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryAddressLo), value)
    }
    /// Writes entry `index`'s Message Upper Address (offset 0x4): one DWORD write.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func writeAddressHi(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryAddressHi), value)
    }
    /// Writes entry `index`'s Message Data (offset 0x8): one DWORD write. The kernel follows a
    /// message write with a read of the entry to flush the posted writes; do the same when
    /// the device must see the new message before going on.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func writeData(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryData), value)
    }
    /// Writes entry `index`'s Vector Control (offset 0xC): one DWORD write; bit 0 masks
    /// (1) or unmasks (0) the entry, as `pci_msix_write_vector_ctrl()` does. Keep the other
    /// bits as read.
    /// - Throws: ``MSIXTableError/indexOutOfRange(index:tableSize:)``, or the region's error.
    public func writeVectorControl(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryVectorControl), value)
    }

    /// Reads one whole entry (four DWORD reads).
    public func readEntry(_ index: Int) throws -> MSIXEntry {
        MSIXEntry(
            addressLo: try readAddressLo(index), addressHi: try readAddressHi(index),
            data: try readData(index), vectorControl: try readVectorControl(index))
    }

    /// Every entry, in index order.
    public func readEntries() throws -> [MSIXEntry] {
        try (0..<tableSize).map { try readEntry($0) }
    }

    // MARK: PBA (read-only)

    /// The pending bits, one QWORD per 64 entries (read as DWORDs: every device must accept them).
    public func readPBA() throws -> [UInt64] {
        try (0..<(capability.pbaLength / 8)).map { q in
            let at = Int(capability.pbaOffset) + 8 * q
            return UInt64(try pbaRegion.read32(at + 4)) << 32 | UInt64(try pbaRegion.read32(at))
        }
    }

    /// Whether entry `index` has its pending bit set (one DWORD read).
    public func isPending(_ index: Int) throws -> Bool {
        _ = try entryOffset(index, 0)
        let word = try pbaRegion.read32(Int(capability.pbaOffset) + index / 32 * 4)
        return word & (1 << UInt32(index % 32)) != 0
    }
}

/// An access to an MSI-X entry that does not exist.
public enum MSIXTableError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// `index` is negative or not below `tableSize`, the table's entry count; nothing was
    /// accessed. Carries ERANGE.
    case indexOutOfRange(index: Int, tableSize: Int)

    public var errno: KernelErrno? { .ERANGE }

    public var description: String {
        switch self {
        case let .indexOutOfRange(index, size): "MSI-X index \(index) is past the table size \(size)"
        }
    }
}
