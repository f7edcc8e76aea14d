// Work queues shared by consumers (WorkQueues) on the mock device: MSI-X vector 0 for the
// control block, completion interrupts from the IMS pool with the PASID as the cookie, MSI-X
// fallback, ownership checks, the kernel's freeing order, and no leak on any failure path.
import Testing
import TestSupport
import MSIShimCore
import MSIModel
import PCIAccess
import InterruptTables
import WorkQueues
@testable import MockDevice
@testable import MockHarness

/// Handler invocations per queue, recorded by the handlers given at creation.
final class QueueHits: Sendable {
    let hits = PackageMutex<[Int: Int]>([:])
    func handler(_ q: Int) -> IRQHandler { { [self] _ in hits.withLock { $0[q, default: 0] += 1 } } }
    var snapshot: [Int: Int] { hits.withLock { $0 } }
}

/// A mock whose IMS domain has `slots` slots in device memory, and its work-queue device.
func queueRig(imsSlots: Int? = 4096, cpus: Int = 2) throws -> (MockSession, WorkQueueDevice) {
    let s = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(cpus: cpus))
    if let imsSlots { try run(s, "ims create \(imsSlots) device") }
    let wq = try WorkQueueDevice(device: s.model, signals: MockQueueSignals(device: s.device))
    return (s, wq)
}

/// Everything that must come back after a failed creation.
struct Leftovers: Equatable {
    var imsDescriptors: [Int]
    var msixDescriptors: [Int]
    var irqs: [Int]
    var queues: Int
    var slots: [IMSSlot]

    init(_ s: MockSession, _ wq: WorkQueueDevice, slots n: Int = 8) throws {
        imsDescriptors = s.model.descriptors(domain: .secondary).map(\.index)
        msixDescriptors = s.model.descriptors(domain: .default).map(\.index)
        irqs = s.platform.allocatedIRQs
        queues = wq.queueCount
        let table = try IMSDeviceTable(region: try #require(s.device.inspectionBAR(2)), offset: 0, slots: 4096)
        slots = try (0..<n).map { try table.readSlot($0) }
    }
}

@Test("probe: MSI-X enabled with vector 0 requested for the control block; its interrupt reaches the control handler only")
func workQueueControlBlock() throws {
    let (s, wq) = try queueRig()
    #expect(s.model.isMSIXEnabled)
    let control = wq.controlBlock
    #expect(control.virq == (try s.model.irqVector(0)))
    let hits = QueueHits()
    try wq.createQueue(for: .kernel, handler: hits.handler(0))
    guard case .sent(_, .delivered(let virq, _, _)) = s.device.fireMSIX(0) else { Issue.record("vector 0 did not deliver"); return }
    #expect(virq == control.virq && wq.controlBlock.handled == 1)
    #expect(hits.snapshot.isEmpty && wq.queue(0)?.completions == 0)
}

@Test("queues for kernel, vfio and cdev draw IMS slots with cookie = PASID; each slot is programmed with that PASID")
func workQueuesFromIMS() throws {
    let (s, wq) = try queueRig()
    let k = try wq.createQueue(for: .kernel)
    let v = try wq.createQueue(for: .vfio, pasid: 0x2a)
    let c = try wq.createQueue(for: .cdev, pasid: 0xFFFFF)
    let k2 = try wq.createQueue(for: .kernel, pasid: 7)
    #expect([k, v, c, k2].map(\.queue) == [0, 1, 2, 3])
    #expect([k, v, c, k2].map(\.interrupt) == [.ims(index: 0), .ims(index: 1), .ims(index: 2), .ims(index: 3)])
    #expect((0..<4).map { s.model.descriptor(domain: .secondary, index: $0)?.instanceCookie } == [0, 0x2a, 0xFFFFF, 7])
    let table = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 4096)
    #expect(try (0..<4).map { try table.readSlot($0).pasid } == [nil, 0x2a, 0xFFFFF, 7])
    #expect(try (0..<4).allSatisfy { !(try table.readSlot($0).masked) }, "requested: unmasked")
    #expect(s.device.violations.isEmpty)
}

