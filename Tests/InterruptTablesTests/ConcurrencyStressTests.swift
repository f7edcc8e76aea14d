// Eight threads drive one mock device through the kernel model at once: MSI-X and IMS
// allocation and free, pci_irq_vector, descriptor iteration, request_irq/free_irq,
// disable_irq/enable_irq and device-raised interrupts. Each thread owns what it allocated;
// every result is checked as it comes (no index handed out twice, a raise of an enabled
// interrupt reaches its own irq, a masked one goes pending), and after the teardown everything
// must be back: indices, Linux irqs, vectors and reservations, IRTEs.
//
// Size: MSISHIM_STRESS_OPS operations per thread (default 3,000 so `scripts/test` stays quick;
// `scripts/sanitize` runs 100,000 per thread under ThreadSanitizer).
import Foundation
import Synchronization
import Testing
import MSIShimCore
import MSIModel
import InterruptTables
@testable import MockDevice
import MockHarness
import TestSupport

/// Operations per thread.
let stressOperations = ProcessInfo.processInfo.environment["MSISHIM_STRESS_OPS"].flatMap { Int($0) } ?? 3_000
let stressThreads = 8

/// Seeded per thread so a failing walk can be replayed.
typealias StressRNG = SplitMix64

/// Forwards to the platform and counts what it delivered.
final class CountingSink: MessageSink {
    let platform: MSIPlatform
    let delivered = Atomic<Int>(0)
    init(platform: MSIPlatform) { self.platform = platform }
    func deliver(_ message: EmittedMessage) -> DeliveryOutcome {
        let outcome = platform.deliver(message)
        if case .delivered = outcome { delivered.add(1, ordering: .relaxed) }
        return outcome
    }
}

/// Handler calls, all threads.
final class HandlerTally: Sendable {
    let calls = Atomic<Int>(0)
}

/// Which thread holds each index (a second holder is a bug in the model).
final class Claims: Sendable {
    let owners = PackageMutex<[String: Int]>([:])
    func claim(_ key: String, by thread: Int) -> Int? {
        owners.withLock { o in
            if let other = o[key] { return other }
            o[key] = thread
            return nil
        }
    }
    func release(_ key: String) { owners.withLock { _ = $0.removeValue(forKey: key) } }
}

/// One interrupt a thread allocated.
struct Owned {
    var ims: Bool
    var index: Int
    var virq: Int
    var requested = false
    /// Nested disables while requested (0: enabled).
    var depth = 0
    var key: String { (ims ? "ims" : "msix") + "\(index)" }
    var kind: InterruptKind { ims ? .ims : .msix }
}

/// Failures found by the threads (recorded on the main thread afterwards).
final class Failures: Sendable {
    let list = PackageMutex<[String]>([])
    func add(_ s: String) { list.withLock { if $0.count < 20 { $0.append(s) } } }
}

/// The shared, thread-safe parts of a mock session (the session itself is single-threaded
/// and only wires them up).
struct StressRig: Sendable {
    let model: MSIDevice
    let device: MockPCIDevice
    let platform: MSIPlatform
    let sink: CountingSink
    let tally = HandlerTally()
    let claims = Claims()
    let failures = Failures()

