import Testing
import MSIShimCore
@testable import MockDevice
import MockHarness

/// A sink that records every message and reports it delivered to virq 100 + low data byte.
final class RecordingSink: MessageSink {
    let log = PackageMutex<[EmittedMessage]>([])
    func deliver(_ message: EmittedMessage) -> DeliveryOutcome {
        log.withLock { $0.append(message) }
        return .delivered(virq: 100 + Int(message.data & 0xFF), cpu: 0, vector: Int(message.data & 0xFF))
    }
    var messages: [EmittedMessage] { log.withLock { $0 } }
}

let msixCap = 0xA0, msiCap = 0x80

func makeMock() throws -> (MockPCIDevice, RecordingSink, any MMIORegion, any ConfigSpaceAccess) {
    let sink = RecordingSink()
    let dev = try MockPCIDevice.builtIn(sink: sink)
    return (dev, sink, try #require(dev.bar(0)), dev.config)
}

/// Programs entry `i` with a message (while masked) and returns its data value.
@discardableResult
func program(_ bar: any MMIORegion, entry i: Int, data: UInt32) throws -> UInt32 {
    try bar.write32(i * 16 + 0, 0xFEE0_0000)
    try bar.write32(i * 16 + 4, 0)
    try bar.write32(i * 16 + 8, data)
    return data
}

func enableMSIX(_ cfg: any ConfigSpaceAccess, functionMask: Bool = false) throws {
    let c = try cfg.read16(msixCap + 2)
    try cfg.write16(msixCap + 2, c | PCIReg.MSIX.enable | (functionMask ? PCIReg.MSIX.functionMask : 0))
}

@Test("rule 1: only Enable and Function Mask are writable in MSI-X Message Control")
func messageControlReadOnlyBits() throws {
    let (dev, _, _, cfg) = try makeMock()
    try cfg.write16(msixCap + 2, 0xFFFF)
    #expect(try cfg.read16(msixCap + 2) == 0xC000 | 2047)
    #expect(dev.violations.contains { $0.rule == 1 })
    try cfg.write16(msixCap + 2, 2047)
    #expect(try cfg.read16(msixCap + 2) == 2047)
}

@Test("rule 2: table and PBA offset/BIR registers are read-only")
func tableAndPBARegistersReadOnly() throws {
    let (_, _, _, cfg) = try makeMock()
    try cfg.write32(msixCap + 4, 0x1234_5673)
    try cfg.write32(msixCap + 8, 0)
    #expect(try cfg.read32(msixCap + 4) == 0)
    #expect(try cfg.read32(msixCap + 8) == 0x8000)
}

@Test("rule 3: entries are 16 bytes, vector control at +0xC, address bits 1:0 read as zero")
func entryLayout() throws {
    let (dev, _, bar, _) = try makeMock()
    try bar.write32(5 * 16 + 0, 0xFEE0_1003)
    #expect(try bar.read32(5 * 16) == 0xFEE0_1000)
    #expect(dev.violations.contains { $0.rule == 3 })
    #expect(try bar.read32(5 * 16 + 12) & 1 == 1)
}

@Test("rule 4: reset state is disabled, unmasked function, every entry masked, PBA clear")
func resetState() throws {
    let (dev, _, bar, cfg) = try makeMock()
    let c = try cfg.read16(msixCap + 2)
    #expect(c & (PCIReg.MSIX.enable | PCIReg.MSIX.functionMask) == 0)
    for i in stride(from: 0, to: 2048, by: 97) { #expect(try bar.read32(i * 16 + 12) == 1) }
    for q in 0..<32 { #expect(try bar.read64(0x8000 + q * 8) == 0) }
    // After programming and enabling, reset() returns to the same state.
    try enableMSIX(cfg)
    try bar.write32(12, 0)
    dev.reset()
    #expect(try cfg.read16(msixCap + 2) & PCIReg.MSIX.enable == 0)
    #expect(try bar.read32(12) == 1)
}

@Test("rule 5: effective mask is !Enable or FunctionMask or entry mask; FM keeps entry bits")
func effectiveMask() throws {
    let (dev, sink, bar, cfg) = try makeMock()
    try program(bar, entry: 0, data: 0x41)
    try bar.write32(12, 0)  // entry unmasked, but MSI-X disabled
    #expect(dev.fireMSIX(0) == .pending)
    try enableMSIX(cfg, functionMask: true)
    #expect(try bar.read32(12) == 0, "function mask must not alter entry mask bits")
    #expect(sink.messages.isEmpty)
}

@Test("rule 6: an event while masked sets the PBA bit and sends nothing")
func eventWhileMaskedSetsPending() throws {
    let (dev, sink, bar, cfg) = try makeMock()
    try enableMSIX(cfg)
    try program(bar, entry: 70, data: 0x42)
    #expect(dev.fireMSIX(70) == .pending)
    #expect(try bar.read64(0x8000 + 8) == 1 << 6)
    #expect(try bar.read32(0x8000 + 8) == 1 << 6)
    #expect(sink.messages.isEmpty)
}

@Test("rule 7: every masked-to-unmasked transition sends a pending message exactly once")
func unmaskTransitionsSendOnce() throws {
    let (dev, sink, bar, cfg) = try makeMock()
    // Entry mask 1 -> 0.
    try enableMSIX(cfg)
    try program(bar, entry: 1, data: 0x51)
    _ = dev.fireMSIX(1)
    try bar.write32(16 + 12, 0)
    #expect(sink.messages.map(\.data) == [0x51])
    #expect(!dev.msixPending(1))
    try bar.write32(16 + 12, 1)
    try bar.write32(16 + 12, 0)
    #expect(sink.messages.count == 1, "no second send without a new event")
    // Function mask 1 -> 0.
    try cfg.write16(msixCap + 2, try cfg.read16(msixCap + 2) | PCIReg.MSIX.functionMask)
    _ = dev.fireMSIX(1)
    #expect(sink.messages.count == 1)
    try cfg.write16(msixCap + 2, try cfg.read16(msixCap + 2) & ~PCIReg.MSIX.functionMask)
    #expect(sink.messages.map(\.data) == [0x51, 0x51])
    // Enable 0 -> 1.
    try cfg.write16(msixCap + 2, 2047)
    _ = dev.fireMSIX(1)
    try enableMSIX(cfg)
    #expect(sink.messages.count == 3)
    #expect(dev.takeReleased().count == 3)
    // Unmasked: sent at once.
    guard case .sent(let m, .delivered(let virq, _, _)) = dev.fireMSIX(1) else {
        Issue.record("expected a send"); return
    }
    #expect(m.address == 0xFEE0_0000 && virq == 100 + 0x51)
}

@Test("rule 8: the PBA is read-only; writes are ignored and recorded")
func pbaReadOnly() throws {
    let (dev, _, bar, cfg) = try makeMock()
    try enableMSIX(cfg)
    _ = dev.fireMSIX(3)
    try bar.write64(0x8000, 0)
    #expect(try bar.read64(0x8000) == 1 << 3)
    #expect(dev.violations.contains { $0.rule == 8 })
}

@Test("rule 9: only aligned DWORD/QWORD accesses; others throw and are recorded")
func alignedAccessOnly() throws {
    let (dev, _, bar, _) = try makeMock()
    #expect(throws: DeviceAccessError.unaligned("mock 0000:00:03.0 BAR0", offset: 2, width: 4)) { try bar.read32(2) }
    #expect(throws: DeviceAccessError.self) { try bar.write64(4, 0) }
    #expect(throws: DeviceAccessError.self) { try bar.read32(0x10000) }
    #expect(dev.violations.filter { $0.rule == 9 }.count == 2)
}

@Test("rule 10: rewriting address/data of an unmasked entry is recorded")
func rewriteUnmaskedEntryRecorded() throws {
    let (dev, _, bar, cfg) = try makeMock()
    try enableMSIX(cfg)
    try program(bar, entry: 2, data: 1)
    #expect(dev.violations.isEmpty, "writing a masked entry is fine")
    try bar.write32(2 * 16 + 12, 0)
    try bar.write32(2 * 16 + 8, 2)
    #expect(dev.violations.map(\.rule) == [10])
    #expect(try bar.read32(2 * 16 + 8) == 2, "applied anyway, as hardware would")
}

@Test("rule 11: MSI and MSI-X are exclusive")
func msiAndMSIXExclusive() throws {
    let (dev, _, _, cfg) = try makeMock()
    try cfg.write16(msiCap + 2, try cfg.read16(msiCap + 2) | PCIReg.MSI.enable)
    try enableMSIX(cfg)
    #expect(dev.violations.contains { $0.rule == 11 })
    guard case .dropped(let why) = dev.fireMSI(0) else { Issue.record("MSI fired while MSI-X enabled"); return }
    #expect(why == .msiBlockedByMSIX && why.description.contains("MSI-X is enabled"))
}

@Test("rule 12: table and PBA must fit their BARs and not overlap")
func layoutValidation() throws {
    func config(table: UInt32, pba: UInt32, size: UInt16 = 63) -> [UInt8] {
        var c = MockPCIDevice.builtInConfig()
        c[0xA2] = UInt8(size & 0xFF); c[0xA3] = UInt8(size >> 8)
        for (o, v) in [(0xA4, table), (0xA8, pba)] {
            for k in 0..<4 { c[o + k] = UInt8(truncatingIfNeeded: v >> UInt32(8 * k)) }
        }
        return c
    }
    let bars = [MockBARLayout(index: 0, size: 0x1000, is64Bit: true), MockBARLayout(index: 2, size: 0x1000)]
    let a = PCIAddress.zero
    #expect(throws: MockDeviceError.self) { try MockPCIDevice(address: a, config: config(table: 0xE00, pba: 0x800), bars: bars) }
    #expect(throws: MockDeviceError.self) { try MockPCIDevice(address: a, config: config(table: 0, pba: 0x200), bars: bars) }
    #expect(throws: MockDeviceError.self) { try MockPCIDevice(address: a, config: config(table: 7, pba: 0x800), bars: bars) }
    #expect(throws: MockDeviceError.invalidMSIXLayout(.upperHalfOf64BitBAR(.table, bir: 1, lower: 0))) {
        try MockPCIDevice(address: a, config: config(table: 1, pba: 0x800), bars: bars)
    }
    _ = try MockPCIDevice(address: a, config: config(table: 0, pba: 0x400 | 2), bars: bars)
}

@Test("rule 13: the built-in profile keeps table and PBA in separate 4 KiB pages")
func builtInProfileSeparatesTableAndPBAPages() throws {
    let cfg = try MockPCIDevice.builtIn().config
    let x = try MSIXCapability(config: cfg, at: msixCap)
    #expect(x.tableSize == 2048 && x.tableBIR == 0 && x.pbaBIR == 0)
    #expect(Int(x.tableOffset) + x.tableLength <= Int(x.pbaOffset) & ~0xFFF)
}

@Test("MSI: multiple-message data bits carry the vector; MME clamps to MMC")
func msiMultipleMessage() throws {
    let (dev, sink, _, cfg) = try makeMock()
    try cfg.write32(msiCap + 4, 0xFEE0_0000)
    try cfg.write32(msiCap + 8, 0)
    try cfg.write16(msiCap + 12, 0x40)
    try cfg.write16(msiCap + 2, try cfg.read16(msiCap + 2) | 7 << 4 | PCIReg.MSI.enable)
    #expect(try cfg.read16(msiCap + 2) & PCIReg.MSI.qsize == 5 << 4, "MME 7 clamps to MMC 5")
    try cfg.write16(msiCap + 2, (try cfg.read16(msiCap + 2) & ~PCIReg.MSI.qsize) | 2 << 4)  // 4 vectors
    _ = dev.fireMSI(3)
    #expect(sink.messages.map(\.data) == [0x43])
    guard case .dropped = dev.fireMSI(4) else { Issue.record("vector 4 of 4 accepted"); return }
}

@Test("MSI: a masked vector goes pending and is sent once on unmask")
func msiMaskPendingUnmask() throws {
    let (dev, sink, _, cfg) = try makeMock()
    try cfg.write32(msiCap + 4, 0xFEE0_0000)
    try cfg.write16(msiCap + 12, 0x30)
    try cfg.write32(msiCap + 0x10, 0xFFFF_FFFF)
    try cfg.write16(msiCap + 2, try cfg.read16(msiCap + 2) | PCIReg.MSI.enable)
    #expect(dev.fireMSI(0) == .pending)
    #expect(try cfg.read32(msiCap + 0x14) == 1)
    try cfg.write32(msiCap + 0x14, 0)
    #expect(try cfg.read32(msiCap + 0x14) == 1, "pending is read-only")
    try cfg.write32(msiCap + 0x10, 0)
    #expect(sink.messages.map(\.data) == [0x30])
    #expect(try cfg.read32(msiCap + 0x14) == 0)
}

@Test("IMS slots: mask, pending, unmask sends once; PASID bits are kept")
func imsSlotSemantics() throws {
    let (dev, sink, _, _) = try makeMock()
    let ims = try #require(dev.bar(2))
    try ims.write32(4000 * 16, 0xFEE0_1000)
    try ims.write32(4000 * 16 + 8, 0x61)
    #expect(dev.fireIMS(4000) == .pending)
    #expect(dev.imsPending(4000))
    try ims.write32(4000 * 16 + 12, 5 << 12 | 1 << 3)
    #expect(sink.messages.map(\.source) == [.ims(4000)])
    #expect(!dev.imsPending(4000))
    #expect(try ims.read32(4000 * 16 + 12) == 5 << 12 | 1 << 3)
    guard case .dropped = dev.fireIMS(4096) else { Issue.record("slot past the array accepted"); return }
}

@Test("counters count every config and MMIO access")
func countersCountAccesses() throws {
    let (dev, _, bar, cfg) = try makeMock()
    let before = dev.counters
    _ = try cfg.read16(msixCap + 2)
    try cfg.write16(msixCap + 2, 0)
    _ = try bar.read64(0)
    try bar.write32(0, 0)
    try bar.write32(4, 0)
    let d = dev.counters - before
    #expect(d.configReads == 1 && d.configWrites == 1 && d.mmioReads == 1 && d.mmioWrites == 2)
}

@Test("fault: a gone device reads all-ones, drops writes and cannot signal")
func deviceGone() throws {
    let (dev, _, bar, cfg) = try makeMock()
    dev.setGone(true)
    #expect(try cfg.read16(PCIReg.vendorID) == 0xFFFF)
    #expect(try bar.read32(12) == 0xFFFF_FFFF)
    try bar.write32(12, 0)
    guard case .dropped(.deviceGone) = dev.fireMSIX(0) else { Issue.record("gone device signalled"); return }
    dev.setGone(false)
    #expect(try bar.read32(12) == 1, "the write while gone was dropped")
}

@Test("fault: a stuck pending bit never clears but still sends on unmask")
func stuckPendingBit() throws {
    let (dev, sink, bar, cfg) = try makeMock()
    try enableMSIX(cfg)
    dev.setStuckPending(msix: 9)
    #expect(try bar.read32(0x8000) == 1 << 9)
    _ = dev.fireMSIX(9)
    try bar.write32(9 * 16 + 12, 0)
    #expect(sink.messages.count == 1)
    #expect(dev.msixPending(9))
}

@Test("BAR registers size like hardware: all-ones reads back the size mask")
func barSizing() throws {
    let (_, _, _, cfg) = try makeMock()
    try cfg.write32(PCIReg.bar0, 0xFFFF_FFFF)
    try cfg.write32(PCIReg.bar0 + 4, 0xFFFF_FFFF)
    #expect(try cfg.read32(PCIReg.bar0) == 0xFFFF_0004)
    #expect(try cfg.read32(PCIReg.bar0 + 4) == 0xFFFF_FFFF)
    #expect(try cfg.read32(PCIReg.bar0 + 16) == 0, "BAR4 is not implemented")
}

@Test("a mock from config bytes sizes BARs to hold the MSI-X structures and starts reset")
func mockFromConfigBytes() throws {
    var c = MockPCIDevice.builtInConfig()
    c[0xA3] |= 0xC0  // dumped with Enable|FunctionMask set
    let dev = try MockPCIDevice.fromConfig(c, address: .zero)
    #expect(dev.barLayouts.map(\.size) == [0x10000, 4096])
    #expect(try dev.config.read16(0xA2) & 0xC000 == 0)
    let kept = try MockPCIDevice.fromConfig(c, address: .zero, reset: false)
    #expect(try kept.config.read16(0xA2) & 0xC000 == 0xC000)
}

@Test("mock scripts: commands parse, comments and blanks are skipped, bad lines become errors in place")
func mockScriptParsing() throws {
    let lines = parseMockScript("""
        # a comment
        enable msix 1 8 affinity
        alloc msix any   # trailing comment

        alloc ims cookie=0x2a
        ims create 0 software
        fire msix 3
        function-mask on
        frobnicate 1
        request msi x
        """)
    #expect(lines.map(\.number) == [2, 3, 5, 6, 7, 8, 9, 10])
    #expect(try lines[0].command.get() == .enable(.msix, min: 1, max: 8, affinity: true))
    #expect(try lines[1].command.get() == .allocMSIX(index: nil))
    #expect(try lines[2].command.get() == .allocIMS(cookie: 0x2a))
    #expect(try lines[3].command.get() == .imsCreate(hwsize: 0, storage: .software))
    #expect(try lines[4].command.get() == .fire(.msix, index: 3))
    #expect(try lines[5].command.get() == .functionMask(true))
    #expect(throws: MockScriptError(line: 9, message: "unknown command 'frobnicate'")) { try lines[6].command.get() }
    #expect(throws: MockScriptError.self) { try lines[7].command.get() }
}
