// The fast paths keep the kernel's semantics: for_each_desc with a body that changes the
// store or the cursor, the virq lookup through the flat interrupt array and its refusals,
// lowest-free allocation after frees, and a handler whose interrupt is freed while it runs.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("fast paths")
struct FastPathTests {
    /// A device with an IMS-template domain holding descriptors at `indices`.
    func store(_ indices: [Int]) throws -> MSIDevice {
        let p = try x86Platform()
        let dev = try deviceWithDomain(p, .ims(chip: RecordingIMSChip()), hwsize: 512)
        try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            for i in indices { try d.insertDescriptor(MSIDescriptor(index: i), domain: .secondary, at: .index(i)) }
        }
        return dev
    }

    @Test("for_each_desc: freeing the current descriptor goes on with the next; freeing a later one skips it; next() in the body moves the cursor")
    func forEachWithChangingBody() throws {
        let dev = try store([1, 2, 3, 70, 71, 200])
        let seen = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [Int] in
            var seen: [Int] = []
            try d.forEachDescriptor(domain: .secondary, .all) { (d: inout MSIDeviceData, desc) throws(MSIError) in
                seen.append(desc.index)
                if desc.index == 2 { try d.freeDescriptors(domain: .secondary, first: 2, last: 2) }
                if desc.index == 3 { try d.freeDescriptors(domain: .secondary, first: 70, last: 70) }
            }
            return seen
        }
        #expect(seen == [1, 2, 3, 71, 200])
        #expect(dev.descriptors(domain: .secondary).map(\.index) == [1, 3, 71, 200])
        let skipped = dev.withLockedDescriptors { d -> [Int] in
            var seen: [Int] = []
            d.forEachDescriptor(domain: .secondary, .all) { d, desc in
                seen.append(desc.index)
                if desc.index == 1 { _ = try? d.next(domain: .secondary, .all) }  // the body takes 3 itself
            }
            return seen
        }
        #expect(skipped == [1, 71, 200])
    }

    @Test("virq lookup: associated, absent, past the flat array (0); index past 65535, bad or negative domain id: EINVAL with a WARN")
    func lookup() throws {
        let p = try x86Platform()
        let dev = try deviceWithDomain(p, .ims(chip: RecordingIMSChip()), hwsize: 4096)
        let far = try dev.allocIRQ(domain: .secondary, at: .index(3000))  // grows the flat array past its first size
        let near = try dev.allocIRQ(domain: .secondary, at: .index(5))
        #expect(try dev.getVirq(domain: .secondary, index: 3000) == far.virq)
        #expect(try dev.getVirq(domain: .secondary, index: 5) == near.virq)
        #expect(try dev.getVirq(domain: .secondary, index: 6) == 0)
        #expect(try dev.getVirq(domain: .secondary, index: 65535) == 0)
        #expect(try dev.getVirq(domain: .default, index: 5) == 0)
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: .secondary, index: 65536) }
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: .secondary, index: -1) }
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: MSIDomainID(rawValue: 2), index: 5) }
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: MSIDomainID(rawValue: -6), index: 5) }
        #expect(dev.warnings.filter { $0.function == "msi_domain_get_virq" }.count == 4)
        try dev.freeIRQs(domain: .secondary, first: 3000, last: 3000)
        #expect(try dev.getVirq(domain: .secondary, index: 3000) == 0)
        #expect(dev.withLockedDescriptors { $0.checkStoreInvariants() } == nil)
    }

    @Test("alloc at any index after frees takes the lowest free index, across pages")
    func lowestFreeAfterFrees() throws {
        let dev = try store([])
        try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            for k in 0..<200 { #expect(try d.insertDescriptor(MSIDescriptor(), domain: .secondary, at: .any) == k) }
            for i in [150, 64, 7] { try d.freeDescriptors(domain: .secondary, first: i, last: i) }
            #expect(try d.insertDescriptor(MSIDescriptor(), domain: .secondary, at: .any) == 7)
            #expect(try d.insertDescriptor(MSIDescriptor(), domain: .secondary, at: .any) == 64)
            #expect(try d.insertDescriptor(MSIDescriptor(), domain: .secondary, at: .any) == 150)
            #expect(try d.insertDescriptor(MSIDescriptor(), domain: .secondary, at: .any) == 200)
            #expect(d.checkStoreInvariants() == nil)
        }
    }

    /// Tells when the closure holding it is gone.
    final class Sentinel: Sendable {
        let released: Counter
        init(_ c: Counter) { released = c }
        deinit { released.bump() }
    }

    @Test("a handler that frees its own interrupt: free_irq returns at once, the action stays until the handler is done, then goes")
    func freeFromOwnHandler() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        let released = Counter()
        let ran = Counter()
        do {
            let sentinel = Sentinel(released)
            try dev.requestIRQ(virq) { v in
                withExtendedLifetime(sentinel) {
                    ran.bump()
                    try? dev.freeIRQ(v)
                }
            }
        }
        let message = try #require(hw.msixEntry(0)?.message)
        #expect(p.deliver(message) == .delivered(virq: virq, cpu: 1, vector: 0x20))
        #expect(ran.value == 1 && p.irq(virq)?.isRequested == false)
        // The retired action goes at the next request, free or allocation.
        try dev.requestIRQ(virq)
        #expect(released.value == 1)
        try dev.freeIRQ(virq)
    }

    /// What `irq_matrix_alloc()`'s scan finds: the first online CPU of `mask` with strictly
    /// the most available vectors, nil when none has one.
    func scannedBest(_ m: VectorMatrix, _ mask: CPUMask) -> Int? {
        var best: Int?
        var most = 0
        for c in mask where c < m.cpuCount {
            guard let k = m.counters(cpu: c), k.online, k.available > most else { continue }
            best = c
            most = k.available
        }
        return best
    }

    @Test("irq_matrix_alloc over every online CPU picks what the scan picks, through allocations, frees, managed reservations and CPUs going offline and online")
    func matrixBestCPUMatchesTheScan() throws {
        var m = VectorMatrix.x86(cpus: 8)
        var taken: [(cpu: Int, vector: Int)] = []
        var seed: UInt64 = 0x5EED
        func random(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        for step in 0..<4000 {
            let online = CPUMask((0..<8).filter { m.counters(cpu: $0)?.online == true })
            switch random(10) {
            case 0..<5:
                let expected = scannedBest(m, CPUMask.first(8))
                if let got = try? m.alloc(mask: CPUMask.first(8), reserved: false) {
                    #expect(got.cpu == expected, "step \(step)")
                    taken.append(got)
                } else {
                    #expect(expected == nil, "step \(step): the scan found CPU \(expected ?? -1)")
                }
            case 5..<8 where !taken.isEmpty:
                let t = taken.remove(at: random(taken.count))
                m.free(cpu: t.cpu, vector: t.vector, managed: false)
            case 8:
                let cpu = 1 + random(7)
                if online.contains(cpu), !taken.contains(where: { $0.cpu == cpu }) {
                    try m.offline(cpu)
                } else if !online.contains(cpu) {
                    try m.online(cpu)
                }
            default:
                var mask = CPUMask()
                mask.insert(random(8))
                if (try? m.reserveManaged(mask: mask)) != nil { m.removeManaged(mask: mask) }
            }
            var rebuilt = m
            rebuilt.rebuildMaxAvailable()
            #expect(rebuilt.maxAvailable == m.maxAvailable && rebuilt.atMaxAvailable == m.atMaxAvailable, "step \(step)")
        }
    }
}
