import Testing
import TestSupport
import MSIShimCore
import MSIModel
import PCIAccess
import InterruptTables
@testable import MockDevice
import MockHarness

/// Runs script lines in a session, failing the test on any error.
@discardableResult
func run(_ session: MockSession, _ lines: String) throws -> [JSONValue] {
    try parseMockScript(lines).map { line in try session.run(try line.command.get()) }
}

func delivered(_ v: JSONValue) -> Int? {
    if case .int(let virq)? = v["delivered"]?["virq"] { return virq }
    return nil
}

func isPending(_ v: JSONValue) -> Bool { v["pending"] == .bool(true) }

@Test("MSI-X end to end: allocate, request, fire, mask -> pending -> unmask -> delivered once")
func msixEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        enable msix 2 8
        request msix 3
        fire msix 3
        mask msix 3
        fire msix 3
        fire msix 3
        unmask msix 3
        fire msix 3
        """)
    #expect(r[0]["count"] == .int(8) && r[0]["kind"] == .string("msix"))
    guard case .int(let virq)? = r[1]["virq"] else { Issue.record("no virq"); return }
    #expect(delivered(r[2]) == virq)
    #expect(isPending(r[4]) && isPending(r[5]))
    guard case .array(let sent)? = r[6]["sent"] else { Issue.record("unmask sent nothing"); return }
    #expect(sent.count == 1 && delivered(sent[0]) == virq, "two events while masked deliver once")
    #expect(delivered(r[7]) == virq)
    #expect(s.handlerCounts[virq] == 3)
    #expect(s.device.violations.isEmpty)
}

@Test("MSI-X: an entry allocated but not requested stays masked at the shutdown vector (reservation mode)")
func msixReservationModeBeforeRequest() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "enable msix 1 2")
    let table = try MSIXTable(config: s.device.config, capOffset: 0xA0) { i in try #require(s.device.bar(i)) }
    let e = try table.readEntry(1)
    #expect(e.masked && e.data == 0xEF && e.addressLo == 0xFEE0_0000)
    #expect(isPending(try s.run(.fire(.msix, index: 1))))
}

@Test("MSI (remapping parent, multi-MSI): vectors share one message, data low bits select the vector")
func msiMultiMessageEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(remap: true))
    let r = try run(s, """
        enable msi 4 4
        request msi 2
        fire msi 2
        mask msi 2
        fire msi 2
        unmask msi 2
        """)
    #expect(r[0]["count"] == .int(4) && r[0]["kind"] == .string("msi"))
    guard case .int(let virq)? = r[1]["virq"], case .array(let virqs)? = r[0]["virqs"] else { Issue.record("no virq"); return }
    #expect(virqs[2] == .int(virq))
    #expect(delivered(r[2]) == virq)
    #expect(isPending(r[4]))
    guard case .array(let sent)? = r[5]["sent"] else { Issue.record("unmask sent nothing"); return }
    #expect(sent.count == 1 && delivered(sent[0]) == virq)
    #expect(s.handlerCounts[virq] == 2)
}

@Test("MSI on the x86 vector domain gives one vector (no MULTI_PCI_MSI)")
func msiWithoutRemappingGivesOne() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    #expect(try s.run(.enable(.msi, min: 1, max: 4, affinity: false))["count"] == .int(1))
    #expect(throws: MockCommandError.self) { try s.run(.vector(1)) }
}

@Test("IMS in device memory end to end: PASID cookie in the slot, pending while masked, delivered once")
func imsDeviceEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        ims create 4096 device
        alloc ims cookie=2a
        alloc ims
        request ims 0
        fire ims 0
        mask ims 0
        fire ims 0
        unmask ims 0
        """)
    #expect(r[1]["index"] == .int(0) && r[2]["index"] == .int(1))
    guard case .int(let virq)? = r[3]["virq"] else { Issue.record("no virq"); return }
    let slots = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 4096)
    #expect(try slots.readSlot(0).pasid == 0x2a)
    #expect(try slots.readSlot(1).masked, "allocated but not requested: masked")
    #expect(delivered(r[4]) == virq)
    #expect(isPending(r[6]))
    guard case .array(let sent)? = r[7]["sent"] else { Issue.record("unmask sent nothing"); return }
    #expect(sent.count == 1 && delivered(sent[0]) == virq)
    #expect(s.handlerCounts[virq] == 2)
}

