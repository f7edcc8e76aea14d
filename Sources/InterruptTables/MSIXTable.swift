public import MSIShimCore

/// One MSI-X table entry as the device holds it (16 bytes at `table + 16 * index`).
public struct MSIXEntry: Hashable, Sendable {
    public var addressLo: UInt32
    public var addressHi: UInt32
    public var data: UInt32
    public var vectorControl: UInt32

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
    public let config: any ConfigSpaceAccess
    public let capability: MSIXCapability
    public let tableRegion: any MMIORegion
    public let pbaRegion: any MMIORegion

    /// Reads the capability at `capOffset` and binds the table and PBA to their BARs.
    ///
    /// - Parameter region: returns the region of a BAR index (called for the table's and
    ///   the PBA's BIR).
    /// - Throws: `MSIXLayoutError` when a BIR is reserved or the table/PBA does not fit its
    ///   region; whatever `region` or the config read throws.
    public init(
        config: any ConfigSpaceAccess, capOffset: Int, region: (Int) throws -> any MMIORegion
    ) throws {
        try self.init(config: config, capability: MSIXCapability(config: config, at: capOffset), region: region)
    }

    /// Binds an already decoded capability (no config reads) to the table's and PBA's BARs.
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

    public func readAddressLo(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryAddressLo)) }
    public func readAddressHi(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryAddressHi)) }
    public func readData(_ index: Int) throws -> UInt32 { try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryData)) }
    public func readVectorControl(_ index: Int) throws -> UInt32 {
        try tableRegion.read32(entryOffset(index, PCIReg.MSIX.entryVectorControl))
    }

    public func writeAddressLo(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryAddressLo), value)
    }
    public func writeAddressHi(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryAddressHi), value)
    }
    public func writeData(_ index: Int, _ value: UInt32) throws {
        try tableRegion.write32(entryOffset(index, PCIReg.MSIX.entryData), value)
    }
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
    case indexOutOfRange(index: Int, tableSize: Int)

    public var errno: KernelErrno? { .ERANGE }

    public var description: String {
        switch self {
        case let .indexOutOfRange(index, size): "MSI-X index \(index) is past the table size \(size)"
        }
    }
}