@Test("completing work on a queue raises that queue's interrupt, which reaches its handler and no other")
func workQueueCompletionReachesItsHandler() throws {
    let (s, wq) = try queueRig(imsSlots: 2)
    let hits = QueueHits()
    for (q, consumer) in [QueueConsumer.kernel, .vfio, .cdev].enumerated() {
        try wq.createQueue(for: consumer, pasid: consumer == .kernel ? nil : UInt32(q + 1), handler: hits.handler(q))
    }
    #expect(wq.queues.map(\.interrupt.kind) == ["ims", "ims", "msix"], "the third falls back to MSI-X")
    for (q, times) in [(0, 1), (1, 3), (2, 2)] {
        for _ in 0..<times {
            guard case .sent(_, .delivered(let virq, _, _)) = try wq.complete(q) else { Issue.record("queue \(q) not delivered"); return }
            #expect(virq == wq.queue(q)?.virq)
        }
    }
    #expect(hits.snapshot == [0: 1, 1: 3, 2: 2])
    #expect(wq.queues.map(\.completions) == [1, 3, 2])
    #expect(wq.controlBlock.handled == 0)
    #expect(s.handlerCounts.isEmpty, "no hook given: the session's counts are untouched")
}

@Test("a masked queue latches its completion; unmasking delivers it once")
func workQueueMaskLatches() throws {
    let (_, wq) = try queueRig()
    try wq.createQueue(for: .vfio, pasid: 5)
    try wq.maskQueue(0, by: .vfio)
    #expect(wq.queue(0)?.masked == true)
    #expect(try wq.complete(0) == .pending)
    #expect(try wq.complete(0) == .pending)
    try wq.unmaskQueue(0, by: .vfio)
    #expect(wq.queue(0)?.completions == 1, "two latched completions deliver once")
}

@Test("fallback: without an IMS domain, and once IMS is full, queues get dynamically allocated MSI-X vectors")
func workQueueFallback() throws {
    let (s, wq) = try queueRig(imsSlots: nil)
    let a = try wq.createQueue(for: .kernel)
    let b = try wq.createQueue(for: .cdev, pasid: 3)
    #expect(a.interrupt == .msix(index: 1) && b.interrupt == .msix(index: 2), "entry 0 is the control block")
    #expect(s.model.descriptor(index: 2)?.isAssociated == true)
    let (_, full) = try queueRig(imsSlots: 1)
    #expect(try full.createQueue(for: .kernel).interrupt == .ims(index: 0))
    #expect(try full.createQueue(for: .vfio, pasid: 9).interrupt == .msix(index: 1))
    try full.freeQueue(0, by: .kernel)
    #expect(try full.createQueue(for: .vfio, pasid: 9).interrupt == .ims(index: 0), "a freed slot is reused")
}

@Test("ENOSPC only when both IMS and MSI-X are exhausted, leaving nothing behind")
func workQueueBothExhausted() throws {
    // QEMU's e1000e (5 MSI-X entries) with a 2-slot IMS array added in BAR0.
    let path = TestEnvironment.dumpsDirectory.appendingPathComponent("qemu-q35-nodrivers.dump").path
    let e1000e = try #require(try LSPCIDump.read(path: path, collectBytes: true).first { $0.address.shortDescription == "00:02.0" })
    let template = try MockPCIDevice.fromConfig(e1000e.bytes, address: e1000e.address)
    let dev = try MockPCIDevice(address: e1000e.address, config: e1000e.bytes, bars: template.barLayouts,
                                ims: MockIMSLayout(bar: 0, offset: 0x100, slots: 2))
    let s = try MockSession(device: dev)
    try run(s, "ims create 2 device")
    let wq = try WorkQueueDevice(device: s.model, signals: MockQueueSignals(device: dev))
    var kinds: [String] = []
    for q in 0..<6 { kinds.append(try wq.createQueue(for: .cdev, pasid: UInt32(q + 1)).interrupt.kind) }
    #expect(kinds == ["ims", "ims", "msix", "msix", "msix", "msix"])
    let before = (s.model.descriptors(domain: .secondary).map(\.index), s.model.descriptors(domain: .default).map(\.index),
                  s.platform.allocatedIRQs)
    do {
        try wq.createQueue(for: .cdev, pasid: 99)
        Issue.record("a seventh queue was created")
    } catch {
        #expect(error.code == .ENOSPC && error.message.contains("IMS") && error.message.contains("MSI-X"), "\(error)")
    }
    #expect(s.model.descriptors(domain: .secondary).map(\.index) == before.0)
    #expect(s.model.descriptors(domain: .default).map(\.index) == before.1)
    #expect(s.platform.allocatedIRQs == before.2 && wq.queueCount == 6)
    try wq.freeQueue(3, by: .cdev)
    #expect(try wq.createQueue(for: .cdev, pasid: 99).queue == 3, "the lowest free queue number")
}