@Test("IMS in a software store end to end, beside MSI-X on the same device")
func imsSoftwareEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        enable msix 1 1
        ims create 0 software
        alloc ims
        alloc ims
        free ims 0
        alloc ims
        request ims 1
        mask ims 1
        fire ims 1
        unmask ims 1
        fire ims 1
        request msix 0
        fire msix 0
        """)
    #expect(r[2]["index"] == .int(0) && r[3]["index"] == .int(1) && r[5]["index"] == .int(0), "case 43: freed index reused")
    guard case .int(let virq)? = r[6]["virq"], case .int(let msixVirq)? = r[11]["virq"] else { Issue.record("no virq"); return }
    #expect(isPending(r[8]))
    guard case .array(let sent)? = r[9]["sent"] else { Issue.record("unmask sent nothing"); return }
    #expect(sent.count == 1 && delivered(sent[0]) == virq)
    #expect(delivered(r[10]) == virq)
    #expect(delivered(r[12]) == msixVirq)
}

@Test("MSI-X enable touches the hardware no more than the kernel's msix_capability_init")
func msixEnableAccessCountMatchesKernel() throws {
    for n in [1, 8, 64] {
        let s = try MockSession(device: try MockPCIDevice.builtIn())
        let before = s.device.counters
        _ = try s.run(.enable(.msix, min: n, max: n, affinity: false))
        let d = s.device.counters - before
        // Kernel (Docs/kernel-msi-model.md §3): per entry, read vector control into the cache, write
        // lo/hi/data (early activation) and read data back (pci_write_msg_msix's flush); then
        // msix_mask_all writes vector control of the whole table (2048 entries here).
        #expect(d.mmioWrites == 3 * n + 2048, "n=\(n): \(d.mmioWrites) writes")
        #expect(d.mmioReads == 2 * n, "n=\(n): \(d.mmioReads) reads")
    }
}

@Test("rewriting the message of an unmasked entry uses the kernel's mask-around sequence: no violation")
func rewriteUnmaskedEntryIsSafe() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "enable msix 1 1\nrequest msix 0")
    let virq = try s.model.irqVector(0)
    try s.model.writeMSIMessage(virq: virq, MSIMessage(addressLo: 0xFEE0_1000, data: 0x55))
    #expect(s.device.violations.isEmpty)
    let table = try MSIXTable(config: s.device.config, capOffset: 0xA0) { i in try #require(s.device.bar(i)) }
    let e = try table.readEntry(0)
    #expect(e.data == 0x55 && !e.masked)
}

@Test("a mock built from a real dump (QEMU e1000e) runs the same script")
func mockFromFixtureDump() throws {
    let path = TestEnvironment.dumpsDirectory.appendingPathComponent("qemu-q35-nodrivers.dump").path
    let records = try LSPCIDump.read(path: path, collectBytes: true)
    let e1000e = try #require(records.first { $0.address.shortDescription == "00:02.0" })
    let dev = try MockPCIDevice.fromConfig(e1000e.bytes, address: e1000e.address)
    let s = try MockSession(device: dev)
    let r = try run(s, "enable msix 5 5\nrequest msix 4\nfire msix 4")
    #expect(r[0]["count"] == .int(5))
    #expect(delivered(r[2]) != nil)
    #expect(throws: MockCommandError.self) { try s.run(.enable(.msix, min: 6, max: 6, affinity: false)) }
}

