// `queue …` script commands: a thin layer over WorkQueueDevice with the results and errors
// the mock's users see; the store is checked after every failing line.
import Testing
import MSIShimCore
import MSIModel
import PCIAccess
import InterruptTables
@testable import MockDevice
import MockHarness

@Test("queue commands parse; bad consumers, PASIDs and queue numbers are errors naming the line")
func queueScriptParsing() throws {
    let lines = parseMockScript("""
        queue create kernel
        queue create vfio pasid=2a
        queue create cdev pasid=0x1F
        queue free vfio 3
        queue mask cdev 0
        queue unmask kernel 1
        queue fire 2
        queue list
        queue create gpu
        queue create vfio pasid=
        queue create vfio pasid=xyz
        queue create vfio 2a
        queue create vfio pasid=100000000
        queue free vfio -1
        queue free nobody 1
        queue fire
        queue list 3
        queue destroy 1
        queue
        """)
    let ok: [MockCommand] = [
        .queue(.create(.kernel, pasid: nil)), .queue(.create(.vfio, pasid: 0x2a)), .queue(.create(.cdev, pasid: 0x1F)),
        .queue(.free(.vfio, queue: 3)), .queue(.mask(.cdev, queue: 0)), .queue(.unmask(.kernel, queue: 1)),
        .queue(.fire(queue: 2)), .queue(.list),
    ]
    #expect(try lines.prefix(8).map { try $0.command.get() } == ok)
    for line in lines.dropFirst(8) {
        guard case .failure(let e) = line.command else { Issue.record("line \(line.number) '\(line.text)' parsed"); continue }
        #expect(e.line == line.number && e.errno == .EINVAL && e.description.hasPrefix("line \(line.number): "))
    }
    if case .failure(let e) = lines[8].command { #expect(e.message.contains("unknown consumer 'gpu'")) }
}

@Test("queue create reports {queue, consumer, pasid, interrupt, index, virq}; fire, mask, unmask, free, list")
func queueScriptResults() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        ims create 1 device
        queue create vfio pasid=2a
        queue create kernel
        queue fire 0
        queue mask vfio 0
        queue fire 0
        queue unmask vfio 0
        queue fire 1
        queue list
        queue free vfio 0
        show
        """)
    #expect(r[1] == .object([("queue", .int(0)), ("consumer", .string("vfio")), ("pasid", .int(0x2a)), ("interrupt", .string("ims")),
                             ("index", .int(0)), ("virq", r[1]["virq"] ?? .null)]))
    #expect(r[2]["interrupt"] == .string("msix") && r[2]["index"] == .int(1) && r[2]["pasid"] == .null)
    #expect(r[3]["queue"] == .int(0) && delivered(r[3]) != nil)
    #expect(isPending(r[5]))
    guard case .array(let sent)? = r[6]["sent"] else { Issue.record("unmask released nothing"); return }
    #expect(sent.count == 1)
    #expect(r[7]["source"] == .string("msix 1") && delivered(r[7]) == (r[2]["virq"].flatMap { if case .int(let v) = $0 { v } else { nil } }))
    guard case .array(let queues)? = r[8]["queues"] else { Issue.record("no queue list"); return }
    #expect(queues.map { $0["completions"] } == [.int(2), .int(1)])
    #expect(r[8]["controlBlock"]?["virq"] == .int(try s.model.irqVector(0)))
    #expect(r[9]["freed"] == .int(0))
    #expect(r[10]["imsDescriptors"] == .array([]))
    guard case .array(let slots)? = r[10]["ims"]?["slots"] else { Issue.record("no ims slots"); return }
    #expect(slots.isEmpty, "the freed queue's slot is back in its reset state")
    #expect(s.handlerCounts.values.reduce(0, +) == 3, "queue interrupts are counted per virq for show/inspect")
    #expect(s.device.violations.isEmpty)
}

@Test("bad queue input: one error per line with its errno, the script goes on, the store is unchanged after each failure")
func queueScriptBadInput() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "ims create 64 device\nqueue create vfio pasid=7\nqueue create kernel")
    struct Store: Equatable {
        var ims: [MSIDescriptor]
        var msix: [MSIDescriptor]
        var irqs: [Int]
        var slots: JSONValue?
    }
    func store() throws -> Store {
        Store(ims: s.model.descriptors(domain: .secondary), msix: s.model.descriptors(domain: .default),
              irqs: s.platform.allocatedIRQs, slots: try s.run(.show)["ims"])
    }
    let cases: [(String, KernelErrno)] = [
        ("queue create vfio", .EINVAL),                 // PASID missing
        ("queue create cdev", .EINVAL),
        ("queue create vfio pasid=0", .EINVAL),         // IOMMU_NO_PASID
        ("queue create cdev pasid=100000", .EINVAL),    // wider than 20 bits
        ("queue free vfio 9", .ENOENT),
        ("queue mask vfio 2", .ENOENT),
        ("queue fire 9", .ENOENT),
        ("queue free cdev 0", .EPERM),                  // vfio's queue
        ("queue mask kernel 0", .EPERM),
        ("queue unmask vfio 1", .EPERM),                // the kernel's queue
    ]
    for (line, errno) in cases {
        let before = try store()
        let e = failure(s, line)
        #expect(e?.errno == errno, "\(line): \(String(describing: e))")
        #expect(try store() == before, "\(line) changed the store")
    }
    let parsed = parseMockScript("queue create gpu\nqueue create vfio pasid=zz\nqueue free vfio x\n")
    for line in parsed {
        guard case .failure(let e) = line.command else { Issue.record("\(line.text) parsed"); continue }
        #expect(e.errno == .EINVAL)
    }
    // The script went on: the queues are intact and still work.
    #expect(delivered(try s.run(.queue(.fire(queue: 0)))) != nil)
    #expect(try s.run(.queue(.free(.vfio, queue: 0)))["freed"] == .int(0))
}
