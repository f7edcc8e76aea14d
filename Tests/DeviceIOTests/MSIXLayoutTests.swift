// MSI-X layout validation: every bad placement gets its own error; legal oddities get notes.
import Testing
@testable import DeviceIO
import MSIShimCore

func msixCap(entries: Int, tableBIR: Int, tableOffset: UInt32, pbaBIR: Int, pbaOffset: UInt32) throws -> MSIXCapability {
    var b = ConfigBuilder()
    b.msix(at: 0x40, entries: entries, tableBIR: tableBIR, tableOffset: tableOffset, pbaBIR: pbaBIR, pbaOffset: pbaOffset)
    return try MSIXCapability(config: ConfigSnapshot(name: "c", bytes: b.bytes), at: 0x40)
}

let layoutBARs = PCIBAR.parseSysfsResource(resourceText([
    0: (0xfe00_0000, 0x4000, memFlags),
    1: (0xfe10_0000, 0x800, memFlags),
    2: (0x8_0000_0000, 0x4000, mem64PrefetchFlags),
    4: (0xc000, 0x20, ioFlags),
]))

@Test func validLayoutInOneBAR() throws {
    let cap = try msixCap(entries: 64, tableBIR: 0, tableOffset: 0x2000, pbaBIR: 0, pbaOffset: 0x3000)
    let l = try MSIXLayout.validate(cap, bars: layoutBARs, pageSize: 4096)
    #expect(l.tableBAR == 0 && l.tableRange == 0x2000..<0x2400 && l.pbaRange == 0x3000..<0x3008 && l.entries == 64)
    // The table's page also holds 0xC00 other bytes: mapping around it hides them.
    #expect(l.notes.contains { $0.contains("0xc00 bytes outside the table") })
}

@Test func tableFillingWholePagesHasNoNotes() throws {
    let cap = try msixCap(entries: 256, tableBIR: 2, tableOffset: 0x1000, pbaBIR: 0, pbaOffset: 0)
    let l = try MSIXLayout.validate(cap, bars: layoutBARs, pageSize: 4096)
    #expect(l.notes.isEmpty)
    #expect(l.tableBAR == 2 && l.pbaBAR == 0)
}

@Test func reservedBIRs() throws {
    for bir in [6, 7] {
        let cap = try msixCap(entries: 4, tableBIR: bir, tableOffset: 0, pbaBIR: 0, pbaOffset: 0x1000)
        #expect(throws: MSIXLayoutError.reservedBIR(.table, bir: bir)) { try MSIXLayout.validate(cap, bars: layoutBARs) }
        let pba = try msixCap(entries: 4, tableBIR: 0, tableOffset: 0, pbaBIR: bir, pbaOffset: 0x1000)
        #expect(throws: MSIXLayoutError.reservedBIR(.pba, bir: bir)) { try MSIXLayout.validate(pba, bars: layoutBARs) }
    }
}

@Test func birOnUpperHalfIOOrUnimplementedBAR() throws {
    let upper = try msixCap(entries: 4, tableBIR: 3, tableOffset: 0, pbaBIR: 0, pbaOffset: 0x1000)
    #expect(throws: MSIXLayoutError.upperHalfOf64BitBAR(.table, bir: 3, lower: 2)) {
        try MSIXLayout.validate(upper, bars: layoutBARs)
    }
    let io = try msixCap(entries: 4, tableBIR: 0, tableOffset: 0, pbaBIR: 4, pbaOffset: 0)
    #expect(throws: MSIXLayoutError.ioBAR(.pba, bir: 4)) { try MSIXLayout.validate(io, bars: layoutBARs) }
    let none = try msixCap(entries: 4, tableBIR: 5, tableOffset: 0, pbaBIR: 0, pbaOffset: 0x1000)
    #expect(throws: MSIXLayoutError.unimplementedBAR(.table, bir: 5)) { try MSIXLayout.validate(none, bars: layoutBARs) }
}

@Test func structuresPastTheBAREnd() throws {
    // 2048 entries = 32 KiB of table in a 16 KiB BAR.
    let big = try msixCap(entries: 2048, tableBIR: 0, tableOffset: 0, pbaBIR: 2, pbaOffset: 0)
    #expect(throws: MSIXLayoutError.pastBAREnd(.table, bir: 0, offset: 0, length: 0x8000, barSize: 0x4000)) {
        try MSIXLayout.validate(big, bars: layoutBARs)
    }
    let pba = try msixCap(entries: 128, tableBIR: 0, tableOffset: 0, pbaBIR: 0, pbaOffset: 0x3FF8)
    #expect(throws: MSIXLayoutError.pastBAREnd(.pba, bir: 0, offset: 0x3FF8, length: 16, barSize: 0x4000)) {
        try MSIXLayout.validate(pba, bars: layoutBARs)
    }
    let error = MSIXLayoutError.pastBAREnd(.pba, bir: 0, offset: 0x3FF8, length: 16, barSize: 0x4000)
    #expect(error.errno == .EINVAL && error.description.contains("past the end of BAR0"))
}

@Test func overlappingTableAndPBA() throws {
    let cap = try msixCap(entries: 16, tableBIR: 0, tableOffset: 0x1000, pbaBIR: 0, pbaOffset: 0x1080)
    #expect(throws: MSIXLayoutError.overlap(bar: 0, table: 0x1000..<0x1100, pba: 0x1080..<0x1088)) {
        try MSIXLayout.validate(cap, bars: layoutBARs)
    }
    // Same offsets in different BARs are fine.
    let split = try msixCap(entries: 16, tableBIR: 0, tableOffset: 0x1000, pbaBIR: 2, pbaOffset: 0x1000)
    #expect(try MSIXLayout.validate(split, bars: layoutBARs).pbaBAR == 2)
}

@Test func subPageBARGetsANote() throws {
    let cap = try msixCap(entries: 8, tableBIR: 1, tableOffset: 0, pbaBIR: 1, pbaOffset: 0x400)
    let l = try MSIXLayout.validate(cap, bars: layoutBARs, pageSize: 4096)
    #expect(l.notes.contains { $0.contains("smaller than a 4096-byte page") })
    #expect(l.notes.contains { $0.contains("share a 4096-byte page") })
}