@Test("a consumer can free, mask or unmask only its own queues (EPERM); unknown queues are ENOENT")
func workQueueOwnership() throws {
    let (_, wq) = try queueRig()
    try wq.createQueue(for: .vfio, pasid: 1)
    try wq.createQueue(for: .cdev, pasid: 2)
    for consumer in [QueueConsumer.kernel, .cdev] {
        #expect(throws: WorkQueueError(.EPERM, "queue 0 belongs to vfio, not \(consumer)")) { try wq.freeQueue(0, by: consumer) }
        #expect(throws: WorkQueueError.self) { try wq.maskQueue(0, by: consumer) }
        #expect(throws: WorkQueueError.self) { try wq.unmaskQueue(0, by: consumer) }
    }
    #expect(wq.queue(0)?.masked == false && wq.queueCount == 2)
    #expect(throws: WorkQueueError(.ENOENT, "queue 5 does not exist")) { try wq.freeQueue(5, by: .vfio) }
    #expect(throws: WorkQueueError(.ENOENT, "queue 5 does not exist")) { try wq.complete(5) }
    #expect(throws: WorkQueueError(.ENOENT, "queue -1 does not exist")) { try wq.maskQueue(-1, by: .vfio) }
}

@Test("bad consumer input: PASID missing for vfio/cdev, PASID 0 or wider than 20 bits: EINVAL, nothing allocated")
func workQueueBadPASID() throws {
    let (s, wq) = try queueRig()
    let before = try Leftovers(s, wq)
    for (consumer, pasid) in [(QueueConsumer.vfio, nil), (.cdev, nil), (.vfio, 0), (.kernel, 0x10_0000), (.cdev, UInt32.max)] as [(QueueConsumer, UInt32?)] {
        #expect(throws: WorkQueueError.self) { try wq.createQueue(for: consumer, pasid: pasid) }
        do { try wq.createQueue(for: consumer, pasid: pasid) } catch { #expect(error.code == .EINVAL) }
    }
    #expect(try Leftovers(s, wq) == before)
}

@Test("a failed create leaves no descriptor, slot or irq: the parent fails for IMS and then for MSI-X")
func workQueueAllocationFailureLeavesNothing() throws {
    let (s, wq) = try queueRig()
    try wq.createQueue(for: .vfio, pasid: 0x11)
    let before = try Leftovers(s, wq)
    s.platform.failIRQAllocations(after: 0, times: 2)
    do {
        try wq.createQueue(for: .cdev, pasid: 0x22)
        Issue.record("created although both allocations failed")
    } catch {
        #expect(error.code == .ENOSPC)
    }
    #expect(try Leftovers(s, wq) == before)
    // The IMS allocation fails alone: the queue falls back to MSI-X.
    s.platform.failIRQAllocations(after: 0, times: 1)
    #expect(try wq.createQueue(for: .cdev, pasid: 0x22).interrupt == .msix(index: 1))
    s.platform.failIRQAllocations(after: nil)
}

@Test("a failed create leaves no descriptor, slot or irq: request_irq finds no CPU vector (ENOSPC)")
func workQueueRequestFailureLeavesNothing() throws {
    let (s, wq) = try queueRig(cpus: 1)
    var created = 0
    var failure: WorkQueueError?
    while failure == nil && created < 400 {
        do {
            try wq.createQueue(for: .cdev, pasid: UInt32(created + 1))
            created += 1
        } catch {
            failure = error
        }
    }
    #expect(failure?.code == .ENOSPC && created > 100, "\(String(describing: failure)) after \(created)")
    #expect(s.model.descriptors(domain: .secondary).count == created)
    #expect(wq.queueCount == created && wq.warnings.isEmpty)
    let table = try IMSDeviceTable(region: try #require(s.device.inspectionBAR(2)), offset: 0, slots: 4096)
    #expect(try table.readSlot(created) == IMSSlot(), "the slot of the failed queue is back in its reset state")
    #expect(s.platform.allocatedIRQs.count == created + 1, "the queues' irqs and the control block's")
}

@Test("freeing a queue: free_irq (mask, zero message), then the IMS slot and its irq; shutDown frees everything")
func workQueueFreeOrder() throws {
    let (s, wq) = try queueRig()
    let q = try wq.createQueue(for: .vfio, pasid: 0x2a)
    let before = s.device.counters
    try wq.freeQueue(q.queue, by: .vfio)
    let d = s.device.counters - before
    #expect(d.mmioWrites == 4 && d.mmioReads == 1, "shutdown (control + flush), then lo, hi, data")
    #expect(s.model.descriptor(domain: .secondary, index: 0) == nil && s.platform.irq(q.virq) == nil)
    let table = try IMSDeviceTable(region: try #require(s.device.bar(2)), offset: 0, slots: 4096)
    #expect(try table.readSlot(0) == IMSSlot(), "the slot is back in its reset state")
    try wq.createQueue(for: .kernel)
    try wq.createQueue(for: .cdev, pasid: 3)
    try wq.shutDown()
    #expect(!s.model.isMSIXEnabled && s.model.descriptors(domain: .secondary).isEmpty && s.platform.allocatedIRQs.isEmpty)
    #expect(s.device.violations.isEmpty)
    #expect(throws: WorkQueueError.self) { try wq.createQueue(for: .kernel) }
}

@Test("a queue's completions are its interrupt's count: a new queue on a reused Linux irq starts from zero, a free_irq and request_irq of the same irq keeps counting")
func workQueueCompletionsAreTheInterruptCount() throws {
    let (s, wq) = try queueRig()
    let q = try wq.createQueue(for: .vfio, pasid: 9)
    for _ in 0..<3 { _ = try wq.complete(q.queue) }
    #expect(wq.queue(q.queue)?.completions == 3)
    #expect(s.platform.interruptCounts(virq: q.virq).reduce(0, +) == 3)
    try wq.freeQueue(q.queue, by: .vfio)
    // The same Linux irq comes back for the next allocation; the old counts must not.
    let again = try wq.createQueue(for: .vfio, pasid: 9)
    #expect(again.virq == q.virq && again.completions == 0)
    #expect(wq.queue(again.queue)?.completions == 0)
    #expect(s.platform.irq(again.virq)?.count == 0)
    _ = try wq.complete(again.queue)
    #expect(wq.queue(again.queue)?.completions == 1)
    // Allocated, never requested: a number a counted interrupt held before reads zero.
    try wq.freeQueue(again.queue, by: .vfio)
    let map = try s.model.imsAllocIRQ(cookie: 9)
    #expect(map.virq == q.virq)
    #expect(s.platform.interruptCounts(virq: map.virq).allSatisfy { $0 == 0 })
    #expect(s.platform.irq(map.virq)?.count == 0)
    // free_irq then request_irq of the same allocation: kstat keeps counting.
    try s.model.requestIRQ(map.virq)
    _ = s.device.fireIMS(map.index)
    try s.model.freeIRQ(map.virq)
    try s.model.requestIRQ(map.virq)
    #expect(s.platform.irq(map.virq)?.count == 1)
}
