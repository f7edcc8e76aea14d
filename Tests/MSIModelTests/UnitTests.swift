// Pure pieces: message formats, the vector matrix, affinity spreading, CPU masks, platform.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("message formats, matrix, affinity")
struct UnitTests {
    @Test("fill_msi_msg: remappable format bits (format 4, SHV 3, handle 14:0 at 19:5, bit 15 at 2, subhandle in data)")
    func remappableFormat() {
        let m = X86MSIFormat.composeRemappable(handle: 0x8003, subhandle: 2)
        #expect(m.addressLo == 0xFEE0_0000 | 3 << 5 | 1 << 4 | 1 << 3 | 1 << 2)
        #expect(m.addressHi == 0 && m.data == 2)
        guard case .remappable(let r) = X86MSIFormat.decode(m) else { Issue.record("not remappable"); return }
        #expect(r.handle == 0x8003 && r.subhandleValid && r.subhandle == 2 && r.irteIndex == 0x8005)
        #expect(X86MSIFormat.decode(MSIMessage(addressLo: 0xFEC0_0000, data: 0)) == .notAnInterrupt)
    }

    @Test("__irq_msi_compose_msg: logical mode sets bit 2; decode reads delivery mode, level and polarity")
    func compatibilityFormat() throws {
        let m = try X86MSIFormat.compose(vector: 0x30, destinationAPICID: 0x4, mode: .logical)
        #expect(m.addressLo == 0xFEE0_4004)
        guard case .compatibility(let c) = X86MSIFormat.decode(MSIMessage(addressLo: 0xFEE0_2008, data: 0xC141)) else {
            Issue.record("not decoded"); return
        }
        #expect(c.destination == 2 && c.redirectHint && c.vector == 0x41 && c.deliveryMode == 1 && c.activeLow && c.levelTriggered)
        expectErrno(.EINVAL) { _ = try X86MSIFormat.compose(vector: 300, destinationAPICID: 0) }
    }

    @Test("lapic_assign_system_vectors: system and ISA vectors are excluded, irq_matrix_alloc picks the CPU with most available")
    func matrixSetup() throws {
        var m = VectorMatrix.x86(cpus: 2)
        #expect(m.isSystemVector(0x80) && m.isSystemVector(0x32))
        #expect(m.allocatedVectors(cpu: 0) == Array(0x30...0x3F).filter { $0 != 0x32 })
        #expect(m.counters(cpu: 1)?.available == 0xEC - 0x20 - 2)
        #expect(m.counters(cpu: 0)?.available == 0xEC - 0x20 - 2 - 15)
        let a = try m.alloc(mask: .first(2), reserved: false)
        #expect(a.cpu == 1 && a.vector == 0x20)
        // Ties go to the first CPU, and 0x30…0x3F / 0x80 are skipped on every CPU.
        var single = VectorMatrix.x86(cpus: 1)
        var seen: [Int] = []
        while let r = try? single.alloc(mask: .of(0), reserved: false) { seen.append(r.vector) }
        #expect(!seen.contains(0x80) && !seen.contains(0x31) && seen.count == 0xEC - 0x20 - 2 - 15)
        #expect(single.counters(cpu: 0)?.available == 0)
        single.free(cpu: 0, vector: 0x40, managed: false)
        #expect(single.counters(cpu: 0)?.available == 1)
        single.free(cpu: 0, vector: 0x40, managed: false)
        #expect(single.warnings.contains { $0.contains("not allocated") })
        expectErrno(.EBUSY) { try m.assignSystem(0x90, replace: false) }
    }

    @Test("irq_matrix_alloc_managed: fewest managed-allocated CPU, ties to the last; managed vectors stay reserved on free")
    func managedMatrix() throws {
        var m = VectorMatrix.x86(cpus: 3)
        try m.reserveManaged(mask: .first(3))
        try m.reserveManaged(mask: .first(3))
        #expect((0..<3).map { m.counters(cpu: $0)?.managed } == [2, 2, 2])
        let a = try m.allocManaged(mask: .first(3))
        #expect(a.cpu == 2)
        let b = try m.allocManaged(mask: .first(3))
        #expect(b.cpu == 1)
        m.free(cpu: a.cpu, vector: a.vector, managed: true)
        #expect(m.counters(cpu: 2)?.managedAllocated == 0 && m.counters(cpu: 2)?.managed == 2)
        expectErrno(.EINVAL) { _ = try m.allocManaged(mask: CPUMask()) }
        m.removeManaged(mask: .first(3))
        #expect((0..<3).map { m.counters(cpu: $0)?.managed } == [1, 1, 1])
    }

    @Test("irq_matrix_online / offline move a CPU's available vectors in and out of the global pool")
    func onlineOffline() throws {
        var m = VectorMatrix.x86(cpus: 3, online: .of(0))
        let g = m.globalAvailable
        try m.online(1)
        #expect(m.globalAvailable == g + 202)
        expectErrno(.EBUSY) { try m.online(1) }
        try m.offline(1)
        #expect(m.globalAvailable == g)
        // A CPU's available count is computed on its first online only: a managed reservation
        // made before that is subtracted, one made while it was offline later is not.
        try m.reserveManaged(mask: .of(2))
        try m.online(2)
        #expect(m.counters(cpu: 2)?.available == 201)
        try m.reserveManaged(mask: .of(1))
        try m.online(1)
        #expect(m.counters(cpu: 1)?.available == 202)
    }

