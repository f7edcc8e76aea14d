// Where the MSI-X table and PBA live, validated against the BARs before anything maps or
// touches them. Pure arithmetic on decoded BARs: hardware backends, the interrupt-tables layer
// and the mock device all check placements here.

/// The MSI-X table and PBA placement of a function, checked against its BARs.
public struct MSIXLayout: Hashable, Sendable {
    /// BAR (register index) holding the table.
    public var tableBAR: Int
    /// Byte offset of the table in that BAR.
    public var tableOffset: Int
    /// Bytes of the table: 16 per entry.
    public var tableLength: Int
    /// BAR holding the PBA.
    public var pbaBAR: Int
    /// Byte offset of the PBA in that BAR.
    public var pbaOffset: Int
    /// Bytes of the PBA: one bit per entry, in whole QWORDs.
    public var pbaLength: Int
    /// Number of table entries.
    public var entries: Int
    /// Things that are legal but worth knowing (sub-page BAR, table sharing a page with other
    /// registers or with the PBA): these matter when mapping around the table.
    public var notes: [String]

    /// The table's byte range in its BAR.
    public var tableRange: Range<Int> { tableOffset..<(tableOffset + tableLength) }
    /// The PBA's byte range in its BAR.
    public var pbaRange: Range<Int> { pbaOffset..<(pbaOffset + pbaLength) }

    /// Validates the MSI-X capability against the function's BARs.
    ///
    /// Checks, in order, for the table and then the PBA: BIR 0…5 (6 and 7 are reserved); the BIR
    /// is not the upper half of a 64-bit BAR; the BAR is implemented and is memory, not I/O;
    /// the structure lies inside the BAR. Then, when both share a BAR, that they do not overlap.
    /// - Parameters:
    ///   - capability: the decoded MSI-X capability.
    ///   - bars: the six BARs (``PCIBAR/parseSysfsResource(_:)``, ``PCIBAR/decode(registers:sizes:)``).
    ///   - pageSize: the host page size, for the notes.
    public static func validate(
        _ capability: MSIXCapability, bars: [PCIBAR], pageSize: Int = systemPageSize
    ) throws(MSIXLayoutError) -> MSIXLayout {
        let entries = capability.tableSize
        let table = try place(.table, bir: capability.tableBIR, offset: Int(capability.tableOffset),
                              length: capability.tableLength, bars: bars)
        let pba = try place(.pba, bir: capability.pbaBIR, offset: Int(capability.pbaOffset),
                            length: capability.pbaLength, bars: bars)
        let tableRange = table.offset..<(table.offset + capability.tableLength)
        let pbaRange = pba.offset..<(pba.offset + capability.pbaLength)
        if table.bar.index == pba.bar.index && tableRange.overlaps(pbaRange) {
            throw .overlap(bar: table.bar.index, table: tableRange, pba: pbaRange)
        }
        var notes: [String] = []
        let pageMask = pageSize - 1
        if table.bar.size < UInt64(pageSize) {
            notes.append("BAR\(table.bar.index) (0x\(hex(table.bar.size, width: 1)) bytes) is smaller than a "
                + "\(pageSize)-byte page: a mapping of it covers a whole page")
        }
        if table.bar.index == pba.bar.index
            && tableRange.lowerBound & ~pageMask <= (pbaRange.upperBound - 1) & ~pageMask
            && pbaRange.lowerBound & ~pageMask <= (tableRange.upperBound - 1) & ~pageMask {
            notes.append("table and PBA share a \(pageSize)-byte page")
        }
        let pageStart = tableRange.lowerBound & ~pageMask
        let pageEnd = min((tableRange.upperBound + pageMask) & ~pageMask, Int(clamping: table.bar.size))
        let hidden = (tableRange.lowerBound - pageStart) + max(0, pageEnd - tableRange.upperBound)
        if hidden > 0 {
            notes.append("the table's pages 0x\(hex(pageStart, width: 1))-0x\(hex(pageEnd, width: 1)) also hold "
                + "0x\(hex(hidden, width: 1)) bytes outside the table (other registers or the PBA): "
                + "mapping around the table hides them")
        }
        return MSIXLayout(
            tableBAR: table.bar.index, tableOffset: table.offset, tableLength: capability.tableLength,
            pbaBAR: pba.bar.index, pbaOffset: pba.offset, pbaLength: capability.pbaLength, entries: entries,
            notes: notes)
    }

