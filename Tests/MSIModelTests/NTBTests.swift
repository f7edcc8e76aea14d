// drivers/ntb/msi.c on the model: the window from the first ASSOCIATED descriptor, the walk
// that requests the first free descriptor and publishes it, the peer's write reaching the
// handler through the platform, re-publication when a move rewrites the message, the refusals.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("NTB peer interrupts")
struct NTBTests {
    /// A device with `n` MSI-X vectors enabled (reservation mode: not yet requested).
    func ntbDevice(_ p: MSIPlatform, _ n: Int = 4) throws -> (MSIDevice, SimulatedPCIFunction) {
        let (dev, hw) = pciDevice(p, msix: 8)
        _ = try dev.allocIRQVectors(min: n, max: n, flags: .msix)
        return (dev, hw)
    }

    @Test("ntb_msi_setup_mws: base from the first ASSOCIATED message, aligned; 32 KiB MSI window; translated size at least size_max")
    func setup() throws {
        let p = try x86Platform()
        let (dev, _) = try ntbDevice(p)
        let client = NTBMSIClient(device: dev)
        // Reserved descriptors point at 0xFEE00000 (vector 0xEF on the first online CPU).
        let w = try client.setupMemoryWindows(NTBWindowAlignment(address: 0x10_0000, size: 0x1000, maximumSize: 0x4_0000))
        #expect(w == NTBMemoryWindow(base: 0xFEE0_0000, end: 0xFEE0_8000, translatedSize: 0x4_0000))
        let small = try client.setupMemoryWindows(NTBWindowAlignment(address: 0x1000, size: 0x3000, maximumSize: 0))
        #expect(small.translatedSize == 0x9000 && small.end == small.base + 0x8000)
        let bare = MSIDevice(name: "0000:00:09.0", platform: p, pci: SimulatedPCIFunction(.init()).hardware)
        expectErrno(.EINVAL) { try NTBMSIClient(device: bare).setupMemoryWindows() }
        expectErrno(.EINVAL) { try client.setupMemoryWindows(NTBWindowAlignment(address: 0x3000)) }
    }

    @Test("ntbm_msi_request_threaded_irq: skips descriptors with an action, requests the first free one, publishes (offset, data); the peer's write runs the handler")
    func requestAndTrigger() throws {
        let p = try x86Platform()
        let (dev, _) = try ntbDevice(p)
        let client = NTBMSIClient(device: dev)
        try client.setupMemoryWindows()  // from entry 0's reserved message: base 0xFEE00000
        try dev.requestIRQ(try dev.irqVector(0))  // entry 0 has an action: NTB skips it
        let counter = Counter()
        let r = try client.requestIRQ { _ in counter.bump() }
        let second = try dev.irqVector(1)
        #expect(r.index == 1 && r.virq == second)
        let message = try #require(dev.descriptor(index: 1)?.message)
        #expect(r.descriptor == NTBMSIDescriptor(addressOffset: message.address - 0xFEE0_0000, data: message.data))
        #expect(dev.withLockedDescriptors { $0.hasMessageWrittenCallback(index: 1) })
        let irq = try #require(p.irq(r.virq))
        let delivery = try client.peerTrigger(r.descriptor)
        #expect(delivery == .delivered(virq: r.virq, cpu: irq.effectiveCPU, vector: irq.effectiveVector))
        #expect(counter.value == 1 && p.interruptCounts(virq: r.virq).reduce(0, +) == 1)
        // The next request takes the next free descriptor; once none is free, ENODEV.
        let third = try client.requestIRQ(), fourth = try client.requestIRQ()
        #expect(third.index == 2 && fourth.index == 3)
        expectErrno(.ENODEV) { _ = try client.requestIRQ() }
    }

