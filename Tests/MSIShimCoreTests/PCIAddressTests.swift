import Testing
import MSIShimCore

@Test func parsesFullAndShortAddresses() throws {
    let full = try PCIAddress(parsing: "0000:00:03.0")
    #expect(full.description == "0000:00:03.0")
    let short = try PCIAddress(parsing: "3a:1f.7")
    #expect(short.domain == 0 && short.bus == 0x3a && short.device == 0x1f && short.function == 7)
    #expect(short.requesterID == 0x3aff)
}

@Test func rejectsMalformedAddresses() {
    for bad in ["", "00:20.0", "00:03.8", "zz:00.0", "0000:00:03", "1:2:3:4.0", "00:03.00"] {
        #expect(throws: PCIAddressError.self) { try PCIAddress(parsing: bad) }
    }
}

@Test func snapshotReadsLittleEndianAndChecksBounds() throws {
    let snap = ConfigSnapshot(name: "t", bytes: [0x86, 0x80, 0x57, 0x0d] + [UInt8](repeating: 0, count: 60))
    #expect(try snap.read16(0) == 0x8086)
    #expect(try snap.read32(0) == 0x0d57_8086)
    #expect(throws: DeviceAccessError.outOfBounds("t", offset: 62, width: 4, size: 64)) { try snap.read32(62) }
    #expect(throws: DeviceAccessError.unaligned("t", offset: 2, width: 4)) { try snap.read32(2) }
    #expect(throws: DeviceAccessError.self) { try snap.write8(0, 1) }
}

/// Builds a 256-byte config space with a capability chain given as (offset, id, next).
func configWithChain(_ chain: [(Int, UInt8, Int)], size: Int = 256) -> ConfigSnapshot {
    var b = [UInt8](repeating: 0, count: size)
    b[PCIReg.status] = UInt8(PCIReg.Status.capabilityList)
    b[PCIReg.capabilityListPointer] = UInt8(chain.first?.0 ?? 0)
    for (at, id, next) in chain where at + 1 < size {
        b[at] = id
        b[at + 1] = UInt8(next)
    }
    return ConfigSnapshot(name: "chain", bytes: b)
}

@Test func capabilityWalkFindsListInOrder() throws {
    let list = try configWithChain([(0x40, 0x11, 0x50), (0x50, 0x05, 0x60), (0x60, 0x10, 0)]).capabilityList()
    #expect(list.capabilities.map(\.offset) == [0x40, 0x50, 0x60])
    #expect(list.standardStatus == .complete)
    #expect(list.first(PCICapabilityID.msi)?.offset == 0x50)
}

@Test func capabilityWalkReportsLoopedChainAsLspciDoes() throws {
    let list = try configWithChain([(0x40, 0x11, 0x50), (0x50, 0x05, 0x40)]).capabilityList()
    #expect(list.standardStatus == .looped(at: 0x40))
    #expect(list.capabilities.count == 2)
}

@Test func capabilityWalkReportsBrokenChain() throws {
    #expect(try configWithChain([(0x40, 0xFF, 0)]).capabilityList().standardStatus == .broken(at: 0x40))
    #expect(try configWithChain([(0x40, 0x05, 0x20)]).capabilityList().standardStatus == .broken(at: 0x20))
}

@Test func capabilityWalkReportsTruncatedConfigAsAccessDenied() throws {
    var bytes = configWithChain([(0x40, 0x11, 0)]).bytes
    bytes.removeLast(192)
    let list = try ConfigSnapshot(name: "user", bytes: bytes).capabilityList()
    #expect(list.standardStatus == .accessDenied(at: 0x40))
    #expect(list.capabilities.isEmpty)
}

@Test func decodesMSI64WithMasking() throws {
    var b = configWithChain([(0x50, 0x05, 0)]).bytes
    // control: enable, MMC=3 (8), MME=1 (2), 64-bit, per-vector mask
    let ctrl: UInt16 = 1 | (3 << 1) | (1 << 4) | (1 << 7) | (1 << 8)
    b[0x52] = UInt8(ctrl & 0xFF); b[0x53] = UInt8(ctrl >> 8)
    b[0x54...0x57] = [0x04, 0x20, 0xE0, 0xFE][...]
    b[0x58...0x5B] = [0x01, 0, 0, 0][...]
    b[0x5C] = 0x22
    b[0x60] = 0x02
    b[0x64] = 0x01
    let msi = try MSICapability(config: ConfigSnapshot(name: "msi", bytes: b), at: 0x50)
    #expect(msi.enabled && msi.is64Bit && msi.maskable)
    #expect(msi.countCapable == 8 && msi.countEnabled == 2)
    #expect(msi.address == 0x1_FEE0_2004 && msi.data == 0x22)
    #expect(msi.mask == 2 && msi.pending == 1)
}

@Test func decodesMSIXTableAndPBA() throws {
    var b = configWithChain([(0x98, 0x11, 0)]).bytes
    b[0x9A] = 0x04; b[0x9B] = 0x80  // enable, size 5
    b[0x9C...0x9F] = [0x00, 0x80, 0x00, 0x00][...]
    b[0xA0...0xA3] = [0x03, 0x80, 0x04, 0x00][...]
    let x = try MSIXCapability(config: ConfigSnapshot(name: "msix", bytes: b), at: 0x98)
    #expect(x.enabled && !x.functionMasked && x.tableSize == 5)
    #expect(x.tableBIR == 0 && x.tableOffset == 0x8000)
    #expect(x.pbaBIR == 3 && x.pbaOffset == 0x48000)
    #expect(x.pbaLength == 8 && x.tableLength == 80)
}
