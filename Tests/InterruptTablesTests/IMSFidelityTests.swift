// The IMS chips behave as the kernel's IMS contract says: device slots are masked before they
// are rewritten, instance cookies are kept as given (the PASID derived from them, a PASID too
// wide for the slot refused), software-managed IMS finds its storage through the cookie and a
// released or freed software slot stays gone.
import Testing
import MSIShimCore
import MSIModel
import PCIAccess
import InterruptTables
@testable import MockDevice
@testable import MockHarness

/// Runs one script line and returns the error it fails with (nil when it succeeds).
func failure(_ session: MockSession, _ line: String) -> MockCommandError? {
    do {
        _ = try session.run(try parseMockCommand(line, line: 1).get())
        return nil
    } catch let e as MockCommandError {
        return e
    } catch {
        return MockCommandError(error)
    }
}

@Test("device IMS: request/release/free cycles never rewrite a live slot (release masks first, then zeroes)")
func deviceIMSReleaseMasksFirst() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, """
        ims create 4096 device
        alloc ims cookie=2a
        request ims 0
        fire ims 0
        release ims 0
        request ims 0
        release ims 0
        free ims 0
        alloc ims
        request ims 0
        release ims 0
        free ims 0
        """)
    #expect(s.device.violations.isEmpty, "\(s.device.violations)")
    let slots = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 4096)
    let slot = try slots.readSlot(0)
    #expect(slot.masked && slot.address == 0 && slot.data == 0, "released and freed: masked, zero message")
}

@Test("device IMS: free_irq masks the slot, then deactivation writes the zero message into the masked slot")
func deviceIMSReleaseOrder() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, """
        ims create 16 device
        alloc ims cookie=5
        request ims 0
        counters
        """)
    try run(s, "release ims 0")
    let d = s.device.counters - s.lastCounters
    // shutdown = control (mask, PASID cleared) + read back; deactivate = address lo, hi, data.
    #expect(d.mmioWrites == 4 && d.mmioReads == 1)
    #expect(s.device.violations.isEmpty)
    let slots = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 16)
    #expect(try slots.readSlot(0) == IMSSlot(), "a released slot is back in its reset state")
}

@Test("IMS cookies are kept exactly as given; the slot's PASID is derived from them")
func imsCookieKept() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, """
        ims create 64 device
        alloc ims cookie=2a
        alloc ims cookie=fffff
        alloc ims
        request ims 0
        """)
    #expect(s.model.descriptor(domain: .secondary, index: 0)?.instanceCookie == 0x2a)
    #expect(s.model.descriptor(domain: .secondary, index: 1)?.instanceCookie == 0xFFFFF)
    #expect(s.model.descriptor(domain: .secondary, index: 2)?.instanceCookie == 0)
    let slots = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 64)
    #expect(try slots.readSlot(0).pasid == 0x2a && !(try slots.readSlot(0).masked))
    #expect(try slots.readSlot(1) == IMSSlot(), "allocated, not requested: masked, the PASID reaches the slot at unmask")
    #expect(try slots.readSlot(2).pasid == nil, "cookie 0: no PASID tag")
    let shown = try s.run(.show)
    guard case .array(let descs)? = shown["imsDescriptors"] else { Issue.record("no imsDescriptors"); return }
    #expect(descs.map { $0["cookie"] } == [.string("0x2a"), .string("0xfffff"), .string("0x0")])
}

@Test("a cookie whose PASID does not fit the slot's 20 bits is refused with EINVAL, leaving nothing behind")
func imsCookieTooWide() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "ims create 64 device")
    let irqsBefore = s.platform.allocatedIRQs
    for cookie in ["100000", "ffffffffffffffff", "1000000000002a"] {
        let e = failure(s, "alloc ims cookie=\(cookie)")
        #expect(e?.errno == .EINVAL, "cookie \(cookie): \(String(describing: e))")
        #expect(e?.message.contains("20-bit") == true)
    }
    #expect(s.model.descriptors(domain: .secondary).count == 0)
    #expect(s.platform.allocatedIRQs == irqsBefore)
    let slots = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 64)
    #expect(try slots.readSlot(0) == IMSSlot(), "slot 0 untouched: reset state")
    #expect(try s.run(.allocIMS(cookie: 0x2a))["index"] == .int(0))
}

@Test("software IMS finds its storage through the cookie, 64-bit cookies included")
func softwareIMSStorageThroughCookie() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        ims create 0 software
        alloc ims cookie=123456789abcdef0
        alloc ims
        request ims 0
        request ims 1
        fire ims 0
        """)
    let store = try #require(s.softwareStore)
    let d0 = try #require(s.model.descriptor(domain: .secondary, index: 0))
    let d1 = try #require(s.model.descriptor(domain: .secondary, index: 1))
    #expect(d0.instanceCookie == 0x1234_5678_9ABC_DEF0)
    #expect(d1.instanceCookie != 0 && d1.instanceCookie != d0.instanceCookie)
    #expect(store.boundIndex(d0.instanceCookie) == 0 && store.boundIndex(d1.instanceCookie) == 1)
    #expect(store.slot(d0.instanceCookie)?.address == UInt64(d0.message.addressLo) && store.slot(d0.instanceCookie)?.data == d0.message.data)
    #expect(delivered(r[5]) == d0.virq)
    // A cookie naming storage already serving another index is refused.
    #expect(failure(s, "alloc ims cookie=123456789abcdef0")?.errno == .EBUSY)
    #expect(failure(s, "alloc ims cookie=0")?.errno == .EINVAL, "a NULL cookie names no storage")
    #expect(s.model.descriptors(domain: .secondary).count == 2 && store.count == 2)
}

@Test("a released or freed software IMS slot is gone: a later fire is dropped with a reason")
func softwareIMSReleasedSlotGone() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        ims create 0 software
        alloc ims
        alloc ims
        request ims 1
        release ims 1
        fire ims 1
        free ims 1
        fire ims 1
        fire ims 0
        """)
    #expect(r[5]["dropped"] != nil, "released: \(r[5])")
    #expect(r[5]["pending"] == nil)
    #expect(r[7]["dropped"] != nil, "freed: \(r[7])")
    #expect(r[8]["dropped"] != nil, "never requested: \(r[8])")
    if case .string(let why)? = r[5]["dropped"] { #expect(why.contains("holds no message")) }
    if case .string(let why)? = r[7]["dropped"] { #expect(why.contains("no IMS interrupt at index 1")) }
    #expect(s.softwareStore?.count == 1, "the freed interrupt's storage was freed with it")
    #expect(s.handlerCounts.isEmpty)
}

@Test("ims create 0 on a slot array says that hwsize 0 means the whole index space")
func imsHwsizeZeroMessage() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let e = failure(s, "ims create 0 device")
    #expect(e?.errno == .EINVAL)
    #expect(e?.message.contains("hwsize 0 means the whole index space (65536), more than the chip's 4096 slots") == true, "\(String(describing: e))")
}
