// `msibench model`: the kernel model against a flat C array of descriptors (BenchBaseline's
// model_baseline.c) — virq lookup, MSI-X alloc/free, filtered iteration, IMS alloc-any,
// bytes per descriptor — and the delivery fast path. Prints a table with ratios and floors.
import BenchBaseline
import MSIModel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore

/// An IMS chip that does nothing: the benchmark measures the model, not a backend.
private struct NullIMSChip: IMSChip {
    var name: String { "IMS-BENCH" }
    func prepare(_ descriptor: inout IMSDescriptor) throws {}
    func writeMessage(_ message: MSIMessage, for descriptor: IMSDescriptor) throws {}
    func mask(_ descriptor: IMSDescriptor) throws {}
    func unmask(_ descriptor: IMSDescriptor) throws {}
}

private struct BenchFailure: Error, CustomStringConvertible {
    let description: String
}

/// Keeps results alive so the optimizer cannot drop the measured work.
nonisolated(unsafe) private var sink: UInt64 = 0

/// Best wall time of `runs` runs of `body`, in seconds.
private func best(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
    var t = Double.infinity
    for _ in 0..<runs {
        let start = mb_now()
        try body()
        t = min(t, mb_now() - start)
    }
    return t
}

private func silentPCI(msix: Int) -> SimulatedPCIFunction {
    SimulatedPCIFunction(.init(msixTableSize: msix, intxIRQ: 11, logging: false))
}

private struct Row {
    var name: String
    var swift: Double
    var c: Double?
    var unit: String
    /// "≤ N×" (maximum swift/C ratio), "≤ 64 B" or "≥ 20 M/s".
    var floor: String?
    var pass: Bool?
}

private func fmt(_ v: Double) -> String {
    if v >= 1000 { return String(Int(v.rounded())) }
    if v >= 100 { return String(Double(Int(v * 10)) / 10) }
    return String(Double(Int(v * 100)) / 100)
}

private func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
    s.count >= n ? s : (right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
}

/// Runs a Swift loop and its C counterpart: best-of timing (alternating, so both see the same
/// load), or under callgrind one run each between zeroed counters and a labelled dump
/// (`LABEL|swift|OPS`, `LABEL|c|OPS`), which scripts/bench-model turns into instructions per op.
private struct Meter {
    let callgrind: Bool
    let runs: Int

    func pair(_ label: String, ops: Int, swift: () throws -> Void, c: (() -> Void)? = nil) rethrows -> (Double, Double?) {
        if callgrind {
            try swift()  // warm caches and lazy initialisation outside the counted run
            mb_callgrind_begin()
            try swift()
            mb_callgrind_end("\(label)|swift|\(ops)")
            if let c {
                c()
                mb_callgrind_begin()
                c()
                mb_callgrind_end("\(label)|c|\(ops)")
            }
            return (0, c == nil ? nil : 0)
        }
        var ts = Double.infinity
        var tc = Double.infinity
        for _ in 0..<runs {
            ts = min(ts, try best(1, swift))
            if let c { tc = min(tc, best(1, c)) }
        }
        return (ts, c == nil ? nil : tc)
    }
}

