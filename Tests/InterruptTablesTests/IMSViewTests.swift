// `show` lists the IMS table (device slots or software storage) with cookies, PASIDs and
// handler counts, and neither `show` nor the inspection views count as device accesses.
import Testing
import TestSupport
import MSIShimCore
import MSIModel
import PCIAccess
import InterruptTables
@testable import MockDevice
import MockHarness

@Test("show gains the ims object: slots with mask, pending, PASID, cookie, virq and handler count")
func showIMSObject() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        ims create 128 device
        alloc ims cookie=2a
        alloc ims cookie=3
        request ims 1
        fire ims 1
        fire ims 1
        mask ims 1
        fire ims 1
        show
        """)
    let ims = try #require(r[8]["ims"])
    #expect(ims["domain"] == .string("IMS-slots-0000:00:03.0") && ims["storage"] == .string("device") && ims["hwsize"] == .int(128))
    guard case .array(let slots)? = ims["slots"] else { Issue.record("no slots"); return }
    #expect(slots.count == 2, "reset slots are not listed by show")
    #expect(slots[0]["index"] == .int(0) && slots[0]["cookie"] == .string("0x2a"))
    #expect(slots[0]["pasid"] == .null, "allocated, never unmasked: the PASID is not in the slot yet")
    #expect(slots[0]["masked"] == .bool(true) && slots[0]["count"] == .int(0))
    let virq = try #require(s.model.descriptor(domain: .secondary, index: 1)?.virq)
    #expect(slots[1]["virq"] == .int(virq) && slots[1]["count"] == .int(2) && slots[1]["pending"] == .bool(true))
    #expect(slots[1]["masked"] == .bool(true) && slots[1]["pasid"] == .int(3))
    guard case .int(let lo)? = slots[1]["addressLo"] else { Issue.record("no address"); return }
    #expect(UInt32(lo) == s.model.descriptor(domain: .secondary, index: 1)?.message.addressLo)
}

@Test("show lists MSI-X entries with their virq and handler count, and ims is null without IMS")
func showMSIXCounts() throws {
    // A device without an IMS slot array (QEMU's e1000e, from a fixture dump).
    let path = TestEnvironment.dumpsDirectory.appendingPathComponent("qemu-q35-nodrivers.dump").path
    let e1000e = try #require(try LSPCIDump.read(path: path, collectBytes: true).first { $0.address.shortDescription == "00:02.0" })
    let s = try MockSession(device: try MockPCIDevice.fromConfig(e1000e.bytes, address: e1000e.address))
    let r = try run(s, "enable msix 1 2\nrequest msix 1\nfire msix 1\nshow\n")
    #expect(r[3]["ims"] == .null)
    guard case .array(let entries)? = r[3]["msix"]?["entries"] else { Issue.record("no entries"); return }
    #expect(entries[1]["count"] == .int(1) && entries[1]["virq"] == r[1]["virq"])
    #expect(entries[0]["count"] == .int(0))
}

@Test("counters exclude the accesses show and the inspection views make")
func countersExcludeShow() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "enable msix 1 4\nims create 4096 software\nalloc ims\nrequest msix 0\ncounters\n")
    let before = s.device.counters
    _ = try s.run(.show)
    _ = try s.imsView()
    _ = try s.device.inspectionConfig.capabilityList()
    _ = try #require(s.device.inspectionBAR(0)).read32(0)
    #expect(s.device.counters == before)
    let c = try s.run(.counters)
    #expect(c["configReads"] == .int(0) && c["mmioReads"] == .int(0) && c["mmioWrites"] == .int(0))
    #expect(throws: DeviceAccessError.self) { try #require(s.device.inspectionBAR(0)).write32(0, 1) }
    _ = try s.run(.request(.msix, index: 1))
    let after = try s.run(.counters)
    #expect(after["mmioWrites"] == .int(4), "request_irq: lo, hi, data, vector control")
}
