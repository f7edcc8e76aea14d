// irq_set_affinity as /proc/irq/N/smp_affinity_list makes it: the new vector from the matrix,
// the message rewritten with the sequence of its table, the old vector released, and every
// refusal leaving the store, the matrix and the hardware as they were.
import Testing
@testable import MSIModel
import MSIShimCore

/// Everything a refused affinity change must leave alone.
private struct Snapshot: Equatable {
    var matrix: VectorMatrix
    var irq: IRQDescription?
    var descriptors: [MSIDescriptor]
    var accesses: Int

    init(_ p: MSIPlatform, _ dev: MSIDevice, _ hw: SimulatedPCIFunction, _ virq: Int) {
        matrix = p.vectorMatrix
        irq = p.irq(virq)
        descriptors = dev.descriptors()
        accesses = hw.log.count
    }
}

@Suite("affinity moves")
struct AffinityTests {
    @Test("MSI-X on the vector parent, new CPU and new vector: mask, new vector on the old CPU, final message, unmask; old vector freed")
    func msixTwoStep() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        let counter = Counter()
        try dev.requestIRQ(try dev.irqVector(0))
        let virq = try dev.irqVector(1)
        try dev.requestIRQ(virq) { _ in counter.bump() }
        let before = try #require(p.irq(virq))
        let oldCPU = try #require(before.assignedCPU), oldVector = try #require(before.assignedVector)
        #expect(oldCPU == 1 && oldVector == 0x21)  // CPU 1 has the most free vectors; 0x20 went to entry 0
        hw.clearLog()
        let t = try dev.setAffinity(virq, toCPU: 0)
        #expect(t.cpu == 0 && t.vector == 0x20 && t.affinity == .of(0))
        let intermediate = try X86MSIFormat.compose(vector: 0x20, destinationAPICID: 1)
        let final = try X86MSIFormat.compose(vector: 0x20, destinationAPICID: 0)
        #expect(hw.log == [
            .msixWrite(entry: 1, .vectorControl, 1), .msixRead(entry: 0, .addressLo, 0xFEE0_1000),
            .msixWrite(entry: 1, .addressLo, intermediate.addressLo), .msixWrite(entry: 1, .addressHi, 0),
            .msixWrite(entry: 1, .data, intermediate.data), .msixRead(entry: 1, .data, intermediate.data),
            .msixWrite(entry: 1, .addressLo, final.addressLo), .msixWrite(entry: 1, .addressHi, 0),
            .msixWrite(entry: 1, .data, final.data), .msixRead(entry: 1, .data, final.data),
            .msixWrite(entry: 1, .vectorControl, 0),
        ])
        #expect(dev.descriptor(index: 1)?.message == final)
        #expect(!p.vectorMatrix.allocatedVectors(cpu: oldCPU).contains(oldVector))
        #expect(p.vectorMatrix.allocatedVectors(cpu: 0).contains(0x20))
        let old = try X86MSIFormat.compose(vector: oldVector, destinationAPICID: UInt32(oldCPU))
        #expect(p.deliver(old) == .dropped(.noIRQ(cpu: oldCPU, vector: oldVector)))
        #expect(p.deliver(final) == .delivered(virq: virq, cpu: 0, vector: 0x20))
        #expect(counter.value == 1)
        #expect(p.irq(virq)?.affinity == .of(0) && p.irq(virq)?.isMasked == false)
    }

    @Test("the same vector number on the new CPU: one direct rewrite inside the mask/unmask")
    func msixDirect() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        try dev.requestIRQ(virq)
        hw.clearLog()
        let t = try dev.setAffinity(virq, toCPU: 0)
        #expect(t.cpu == 0 && t.vector == 0x20)
        let final = try X86MSIFormat.compose(vector: 0x20, destinationAPICID: 0)
        #expect(hw.log.filter(\.isWrite).count == 5 && hw.log.count == 7)
        #expect(hw.log.contains(.msixWrite(entry: 0, .addressLo, final.addressLo)))
        // Asking for the CPU it is on changes no vector and rewrites the same message.
        hw.clearLog()
        _ = try dev.setAffinity(virq, toCPU: 0)
        #expect(p.irq(virq)?.assignedVector == 0x20 && hw.log.filter(\.isWrite).count == 5)
    }

    @Test("MSI on the vector parent: mask register, pci_write_msg_msi, unmask")
    func msiMove() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: nil, msiMMC: 0)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msi)
        let virq = try dev.irqVector(0)
        try dev.requestIRQ(virq)
        hw.clearLog()
        _ = try dev.setAffinity(virq, toCPU: 0)
        let final = try X86MSIFormat.compose(vector: 0x20, destinationAPICID: 0)
        #expect(hw.log.first == .msiWriteMask(1) && hw.log.last == .msiWriteMask(0))
        #expect(hw.log.contains(.msiWriteAddressLo(final.addressLo)) && hw.log.contains(.msiWriteData(UInt16(final.data))))
        #expect(p.deliver(final) == .delivered(virq: virq, cpu: 0, vector: 0x20))
    }

    @Test("under interrupt remapping only the IRTE changes: no table access, the same message reaches the new CPU")
    func remapped() throws {
        let p = try irPlatform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        try dev.requestIRQ(virq)
        let message = try #require(dev.descriptor(index: 0)?.message)
        let irte = try #require(p.irq(virq)?.irteIndex)
        hw.clearLog()
        let t = try dev.setAffinity(virq, toCPU: 0)
        #expect(hw.log.isEmpty && dev.descriptor(index: 0)?.message == message)
        #expect(p.irte(irte)?.cpu == 0 && p.irte(irte)?.vector == t.vector)
        #expect(p.deliver(message) == .delivered(virq: virq, cpu: 0, vector: t.vector))
    }

    @Test("IMS on the vector parent: the chip writes the new message once, no masking")
    func imsMove() throws {
        let p = try x86Platform()
        let chip = RecordingIMSChip()
        let dev = try deviceWithDomain(p, .ims(chip: chip), hwsize: 8)
        let map = try dev.allocIRQ(domain: .secondary, at: .any)
        try dev.requestIRQ(map.virq)
        let before = chip.calls.count
        let t = try dev.setAffinity(map.virq, toCPU: 0)
        let final = try X86MSIFormat.compose(vector: t.vector, destinationAPICID: 0)
        #expect(Array(chip.calls.dropFirst(before)) == [.write(map.index, final)])
        #expect(p.deliver(final) == .delivered(virq: map.virq, cpu: 0, vector: t.vector))
    }

    @Test("an interrupt not yet activated keeps only the mask; request_irq then activates it on that CPU")
    func beforeActivation() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        let matrix = p.vectorMatrix
        hw.clearLog()
        let t = try dev.setAffinity(virq, toCPU: 0)
        #expect(t.vector == X86Vectors.managedShutdown && hw.log.isEmpty && p.vectorMatrix == matrix)
        try dev.requestIRQ(virq)
        // irq_setup_affinity at startup keeps a mask user space set (IRQD_AFFINITY_SET).
        #expect(p.irq(virq)?.assignedCPU == 0 && p.irq(virq)?.affinity == .of(0))
    }

    @Test("refusals: managed EPERM, CPU past the last ERANGE, offline CPU EINVAL, no free vector ENOSPC, another device's irq EINVAL; nothing changes")
    func refusals() throws {
        let p = try x86Platform(cpus: 4)
        let (dev, hw) = pciDevice(p, msix: 8)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        let virq = try dev.irqVector(0)
        try dev.requestIRQ(virq)
        try p.setCPUOnline(3, false)
        var before = Snapshot(p, dev, hw, virq)
        expectErrno(.ERANGE) { _ = try dev.setAffinity(virq, toCPU: 4) }
        expectErrno(.ERANGE) { _ = try dev.setAffinity(virq, to: CPUMask([1, 200])) }
        expectErrno(.EINVAL) { _ = try dev.setAffinity(virq, toCPU: 3) }
        expectErrno(.EINVAL) { _ = try dev.setAffinity(virq, to: CPUMask()) }
        #expect(Snapshot(p, dev, hw, virq) == before)
        let (other, _) = pciDevice(p, name: "0000:00:05.0", msix: 4)
        expectErrno(.EINVAL) { _ = try other.setAffinity(virq, toCPU: 0) }
        // Managed: refused before anything is looked at.
        let (managed, mhw) = pciDevice(p, name: "0000:00:07.0", msix: 4)
        _ = try managed.allocIRQVectors(min: 2, max: 2, flags: [.msix, .affinity])
        let mv = try managed.irqVector(0)
        try managed.requestIRQ(mv)
        let mbefore = Snapshot(p, managed, mhw, mv)
        expectErrno(.EPERM) { _ = try managed.setAffinity(mv, toCPU: 1) }
        expectErrno(.EPERM) { _ = try managed.setAffinity(mv, toCPU: 9) }
        #expect(Snapshot(p, managed, mhw, mv) == mbefore)
        // No vector left on CPU 2: the move is refused and the entry ends unmasked as it was.
        let hog = MSIDevice(name: "0000:00:06.0", platform: p, pci: SimulatedPCIFunction(.init(msixTableSize: nil)).hardware)
        try hog.createDomain(.secondary, template: .ims(chip: RecordingIMSChip()), hwsize: 512)
        var hogged: [Int] = []
        while p.vectorMatrix.maps[2].available > 0 {
            let m = try hog.allocIRQ(domain: .secondary, at: .any)
            _ = try hog.setAffinity(m.virq, toCPU: 2)
            try hog.requestIRQ(m.virq)
            hogged.append(m.virq)
        }
        #expect(hogged.count > 100)
        before = Snapshot(p, dev, hw, virq)
        expectErrno(.ENOSPC) { _ = try dev.setAffinity(virq, toCPU: 2) }
        let after = Snapshot(p, dev, hw, virq)
        #expect(after.matrix == before.matrix && after.irq == before.irq && after.descriptors == before.descriptors)
    }
}