func runModelBench(_ arguments: [String]) throws {
    let quick = arguments.contains("--quick")
    // `--callgrind`: run under valgrind --tool=callgrind (scripts/bench-model --callgrind):
    // one counted run per loop, no timings.
    let callgrind = arguments.contains("--callgrind")
    if callgrind && mb_callgrind_available() == 0 {
        throw BenchFailure(description: "--callgrind needs valgrind --tool=callgrind and valgrind's headers at build time")
    }
    let small = quick || callgrind
    let runs = quick ? 2 : 5
    let meter = Meter(callgrind: callgrind, runs: callgrind ? 1 : runs * 2)
    // Until the process has started a thread, glibc's pthread mutexes skip the lock prefix of
    // their atomics: every locked C row runs after this, so it pays what a lock shared between
    // threads pays.
    var multithreaded = false
    func becomeMultithreaded() throws {
        guard !multithreaded else { return }
        guard mb_become_multithreaded() == 0 else { throw BenchFailure(description: "could not start a thread") }
        multithreaded = true
    }
    let lookups = small ? 1 << 16 : 1 << 21
    var rows: [Row] = []
    // `--only SECTION[,SECTION]`: lookup, iterate, alloc, ims, layout, queues, bytes, deliver.
    let only: Set<String>? = arguments.firstIndex(of: "--only").flatMap { i in
        i + 1 < arguments.count ? Set(arguments[i + 1].split(separator: ",").map(String.init)) : nil
    }
    func want(_ s: String) -> Bool { only?.contains(s) ?? true }

    // MARK: 2048 associated MSI-X descriptors, in the device's store and in an external one
    let platform = try MSIPlatform(.x86(cpus: 2))
    func msixDevice(_ name: String, _ layout: MSIStoreLayout) throws -> MSIDevice {
        let dev = MSIDevice(name: name, platform: platform, pci: silentPCI(msix: 2048).hardware, storeLayout: layout)
        guard try dev.allocIRQVectors(min: 2048, max: 2048, flags: .msix) == 2048 else { throw BenchFailure(description: "MSI-X 2048 failed") }
        return dev
    }
    let dev = try msixDevice("0000:00:03.0", .device)
    let extDev = try msixDevice("0000:00:0a.0", .external)
    let cStore = mb_store_create(2048)
    defer { mb_store_destroy(cStore) }
    for i in 0..<2048 {
        _ = mb_insert(cStore, UInt32(i), 0)
        mb_associate(cStore, UInt32(i), UInt32(try dev.getVirq(index: i)))
    }
    var seed: UInt32 = 12345
    let indices: [UInt32] = (0..<lookups).map { _ in
        seed = seed &* 1_664_525 &+ 1_013_904_223
        return (seed >> 8) % 2048
    }

    func lockedLookup(_ d: MSIDevice) -> UInt64 {
        d.withLockedDescriptors { d -> UInt64 in
            var s: UInt64 = 0
            indices.withUnsafeBufferPointer { buf in
                for i in buf { s &+= UInt64((try? d.virq(index: Int(i))) ?? 0) }
            }
            return s
        }
    }
    if want("lookup") {
        var swiftSum: UInt64 = 0
        var cSum: UInt64 = 0
        let (s, c) = meter.pair("getVirq lock held", ops: lookups, swift: { swiftSum = lockedLookup(dev) },
                                c: { cSum = indices.withUnsafeBufferPointer { mb_lookup_sum(cStore, $0.baseAddress, $0.count) } })
        guard swiftSum == cSum else { throw BenchFailure(description: "lookup sums differ: \(swiftSum) vs \(cSum)") }
        rows.append(Row(name: "getVirq lookup, lock held (ns/op)", swift: s / Double(lookups) * 1e9,
                        c: c.map { $0 / Double(lookups) * 1e9 }, unit: "ns", floor: "≤ 2×"))
        let lockedCount = lookups / 4
        // The lock primitive alone (Synchronization.Mutex, as the device uses it, vs the C
        // baseline's pthread mutex), first while the process has never started a thread: glibc
        // then drops the lock prefix from the mutex's atomics, which no lock shared between
        // threads can do (information only). Then a thread is started and joined, and every
        // locked C row below pays for real atomics, like the Mutex always does.
        let bare = PackageMutex<UInt64>(0)
        func lockAlone(_ label: String, _ name: String) {
            let (sm, cm) = meter.pair(label, ops: lockedCount, swift: {
                for k in 0..<lockedCount { bare.withLock { $0 &+= UInt64(k) } }
                sink &+= bare.withLock { $0 }
            }, c: { sink &+= mb_lock_unlock(cStore, lockedCount) })
            rows.append(Row(name: name, swift: sm / Double(lockedCount) * 1e9,
                            c: cm.map { $0 / Double(lockedCount) * 1e9 }, unit: "ns"))
        }
        lockAlone("Mutex alone, C never threaded", "  lock/unlock: Mutex vs pthread, 1 thread ever (ns)")
        try becomeMultithreaded()
        let (sl, cl) = meter.pair("msi_get_virq lock per call", ops: lockedCount, swift: {
            var s: UInt64 = 0
            indices.withUnsafeBufferPointer { buf in
                for i in buf[0..<lockedCount] { s &+= UInt64((try? dev.getVirq(index: Int(i))) ?? 0) }
            }
            sink &+= s
        }, c: { sink &+= indices.withUnsafeBufferPointer { mb_lookup_sum_locked(cStore, $0.baseAddress, lockedCount) } })
        rows.append(Row(name: "msi_get_virq, lock per call (ns/op)", swift: sl / Double(lockedCount) * 1e9,
                        c: cl.map { $0 / Double(lockedCount) * 1e9 }, unit: "ns", floor: "≤ 2×"))
        lockAlone("Mutex alone", "  lock/unlock alone: Mutex vs pthread (ns/op)")
    }

    // MARK: iterate 2048 with each filter
    let iterations = small ? 20 : 2000
    func firstNext(_ d: MSIDevice) -> UInt64 {
        d.withLockedDescriptors { d -> UInt64 in
            var s: UInt64 = 0
            for _ in 0..<iterations {
                var cur = try? d.first(.associated)
                while let c = cur {
                    s &+= UInt64(c.virq + 1)
                    cur = try? d.next(.associated)
                }
            }
            return s
        }
    }
    func forEach(_ d: MSIDevice, _ filter: MSIDescriptorFilter) -> UInt64 {
        d.withLockedDescriptors { d -> UInt64 in
            var total: UInt64 = 0
            for _ in 0..<iterations {
                var s: UInt64 = 0  // a local per pass: the compiler keeps it in a register
                d.forEachDescriptor(filter) { _, c in s &+= UInt64(c.virq + 1) }
                total &+= s
            }
            return total
        }
    }
    let cFilter: [MSIDescriptorFilter: Int32] = [.all: 0, .notAssociated: 1, .associated: 2]
    if want("iterate") {
        let (s, c) = meter.pair("first/next ASSOCIATED", ops: iterations * 2048, swift: { sink &+= firstNext(dev) },
                                c: { for _ in 0..<iterations { sink &+= mb_iterate(cStore, 2) } })
        rows.append(Row(name: "first/next 2048 ASSOCIATED (µs/pass)", swift: s / Double(iterations) * 1e6,
                        c: c.map { $0 / Double(iterations) * 1e6 }, unit: "µs", floor: "≤ 4×"))
        for (filter, label) in [(MSIDescriptorFilter.associated, "ASSOCIATED"), (.all, "ALL"), (.notAssociated, "NOTASSOCIATED")] {
            var ss: UInt64 = 0
            var cs: UInt64 = 0
            let f = cFilter[filter] ?? 0
            let (s, c) = meter.pair("for_each_desc \(label)", ops: iterations * 2048, swift: { ss = forEach(dev, filter) },
                                    c: { cs = 0; for _ in 0..<iterations { cs &+= mb_iterate(cStore, f) } })
            guard ss == cs else { throw BenchFailure(description: "for_each \(label) sums differ: \(ss) vs \(cs)") }
            rows.append(Row(name: "for_each_desc 2048 \(label) (µs/pass)", swift: s / Double(iterations) * 1e6,
                            c: c.map { $0 / Double(iterations) * 1e6 }, unit: "µs", floor: "≤ 4×"))
        }
    }

    // MARK: alloc + free 2048 MSI-X descriptors
    if want("alloc") {
        let storeDev = MSIDevice(name: "0000:00:04.0", platform: platform, pci: silentPCI(msix: 2048).hardware)
        try storeDev.createDomain(.default, template: .pciMSIX(), hwsize: 2048)
        let cycles = small ? 5 : 200
        let template = MSIDescriptor(index: 0, vectorCount: 1, pci: PCIMSIAttributes(isMSIX: true, canMask: true, is64Bit: true))
        let cStoreCycle = mb_store_create(2048)
        defer { mb_store_destroy(cStoreCycle) }
        let (s, c) = try meter.pair("alloc+free 2048 MSI-X", ops: cycles * 2048, swift: {
            try storeDev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
                for _ in 0..<cycles {
                    for i in 0..<2048 { try d.insertDescriptor(template, domain: .default, at: .index(i)) }
                    try d.freeDescriptors(domain: .default, first: 0, last: 2047)
                }
            }
        }, c: {
            for _ in 0..<cycles {
                for i in 0..<2048 { _ = mb_insert(cStoreCycle, UInt32(i), 0) }
                for i in 0..<2048 { mb_erase(cStoreCycle, UInt32(i)) }
            }
        })
        rows.append(Row(name: "alloc+free 2048 MSI-X descs, store (µs)", swift: s / Double(cycles) * 1e6,
                        c: c.map { $0 / Double(cycles) * 1e6 }, unit: "µs"))
        if !callgrind {
            let fullPlatform = try MSIPlatform(.x86(cpus: 2))
            let fullDev = MSIDevice(name: "0000:00:05.0", platform: fullPlatform, pci: silentPCI(msix: 2048).hardware)
            let fullCycles = quick ? 3 : 20
            let swiftFull = try best(runs) {
                for _ in 0..<fullCycles {
                    _ = try fullDev.allocIRQVectors(min: 2048, max: 2048, flags: .msix)
                    try fullDev.freeIRQVectors()
                }
            }
            rows.append(Row(name: "pci_alloc_irq_vectors(2048)+free, full (µs)", swift: swiftFull / Double(fullCycles) * 1e6,
                            c: nil, unit: "µs"))
        }
    }

    // MARK: IMS alloc-any then free, through the store (device layout and an external store)
    let imsCount = small ? 4096 : 32768
    func imsStoreDevice(_ name: String, store: MSIDescriptorStore?) throws -> MSIDevice {
        let p = try MSIPlatform(.x86(cpus: 2))
        let d = MSIDevice(name: name, platform: p, pci: silentPCI(msix: 1).hardware)
        try d.createIMSDomain(template: .ims(chip: NullIMSChip()), hwsize: imsCount, store: store)
        return d
    }
    func imsCycle(_ dev: MSIDevice) throws {
        try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            let t = MSIDescriptor()
            for _ in 0..<imsCount { try d.insertDescriptor(t, domain: .secondary, at: .any) }
            for i in 0..<imsCount { try d.freeDescriptors(domain: .secondary, first: i, last: i) }
        }
    }
    let cIMSStore = mb_store_create(UInt32(imsCount))
    defer { mb_store_destroy(cIMSStore) }
    let cIMSCycle = {
        for _ in 0..<imsCount { _ = mb_insert_any(cIMSStore, 0) }
        for i in 0..<imsCount { mb_erase(cIMSStore, UInt32(i)) }
    }
    if want("ims") {
        let imsDev = try imsStoreDevice("0000:00:06.0", store: nil)
        let (s, c) = try meter.pair("IMS alloc-any+free", ops: 2 * imsCount, swift: { try imsCycle(imsDev) }, c: cIMSCycle)
        rows.append(Row(name: "IMS alloc-any \(imsCount) + free, store (ms)", swift: s * 1e3, c: c.map { $0 * 1e3 }, unit: "ms", floor: "≤ 2×"))
        if !callgrind {
            var maps: [MSIMap] = []
            maps.reserveCapacity(imsCount)
            let swiftIMSFull = try best(quick ? 1 : 3) {
                maps.removeAll(keepingCapacity: true)
                for k in 0..<imsCount { maps.append(try imsDev.imsAllocIRQ(cookie: UInt64(k))) }
                for m in maps { try imsDev.imsFreeIRQ(m) }
            }
            rows.append(Row(name: "pci_ims_alloc_irq ×\(imsCount) + free, full (ms)", swift: swiftIMSFull * 1e3, c: nil, unit: "ms"))
        }
    }

    // MARK: the same loops with the descriptors in an external (consumer-owned) store
    if want("layout") {
        var sum: UInt64 = 0
        let (ls, lc) = meter.pair("external: getVirq lock held", ops: lookups, swift: { sum = lockedLookup(extDev) },
                                  c: { sink &+= indices.withUnsafeBufferPointer { mb_lookup_sum(cStore, $0.baseAddress, $0.count) } })
        let extVirqs = try (0..<2048).map { UInt64(try extDev.getVirq(index: $0)) }
        guard sum == indices.reduce(0, { $0 &+ extVirqs[Int($1)] }) else {
            throw BenchFailure(description: "external store lookups differ")
        }
        rows.append(Row(name: "external store: getVirq, lock held (ns/op)", swift: ls / Double(lookups) * 1e9,
                        c: lc.map { $0 / Double(lookups) * 1e9 }, unit: "ns", floor: "≤ 2×"))
        let (fs, fc) = meter.pair("external: for_each_desc ASSOCIATED", ops: iterations * 2048,
                                  swift: { sink &+= forEach(extDev, .associated) },
                                  c: { for _ in 0..<iterations { sink &+= mb_iterate(cStore, 2) } })
        rows.append(Row(name: "external store: for_each_desc ASSOC (µs/pass)", swift: fs / Double(iterations) * 1e6,
                        c: fc.map { $0 / Double(iterations) * 1e6 }, unit: "µs", floor: "≤ 4×"))
        let extIMS = try imsStoreDevice("0000:00:0b.0", store: MSIDescriptorStore())
        let (is_, ic) = try meter.pair("external: IMS alloc-any+free", ops: 2 * imsCount, swift: { try imsCycle(extIMS) }, c: cIMSCycle)
        rows.append(Row(name: "external store: IMS alloc-any + free (ms)", swift: is_ * 1e3, c: ic.map { $0 * 1e3 }, unit: "ms", floor: "≤ 2×"))
        if !callgrind {
            let (shared, own) = try consumerTeardown(quick: quick)
            rows.append(Row(name: "teardown of 1 of 7 consumers, shared IMS domain (µs)", swift: shared * 1e6, c: nil, unit: "µs"))
            rows.append(Row(name: "teardown of 1 of 7 consumers, own store (µs)", swift: own * 1e6, c: nil, unit: "µs"))
        }
    }

    // MARK: work queues (QueueBench.swift)
    if want("queues") {
        // The C baseline's locks pay for real atomics, as the kernel's and the Mutex always do,
        // also when this section runs alone (`--only queues`).
        try becomeMultithreaded()
        let qb = try QueueBench()
        let n = QueueBench.queues
        let (s, c) = try meter.pair("queue create+free", ops: 2 * n, swift: { try qb.swiftCycle() }, c: { qb.cCycle(locked: true) })
        rows.append(Row(name: "queue create+free ×\(n), C w/ locks (µs)", swift: s * 1e6, c: c.map { $0 * 1e6 }, unit: "µs", floor: "≤ 3×"))
        let (s2, c2) = try meter.pair("queue create+free, C no locks", ops: 2 * n, swift: { try qb.swiftCycle() },
                                      c: { qb.cCycle(locked: false) })
        rows.append(Row(name: "queue create+free ×\(n), C no locks (µs)", swift: s2 * 1e6, c: c2.map { $0 * 1e6 }, unit: "µs"))
        try qb.check()
    }

    // MARK: bytes per descriptor
    func swiftBytes(_ n: Int) throws -> Double {
        let p = try MSIPlatform(.x86(cpus: 2))
        let before = mb_heap_in_use()
        let d = MSIDevice(name: "0000:00:07.0", platform: p, pci: silentPCI(msix: 1).hardware)
        try d.createIMSDomain(template: .ims(chip: NullIMSChip()), hwsize: 0)
        try d.withLockedDescriptors { (data: inout MSIDeviceData) throws(MSIError) in
            for i in 0..<n { try data.insertDescriptor(MSIDescriptor(index: i), domain: .secondary, at: .index(i)) }
        }
        let after = mb_heap_in_use()
        withExtendedLifetime(d) {}
        return Double(after - before) / Double(n)
    }
    func cBytes(_ n: Int) -> Double {
        let before = mb_heap_in_use()
        let s = mb_store_create(UInt32(n))
        for i in 0..<n { _ = mb_insert(s, UInt32(i), 0) }
        let after = mb_heap_in_use()
        mb_store_destroy(s)
        return Double(after - before) / Double(n)
    }
    if want("bytes") && !callgrind {
        for n in [2048, 32768] {
            rows.append(Row(name: "bytes per descriptor, \(n) descs", swift: try swiftBytes(n), c: cBytes(n), unit: "B", floor: "≤ 64 B"))
        }
        let sparse: Double = try {
            let p = try MSIPlatform(.x86(cpus: 2))
            let before = mb_heap_in_use()
            let d = MSIDevice(name: "0000:00:08.0", platform: p, pci: silentPCI(msix: 1).hardware)
            try d.createIMSDomain(template: .ims(chip: NullIMSChip()), hwsize: 0)
            try d.withLockedDescriptors { (data: inout MSIDeviceData) throws(MSIError) in
                for i in stride(from: 0, to: 65536, by: 64) { try data.insertDescriptor(MSIDescriptor(index: i), domain: .secondary, at: .index(i)) }
            }
            let after = mb_heap_in_use()
            withExtendedLifetime(d) {}
            return Double(after - before) / 1024
        }()
        rows.append(Row(name: "bytes per descriptor, 1024 sparse (1/64)", swift: sparse, c: cBytes(65536) * 64, unit: "B"))
    }

    // MARK: deliveries
    let deliveries = quick ? 2_000_000 : 20_000_000
    func deliveryRate(remapping: Bool) throws -> Double {
        let p = try MSIPlatform(remapping ? .intelRemapping(cpus: 2) : .x86(cpus: 2))
        let hw = silentPCI(msix: 64)
        let d = MSIDevice(name: "0000:00:09.0", platform: p, pci: hw.hardware)
        _ = try d.allocIRQVectors(min: 64, max: 64, flags: .msix)
        let handled = Atomic<Int>(0)
        for i in 0..<64 { try d.requestIRQ(try d.irqVector(i)) { _ in handled.add(1, ordering: .relaxed) } }
        let messages = (0..<64).compactMap { hw.msixEntry($0)?.message }
        for m in messages { guard case .delivered = p.deliver(m) else { throw BenchFailure(description: "delivery dropped: \(p.deliver(m))") } }
        let t = best(runs) {
            messages.withUnsafeBufferPointer { buf in
                var k = 0
                for _ in 0..<deliveries {
                    if case .delivered = p.deliver(buf[k]) { sink &+= 1 }
                    k = (k + 1) & 63
                }
            }
        }
        return Double(deliveries) / t / 1e6
    }
    if want("deliver") && !callgrind {
        rows.append(Row(name: "deliveries/s, x86 vector (M/s)", swift: try deliveryRate(remapping: false), c: nil, unit: "M/s", floor: "≥ 20 M/s"))
        rows.append(Row(name: "deliveries/s, VT-d remapped (M/s)", swift: try deliveryRate(remapping: true), c: nil, unit: "M/s", floor: "≥ 20 M/s"))
    }

    if callgrind {
        print("msibench model --callgrind: \(rows.count) loop pairs counted (sink \(sink & 1))")
        return
    }
    // MARK: table
    print("msibench model — kernel model vs flat C array (release, best of \(runs * 2) alternating runs)")
    print(pad("measurement", 44) + pad("swift", 10, right: true) + pad("C", 10, right: true) + pad("ratio", 9, right: true) + "  floor")
    var failed = false
    for var r in rows {
        let ratio = r.c.map { r.swift / $0 }
        if let f = r.floor {
            if f.hasPrefix("≤ "), f.hasSuffix("×"), let limit = Double(f.dropFirst(2).dropLast()), let ratio {
                r.pass = ratio <= limit
            }
            if f.hasPrefix("≤ 64") { r.pass = r.swift <= 64 }
            if f.hasPrefix("≥ 20") { r.pass = r.swift >= 20 }
        }
        if r.pass == false { failed = true }
        let verdict = r.floor.map { "\($0) " + (r.pass == true ? "ok" : "FAIL") } ?? ""
        print(pad(r.name, 44) + pad(fmt(r.swift), 10, right: true) + pad(r.c.map(fmt) ?? "-", 10, right: true)
              + pad(ratio.map { fmt($0) + "×" } ?? "", 9, right: true) + "  " + verdict)
    }
    print("(sink \(sink & 1))")
    if failed { throw BenchFailure(description: "a floor was not met") }
}