    @Test("a message outside the window (APIC ID past the 32 KiB): the interrupt is freed again and the walk goes on; ENODEV, nothing stays requested")
    func outsideWindow() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0, 9]))
        let (dev, _) = try ntbDevice(p, 2)
        let client = NTBMSIClient(device: dev)
        try client.setupMemoryWindows()
        let matrix = p.vectorMatrix
        // Activation picks CPU 1 (more free vectors), APIC 9: address 0xFEE09000, outside.
        expectErrno(.ENODEV) { _ = try client.requestIRQ() }
        let virqs = try (0..<2).map { try dev.irqVector($0) }
        #expect(virqs.allSatisfy { p.irq($0)?.isRequested == false })
        #expect(p.vectorMatrix == matrix)
        #expect(client.published(index: 0) == nil && client.published(index: 1) == nil)
    }

    @Test("an affinity move re-publishes through write_msi_msg (both writes of the two-step), desc_changed each time")
    func republish() throws {
        let p = try x86Platform()
        let (dev, _) = try ntbDevice(p)
        let changed = Counter()
        let client = NTBMSIClient(device: dev) { changed.bump() }
        try client.setupMemoryWindows()
        try dev.requestIRQ(try dev.irqVector(0))
        let r = try client.requestIRQ()
        #expect(p.irq(r.virq)?.effectiveCPU == 1)
        _ = try dev.setAffinity(r.virq, toCPU: 0)
        let now = try #require(dev.descriptor(index: r.index)?.message)
        #expect(client.published(virq: r.virq) == NTBMSIDescriptor(addressOffset: now.address - 0xFEE0_0000, data: now.data))
        #expect(client.changeCount == 2 && changed.value == 2 && client.warnings.isEmpty)
        let delivery = try client.peerTrigger(try #require(client.published(virq: r.virq)))
        #expect(delivery == .delivered(virq: r.virq, cpu: 0, vector: Int(now.data & 0xFF)))
    }

    @Test("a move outside the window: WARN, the peer keeps the last descriptor that fit, and its write no longer reaches this interrupt")
    func staleAfterMove() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0, 9], legacyIRQs: 0))
        let (dev, _) = try ntbDevice(p, 2)
        let client = NTBMSIClient(device: dev)
        try client.setupMemoryWindows()
        let r = try client.requestIRQ()  // CPU 0 (tie: first), inside
        #expect(p.irq(r.virq)?.effectiveCPU == 0)
        _ = try dev.setAffinity(r.virq, toCPU: 1)  // APIC 9: outside
        #expect(client.warnings.contains { $0.function == "ntb_msi_write_msg" })
        let stale = try #require(client.published(virq: r.virq))
        // The two-step's intermediate (new vector, old CPU) fitted and is what the peer holds.
        let now = try #require(p.irq(r.virq))
        #expect(stale.addressOffset == 0 && stale.data == UInt32(now.effectiveVector))
        guard case .dropped = try client.peerTrigger(stale) else { Issue.record("a stale descriptor still reached the interrupt"); return }
    }

    @Test("ntbm_msi_free_irq: unhooks the callback before free_irq, forgets the descriptor; foreign irq EINVAL, not ours WARN; peer offset outside the window EFAULT")
    func freeAndRefusals() throws {
        let p = try x86Platform()
        let (dev, hw) = try ntbDevice(p)
        let client = NTBMSIClient(device: dev)
        expectErrno(.EINVAL) { _ = try client.peerTrigger(NTBMSIDescriptor(addressOffset: 0, data: 0x20)) }
        try client.setupMemoryWindows()
        let r = try client.requestIRQ()
        let changes = client.changeCount
        try client.freeIRQ(r.virq)
        #expect(client.changeCount == changes)  // the all-zero deactivation message is not published
        #expect(client.published(virq: r.virq) == nil && p.irq(r.virq)?.isRequested == false)
        #expect(dev.withLockedDescriptors { !$0.hasMessageWrittenCallback(index: r.index) })
        let other = try dev.irqVector(2)
        try dev.requestIRQ(other)
        try client.freeIRQ(other)
        #expect(client.warnings.contains { $0.function == "ntbm_msi_free_irq" })
        expectErrno(.EINVAL) { try client.freeIRQ(9999) }
        let window = try #require(client.window)
        let count = hw.log.count
        expectErrno(.EFAULT) { _ = try client.peerTrigger(NTBMSIDescriptor(addressOffset: window.translatedSize, data: 0x20)) }
        expectErrno(.EFAULT) { _ = try client.peerTrigger(NTBMSIDescriptor(addressOffset: 2, data: 0x20)) }
        #expect(hw.log.count == count)
    }
}