    init(remap: Bool) throws {
        let session = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(cpus: 4, remap: remap))
        sink = CountingSink(platform: session.platform)
        session.device.attach(sink: sink)
        // MSI-X enabled with one vector (index 0, held by the main thread); the rest is dynamic.
        _ = try session.run(.enable(.msix, min: 1, max: 1, affinity: false))
        _ = try session.run(.imsCreate(hwsize: 4096, storage: .device))
        (model, device, platform) = (session.model, session.device, session.platform)
    }

    func fire(_ o: Owned) -> FireResult { o.ims ? device.fireIMS(o.index) : device.fireMSIX(o.index) }

    /// One thread's random walk.
    func work(thread: Int, operations: Int) {
        var rng = StressRNG(seed: 0x5EED_0000 &+ UInt64(thread))
        var owned: [Owned] = []
        let handler: IRQHandler = { [tally] _ in tally.calls.add(1, ordering: .relaxed) }
        func fail(_ s: String) { failures.add("thread \(thread): \(s)") }

        for step in 0..<operations {
            let op = Int.random(in: 0..<100, using: &rng)
            let pick = owned.isEmpty ? nil : Int.random(in: 0..<owned.count, using: &rng)
            switch op {
            case 0..<10 where owned.count < 12:  // pci_msix_alloc_irq_at(MSI_ANY_INDEX)
                do {
                    let map = try model.msixAllocIRQ(at: .any)
                    let o = Owned(ims: false, index: map.index, virq: map.virq)
                    if let other = claims.claim(o.key, by: thread) { fail("step \(step): MSI-X \(map.index) also held by thread \(other)") }
                    owned.append(o)
                } catch { fail("step \(step): msix alloc: \(error)") }
            case 10..<20 where owned.count < 12:  // pci_ims_alloc_irq
                do {
                    // The cookie is the slot's PASID (20 bits): thread and step, kept in range.
                    let map = try model.imsAllocIRQ(cookie: UInt64(thread) << 16 | UInt64(step & 0xFFFF))
                    let o = Owned(ims: true, index: map.index, virq: map.virq)
                    if let other = claims.claim(o.key, by: thread) { fail("step \(step): IMS \(map.index) also held by thread \(other)") }
                    owned.append(o)
                } catch { fail("step \(step): ims alloc: \(error)") }
            case 20..<28:  // free one not requested
                guard let p = pick, !owned[p].requested else { continue }
                let o = owned.remove(at: p)
                claims.release(o.key)
                do {
                    if o.ims { try model.imsFreeIRQ(MSIMap(index: o.index, virq: o.virq)) } else {
                        try model.msixFreeIRQ(MSIMap(index: o.index, virq: o.virq))
                    }
                } catch { fail("step \(step): free \(o.key): \(error)") }
            case 28..<40:  // request_irq
                guard let p = pick, !owned[p].requested else { continue }
                do {
                    try model.requestIRQ(owned[p].virq, handler: handler)
                    owned[p].requested = true
                    owned[p].depth = 0
                } catch { fail("step \(step): request \(owned[p].key): \(error)") }
            case 40..<48:  // free_irq
                guard let p = pick, owned[p].requested else { continue }
                do {
                    try model.freeIRQ(owned[p].virq)
                    owned[p].requested = false
                } catch { fail("step \(step): free_irq \(owned[p].key): \(error)") }
            case 48..<56:  // disable_irq
                guard let p = pick, owned[p].requested, owned[p].depth < 3 else { continue }
                do {
                    try model.maskIRQ(owned[p].virq)
                    owned[p].depth += 1
                } catch { fail("step \(step): disable \(owned[p].key): \(error)") }
            case 56..<64:  // enable_irq (balanced)
                guard let p = pick, owned[p].requested, owned[p].depth > 0 else { continue }
                do {
                    try model.unmaskIRQ(owned[p].virq)
                    owned[p].depth -= 1
                } catch { fail("step \(step): enable \(owned[p].key): \(error)") }
            case 64..<82:  // the device raises one of ours
                guard let p = pick else { continue }
                let o = owned[p]
                let result = fire(o)
                if o.requested && o.depth == 0 {
                    guard case .sent(_, .delivered(let virq, _, _)) = result, virq == o.virq else {
                        fail("step \(step): raise of enabled \(o.key) (irq \(o.virq)): \(result)")
                        continue
                    }
                } else if result != .pending {
                    fail("step \(step): raise of masked \(o.key) (requested \(o.requested), depth \(o.depth)): \(result)")
                }
            case 82..<91:  // pci_irq_vector / msi_get_virq on any index
                let index = Int.random(in: 0..<64, using: &rng)
                let virq = try? model.irqVector(index)
                if let mine = owned.first(where: { !$0.ims && $0.index == index }), virq != mine.virq {
                    fail("step \(step): pci_irq_vector(\(index)) = \(String(describing: virq)), holder has \(mine.virq)")
                }
            default:  // iterate the associated descriptors of both domains
                let domain: MSIDomainID = Bool.random(using: &rng) ? .default : .secondary
                let seen: [(Int, Int)]
                do {
                    seen = try model.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [(Int, Int)] in
                        var out: [(Int, Int)] = []
                        var desc = try d.first(domain: domain, .associated)
                        while let x = desc {
                            out.append((x.index, x.virq))
                            desc = try d.next(domain: domain, .associated)
                        }
                        return out
                    }
                } catch {
                    fail("step \(step): iterate: \(error)")
                    continue
                }
                if !zip(seen, seen.dropFirst()).allSatisfy({ $0.0 < $1.0 }) { fail("step \(step): iteration not ascending") }
                let present = Dictionary(seen, uniquingKeysWith: { a, _ in a })
                for o in owned where o.ims == (domain == .secondary) && present[o.index] != o.virq {
                    fail("step \(step): iteration lost \(o.key) (irq \(o.virq)): \(String(describing: present[o.index]))")
                }
            }
        }
        // Give everything back.
        for o in owned {
            do {
                if o.requested { try model.freeIRQ(o.virq) }
                claims.release(o.key)
                if o.ims { try model.imsFreeIRQ(MSIMap(index: o.index, virq: o.virq)) } else {
                    try model.msixFreeIRQ(MSIMap(index: o.index, virq: o.virq))
                }
            } catch { fail("teardown \(o.key): \(error)") }
        }
    }

    /// Runs `threads` workers on real threads and waits for them.
    func runThreads(_ threads: Int, operations: Int) {
        let done = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            let thread = Thread { [self] in
                work(thread: t, operations: operations)
                done.signal()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for _ in 0..<threads { done.wait() }
    }
}