    private static func place(
        _ structure: MSIXLayoutError.Structure, bir: Int, offset: Int, length: Int, bars: [PCIBAR]
    ) throws(MSIXLayoutError) -> (bar: PCIBAR, offset: Int) {
        guard (0...5).contains(bir) else { throw .reservedBIR(structure, bir: bir) }
        guard let bar = bars.first(where: { $0.index == bir }) else { throw .unimplementedBAR(structure, bir: bir) }
        switch bar.kind {
        case .upperHalf(let lower): throw .upperHalfOf64BitBAR(structure, bir: bir, lower: lower)
        case .unimplemented: throw .unimplementedBAR(structure, bir: bir)
        case .io: throw .ioBAR(structure, bir: bir)
        case .memory32, .memory64: break
        }
        guard bar.size > 0 else { throw .unimplementedBAR(structure, bir: bir) }
        guard UInt64(offset) + UInt64(length) <= bar.size else {
            throw .pastBAREnd(structure, bir: bir, offset: offset, length: length, barSize: bar.size)
        }
        return (bar, offset)
    }
}

/// Why an MSI-X layout is unusable. Each case names the structure and the numbers involved.
public enum MSIXLayoutError: ErrnoCarrying, Equatable, Sendable, CustomStringConvertible {
    /// Which MSI-X structure a problem concerns.
    public enum Structure: String, Sendable {
        /// The vector table.
        case table = "MSI-X table"
        /// The Pending Bit Array.
        case pba = "MSI-X PBA"
    }

    /// BIR 6 or 7: reserved by the spec.
    case reservedBIR(Structure, bir: Int)
    /// The BIR names a BAR that is not implemented (size 0).
    case unimplementedBAR(Structure, bir: Int)
    /// The BIR names the upper half of the 64-bit BAR at `lower`.
    case upperHalfOf64BitBAR(Structure, bir: Int, lower: Int)
    /// The BIR names an I/O-port BAR.
    case ioBAR(Structure, bir: Int)
    /// The structure ends past the end of its BAR.
    case pastBAREnd(Structure, bir: Int, offset: Int, length: Int, barSize: UInt64)
    /// Table and PBA overlap in the same BAR.
    case overlap(bar: Int, table: Range<Int>, pba: Range<Int>)

    public var errno: KernelErrno? { .EINVAL }

    public var description: String {
        switch self {
        case let .reservedBIR(s, bir):
            "\(s.rawValue): BIR \(bir) is reserved (only BARs 0-5 can hold MSI-X structures)"
        case let .unimplementedBAR(s, bir):
            "\(s.rawValue): BIR \(bir) names BAR\(bir), which is not implemented"
        case let .upperHalfOf64BitBAR(s, bir, lower):
            "\(s.rawValue): BIR \(bir) names the upper half of the 64-bit BAR\(lower), not a BAR of its own"
        case let .ioBAR(s, bir):
            "\(s.rawValue): BIR \(bir) names an I/O-port BAR; MSI-X structures must be in memory space"
        case let .pastBAREnd(s, bir, offset, length, barSize):
            "\(s.rawValue): 0x\(hex(offset, width: 1))+0x\(hex(length, width: 1)) runs past the end of BAR\(bir) "
                + "(size 0x\(hex(barSize, width: 1)))"
        case let .overlap(bar, table, pba):
            "MSI-X table 0x\(hex(table.lowerBound, width: 1))-0x\(hex(table.upperBound, width: 1)) and PBA "
                + "0x\(hex(pba.lowerBound, width: 1))-0x\(hex(pba.upperBound, width: 1)) overlap in BAR\(bar)"
        }
    }
}