/// Teardown of one consumer's interrupts when 7 consumers hold 512 IMS interrupts each: all in
/// one shared IMS domain in the device's store (free that consumer's 512 maps one by one), or
/// each consumer with its own domain and external store (free the domain's interrupts, remove
/// the domain, drop the store). Best of several runs, seconds.
private func consumerTeardown(quick: Bool) throws -> (shared: Double, own: Double) {
    let consumers = 7
    let perConsumer = 512
    var shared = Double.infinity
    var own = Double.infinity
    for _ in 0..<(quick ? 2 : 5) {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: consumers + 1))
        let dev = MSIDevice(name: "0000:00:0c.0", platform: p, pci: silentPCI(msix: 1).hardware)
        try dev.createIMSDomain(template: .ims(chip: NullIMSChip()), hwsize: consumers * perConsumer)
        var maps: [[MSIMap]] = Array(repeating: [], count: consumers)
        for k in 0..<(consumers * perConsumer) { maps[k % consumers].append(try dev.imsAllocIRQ(cookie: UInt64(k % consumers))) }
        let start = mb_now()
        for m in maps[3] { try dev.imsFreeIRQ(m) }
        shared = min(shared, mb_now() - start)

        let p2 = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: consumers + 1))
        let dev2 = MSIDevice(name: "0000:00:0d.0", platform: p2, pci: silentPCI(msix: 1).hardware)
        var stores: [MSIDescriptorStore?] = []
        for c in 1...consumers {
            let s = MSIDescriptorStore()
            stores.append(s)
            try dev2.createDomain(MSIDomainID(rawValue: c), template: .ims(chip: NullIMSChip()), hwsize: perConsumer, store: s)
            _ = try dev2.allocIRQs(domain: MSIDomainID(rawValue: c), first: 0, last: perConsumer - 1)
        }
        let start2 = mb_now()
        try dev2.freeAllIRQs(domain: MSIDomainID(rawValue: 4))
        dev2.removeDomain(MSIDomainID(rawValue: 4))
        stores[3] = nil
        own = min(own, mb_now() - start2)
    }
    return (shared, own)
}