@Suite("concurrency: 8 threads on one device")
struct ConcurrencyStressTests {
    @Test("random alloc/free/get_virq/iterate/request/mask/deliver/IMS from 8 threads; everything comes back",
          arguments: [false, true])
    func stress(remap: Bool) throws {
        let rig = try StressRig(remap: remap)
        let platform = rig.platform
        let matrixBefore = platform.vectorMatrix
        let irqsBefore = platform.allocatedIRQs
        rig.runThreads(stressThreads, operations: stressOperations)

        let failures = rig.failures.list.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(rig.sink.delivered.load(ordering: .relaxed) == rig.tally.calls.load(ordering: .relaxed),
                "every delivered message ran exactly one handler")
        #expect(rig.sink.delivered.load(ordering: .relaxed) > 0)
        // Every index, irq, vector and IRTE the threads took is back.
        #expect(rig.model.descriptors().map(\.index) == [0])
        #expect(rig.model.descriptors(domain: .secondary).isEmpty)
        #expect(platform.allocatedIRQs == irqsBefore)
        #expect(platform.vectorMatrix == matrixBefore, "vectors and reservations returned")
        try rig.model.freeIRQVectors()
        #expect(platform.allocatedIRQs.isEmpty)
        if remap { #expect((0..<1024).allSatisfy { platform.irte($0)?.present != true }) }
        #expect(rig.device.violations.isEmpty, "\(rig.device.violations.prefix(3))")
        #expect(rig.model.warnings.isEmpty, "\(rig.model.warnings.prefix(3))")
        // Freed entries are masked, and nothing but entry 0 was left programmed.
        let table = try MSIXTable(config: rig.device.config, capOffset: 0xA0) { i in try #require(rig.device.bar(i)) }
        for i in 0..<64 { #expect(try table.readEntry(i).masked, "entry \(i)") }
    }
}
