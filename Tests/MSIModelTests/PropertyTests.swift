// Random operation sequences against simple reference models (seeded, reproducible).
import Testing
@testable import MSIModel
import MSIShimCore
import TestSupport

/// The package's seeded generator under the name these tests use.
typealias SeededRNG = SplitMix64

@Suite("property tests")
struct PropertyTests {
    @Test("descriptor store: random inserts and removes keep the two-level layout consistent with a set", arguments: [1, 2, 3] as [UInt64])
    func storeMatchesSet(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        var store = DescriptorStore()
        var reference = Set<Int>()
        let limit = [64, 300, 65536][Int(seed % 3)]
        for step in 0..<4000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                let i = Int.random(in: 0..<limit, using: &rng)
                if !reference.contains(i) {
                    var d = PackedDescriptor()
                    d.virq = UInt32(i + 1)
                    store.insert(d, at: i)
                    reference.insert(i)
                }
            case 4..<6:
                let lowest = store.lowestFree(below: limit)
                let expected = (0..<limit).first { !reference.contains($0) }
                #expect(lowest == expected, "step \(step)")
                if let l = lowest { store.insert(PackedDescriptor(), at: l); reference.insert(l) }
            default:
                if let i = reference.randomElement(using: &rng) {
                    #expect(store.remove(at: i)?.index == UInt16(i))
                    reference.remove(i)
                }
            }
            if step % 97 == 0 {
                #expect(store.checkInvariants() == nil, "step \(step)")
                #expect(store.indices == reference.sorted())
            }
        }
        #expect(store.count == reference.count)
        #expect(store.checkInvariants() == nil)
        for i in reference { #expect(store.virq(at: i) == UInt32(i + 1) || store.virq(at: i) == 0) }
    }

    struct Reference {
        var msix: [Int: Int] = [:]   // index → virq
        var ims: [Int: Int] = [:]
        var requested = Set<Int>()
        var msixEnabled = false
        var allVirqs: Set<Int> { Set(msix.values).union(ims.values) }
    }

    func matrixState(_ m: VectorMatrix) -> [String] {
        [String(m.globalAvailable), String(m.globalReserved), String(m.totalAllocated)]
            + (0..<m.cpuCount).map { "\(String(describing: m.counters(cpu: $0))) \(m.allocatedVectors(cpu: $0)) \(m.managedVectors(cpu: $0))" }
    }

    @Test("random MSI-X/IMS alloc, request, deliver and free sequences: no index or virq handed out twice, everything returns",
          arguments: [(11, false), (12, true), (13, false), (14, true)] as [(UInt64, Bool)])
    func randomLifecycle(seed: UInt64, remapping: Bool) throws {
        var rng = SeededRNG(seed: seed)
        let p = remapping ? try irPlatform(cpus: 3) : try x86Platform(cpus: 3)
        let initialMatrix = matrixState(p.vectorMatrix)
        let (dev, hw) = pciDevice(p, msix: 32)
        let chip = RecordingIMSChip(slots: 96)
        try dev.createIMSDomain(template: .ims(chip: chip), hwsize: 96)
        var ref = Reference()
        let steps = 2500

        func message(for virq: Int) -> MSIMessage? {
            if let (i, _) = ref.msix.first(where: { $0.value == virq }) { return hw.msixEntry(i)?.message }
            if let (i, _) = ref.ims.first(where: { $0.value == virq }) { return chip.slot(i)?.message }
            return nil
        }

        for step in 0..<steps {
            let op = Int.random(in: 0..<100, using: &rng)
            switch op {
            case 0..<6:  // enable MSI-X
                let n = Int.random(in: 1...8, using: &rng)
                if ref.msixEnabled {
                    expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: n, flags: .msix) }
                } else {
                    #expect(try dev.allocIRQVectors(min: 1, max: n, flags: .msix) == n)
                    ref.msixEnabled = true
                    for i in 0..<n { ref.msix[i] = try dev.irqVector(i) }
                }
            case 6..<20:  // dynamic MSI-X
                let any = Bool.random(using: &rng)
                let index = Int.random(in: 0..<36, using: &rng)
                do {
                    let map = try dev.msixAllocIRQ(at: any ? .any : .index(index))
                    #expect(ref.msix[map.index] == nil, "index \(map.index) handed out twice")
                    if any { #expect(map.index == (0..<32).first { ref.msix[$0] == nil }) } else { #expect(map.index == index) }
                    ref.msix[map.index] = map.virq
                } catch {
                    if !ref.msixEnabled { #expect(error.code == .ENOTSUPP) }
                    else if !any && index >= 32 { #expect(error.code == .ERANGE) }
                    else if !any { #expect(error.code == .EBUSY && ref.msix[index] != nil) }
                    else { #expect(error.code == .EBUSY && ref.msix.count == 32) }
                }
            case 20..<30:  // dynamic MSI-X free (sometimes bogus)
                if let (i, v) = ref.msix.randomElement(using: &rng), Bool.random(using: &rng) {
                    if ref.requested.contains(v) {
                        expectErrno(.EBUSY) { try dev.msixFreeIRQ(MSIMap(index: i, virq: v)) }
                    } else {
                        try dev.msixFreeIRQ(MSIMap(index: i, virq: v))
                        ref.msix[i] = nil
                    }
                } else {
                    let bogus = MSIMap(index: Int.random(in: 0..<40, using: &rng), virq: Int.random(in: 1...5000, using: &rng))
                    if ref.msix[bogus.index] != bogus.virq {
                        do { try dev.msixFreeIRQ(bogus); Issue.record("bogus free accepted") } catch {
                            #expect([.EINVAL, .ENODEV].contains(error.code))
                        }
                    }
                }
            case 30..<48:  // IMS alloc
                do {
                    let map = try dev.imsAllocIRQ(cookie: UInt64(step))
                    #expect(ref.ims[map.index] == nil)
                    #expect(map.index == (0..<96).first { ref.ims[$0] == nil })
                    #expect(dev.descriptor(domain: .secondary, index: map.index)?.instanceCookie == UInt64(step))
                    ref.ims[map.index] = map.virq
                } catch {
                    #expect(error.code == .EBUSY && ref.ims.count == 96)
                }
            case 48..<60:  // IMS free
                if let (i, v) = ref.ims.randomElement(using: &rng) {
                    if ref.requested.contains(v) {
                        expectErrno(.EBUSY) { try dev.imsFreeIRQ(MSIMap(index: i, virq: v)) }
                    } else {
                        try dev.imsFreeIRQ(MSIMap(index: i, virq: v))
                        ref.ims[i] = nil
                        expectErrno(.EINVAL) { try dev.imsFreeIRQ(MSIMap(index: i, virq: v)) }  // double free
                    }
                }
            case 60..<75:  // request
                if let v = ref.allVirqs.randomElement(using: &rng) {
                    if ref.requested.contains(v) {
                        expectErrno(.EBUSY) { try dev.requestIRQ(v) }
                    } else {
                        try dev.requestIRQ(v)
                        ref.requested.insert(v)
                    }
                }
            case 75..<85:  // free_irq
                if let v = ref.requested.randomElement(using: &rng) {
                    try dev.freeIRQ(v)
                    ref.requested.remove(v)
                }
            case 85..<97:  // deliver to a requested irq
                if let v = ref.requested.randomElement(using: &rng), let m = message(for: v) {
                    guard case .delivered(let got, _, _) = p.deliver(m) else {
                        Issue.record("step \(step): irq \(v) not delivered: \(p.deliver(m))")
                        continue
                    }
                    #expect(got == v)
                }
            default:  // pci_free_irq_vectors
                let busy = ref.msix.values.contains { ref.requested.contains($0) }
                if busy {
                    expectErrno(.EBUSY) { try dev.freeIRQVectors() }
                } else {
                    try dev.freeIRQVectors()
                    ref.msix = [:]
                    ref.msixEnabled = false
                }
            }
            // Invariants.
            let virqs = ref.msix.values.map { $0 } + ref.ims.values.map { $0 }
            #expect(Set(virqs).count == virqs.count, "step \(step): a virq was handed out twice")
            #expect(Set(p.allocatedIRQs) == Set(virqs), "step \(step): platform and reference disagree")
            #expect(Set(dev.descriptors().map(\.index)) == Set(ref.msix.keys))
            #expect(Set(dev.descriptors(domain: .secondary).map(\.index)) == Set(ref.ims.keys))
            if step % 50 == 0 {
                #expect(dev.withLockedDescriptors { $0.checkStoreInvariants() } == nil)
                for v in ref.allVirqs {
                    let irq = try #require(p.irq(v))
                    #expect(irq.isRequested == ref.requested.contains(v))
                    if irq.isRequested { #expect(irq.assignedVector != nil) }
                }
                let assigned = ref.requested.compactMap { p.irq($0).flatMap { i in i.assignedVector.map { "\(i.assignedCPU ?? -1):\($0)" } } }
                #expect(Set(assigned).count == assigned.count, "step \(step): a vector is used twice")
            }
        }
        // Tear everything down: it all comes back.
        for v in ref.requested { try dev.freeIRQ(v) }
        for (i, v) in ref.ims { try dev.imsFreeIRQ(MSIMap(index: i, virq: v)) }
        try dev.freeIRQVectors()
        #expect(p.allocatedIRQs.isEmpty)
        #expect(matrixState(p.vectorMatrix) == initialMatrix)
        #expect(dev.descriptors().isEmpty && dev.descriptors(domain: .secondary).isEmpty)
        if remapping { #expect((0..<512).allSatisfy { p.irte($0)?.present == false }) }
        // The only WARNs are the ones the sequence provoked on purpose (enabling MSI-X twice).
        let unexpected = dev.warnings.filter { $0.function != "__pci_enable_msix_range" }
        #expect(unexpected.isEmpty, "unexpected warnings: \(unexpected.prefix(5))")
    }
}