    @Test("group_cpus_evenly: 8 CPUs in 3 groups → 3, 3, 2; more groups than CPUs → one CPU each")
    func grouping() {
        let g = IRQAffinitySpreading.groupCPUsEvenly(3, cpus: .first(8))
        #expect(g == [CPUMask(0...2), CPUMask(3...5), CPUMask(6...7)])
        #expect(IRQAffinitySpreading.groupCPUsEvenly(6, cpus: .first(4)).count == 4)
        #expect(IRQAffinitySpreading.groupCPUsEvenly(0, cpus: .first(4)).isEmpty)
    }

    @Test("irq_create_affinity_masks: pre/post vectors unmanaged with default affinity, sets spread, uncovered vectors managed with default")
    func affinityMasks() throws {
        let all = CPUMask.first(4)
        let masks = try #require(IRQAffinitySpreading.createMasks(
            vectors: 8, affinity: IRQAffinity(preVectors: 1, postVectors: 1), cpus: all, defaultAffinity: all))
        #expect(masks.map(\.isManaged) == [false, true, true, true, true, true, true, false])
        #expect(masks[0].mask == all && masks[7].mask == all)
        #expect(masks[1...4].map(\.mask) == [.of(0), .of(1), .of(2), .of(3)])
        #expect(masks[5].mask == all && masks[6].mask == all)
        let sets = try #require(IRQAffinitySpreading.createMasks(
            vectors: 4, affinity: IRQAffinity(calculateSets: { _ in [2, 2] }), cpus: all, defaultAffinity: all))
        #expect(sets.map(\.mask) == [CPUMask(0...1), CPUMask(2...3), CPUMask(0...1), CPUMask(2...3)])
        #expect(IRQAffinitySpreading.createMasks(vectors: 2, affinity: IRQAffinity(preVectors: 2), cpus: all, defaultAffinity: all) == nil)
        #expect(IRQAffinitySpreading.createMasks(vectors: 8, affinity: IRQAffinity(calculateSets: { _ in [1, 1, 1, 1, 4] }),
                                                 cpus: all, defaultAffinity: all) == nil)
    }

    @Test("irq_calc_affinity_vectors: capped at the possible CPUs plus reserved vectors; 0 when reserved exceed minvec")
    func calcVectors() {
        #expect(IRQAffinitySpreading.calcVectors(minVectors: 1, maxVectors: 16, affinity: IRQAffinity(), possibleCPUs: 4) == 4)
        #expect(IRQAffinitySpreading.calcVectors(minVectors: 2, maxVectors: 16, affinity: IRQAffinity(preVectors: 1, postVectors: 1), possibleCPUs: 4) == 6)
        #expect(IRQAffinitySpreading.calcVectors(minVectors: 1, maxVectors: 16, affinity: IRQAffinity(preVectors: 2), possibleCPUs: 4) == 0)
        #expect(IRQAffinitySpreading.calcVectors(minVectors: 1, maxVectors: 16, affinity: IRQAffinity(calculateSets: { [$0] }), possibleCPUs: 4) == 16)
    }

    @Test("CPUMask: set operations and the kernel's cpulist format")
    func cpuMask() {
        var m = CPUMask([0, 1, 2, 5, 200])
        #expect(m.count == 5 && m.contains(200) && !m.contains(3) && m.first == 0)
        #expect(m.description == "0-2,5,200")
        m.remove(1)
        #expect(Array(m) == [0, 2, 5, 200])
        #expect(m.intersection(.first(3)) == CPUMask([0, 2]))
        #expect(CPUMask().description == "(none)" && CPUMask().first == nil)
        #expect(CPUMask([999, -1]).isEmpty)
    }

    @Test("platform: Linux interrupts start at gsi_top and are the lowest free run; CPU hotplug is refused with vectors in use")
    func platformNumbers() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, interruptRemapping: .init(), firstDynamicIRQ: 40))
        let (dev, _) = pciDevice(p, msix: nil, msiMMC: 3)
        #expect(try dev.allocIRQVectors(min: 8, max: 8, flags: .msi) == 8)
        #expect(try dev.irqVector(0) == 40)
        let (dev2, _) = pciDevice(p, name: "0000:00:09.0", msix: 4)
        _ = try dev2.allocIRQVectors(min: 1, max: 1, flags: .msix)
        #expect(try dev2.irqVector(0) == 48)
        try dev2.requestIRQ(48)
        let cpu = try #require(p.irq(48)?.assignedCPU)
        if cpu != 0 { expectErrno(.EBUSY) { try p.setCPUOnline(cpu, false) } }
        try dev2.freeIRQ(48)
        try p.setCPUOnline(1, false)
        #expect(p.onlineCPUs == .of(0))
        expectErrno(.EBUSY) { try p.setCPUOnline(0, false) }
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_1000, data: 0x41)) == .dropped(.remappingFault(.compatibilityFormatBlocked)))
    }

    @Test("platform as MessageSink: an emitted message is delivered and reported in the shared vocabulary")
    func messageSink() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let v = try dev.irqVector(0)
        try dev.requestIRQ(v)
        let m = try #require(hw.msixEntry(0)?.message)
        let sink: any MessageSink = p
        let out = sink.deliver(EmittedMessage(source: .msix(0), address: m.address, data: m.data))
        #expect(out == .delivered(virq: v, cpu: p.irq(v)?.assignedCPU ?? -1, vector: p.irq(v)?.assignedVector ?? -1))
        if case .dropped = sink.deliver(EmittedMessage(source: .msix(0), address: 0, data: 0)) {} else { Issue.record("expected a drop") }
    }
}
