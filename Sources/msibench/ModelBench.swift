// `msibench model`: the kernel model against a flat C array of descriptors (BenchBaseline's
// model_baseline.c) — virq lookup, MSI-X alloc/free, filtered iteration, IMS alloc-any,
// bytes per descriptor — and the delivery fast path. Prints a table with ratios and floors.
import BenchBaseline
import MSIModel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
    /// Maximum allowed swift/c ratio, or for throughput rows the minimum value.
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

func runModelBench(_ arguments: [String]) throws {
    let quick = arguments.contains("--quick")
    let runs = quick ? 2 : 5
    let lookups = quick ? 1 << 18 : 1 << 21
    let deliveries = quick ? 2_000_000 : 20_000_000
    var rows: [Row] = []
    // `--only SECTION[,SECTION]`: lookup, iterate, alloc, ims, queues, bytes, deliver.
    let only: Set<String>? = arguments.firstIndex(of: "--only").flatMap { i in
        i + 1 < arguments.count ? Set(arguments[i + 1].split(separator: ",").map(String.init)) : nil
    }
    func want(_ s: String) -> Bool { only?.contains(s) ?? true }

    // MARK: getVirq lookup over 2048 associated MSI-X descriptors
    let platform = try MSIPlatform(.x86(cpus: 2))
    let hw = silentPCI(msix: 2048)
    let dev = MSIDevice(name: "0000:00:03.0", platform: platform, pci: hw.hardware)
    guard try dev.allocIRQVectors(min: 2048, max: 2048, flags: .msix) == 2048 else { throw BenchFailure(description: "MSI-X 2048 failed") }
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
    var swiftSum: UInt64 = 0
    var cSum: UInt64 = 0
    if want("lookup") {
    // Swift and C runs alternate so both see the same machine load; the best of each counts.
    var swiftLookup = Double.infinity
    var cLookup = Double.infinity
    for _ in 0..<(runs * 2) {
        swiftLookup = min(swiftLookup, best(1) {
            swiftSum = dev.withLockedDescriptors { d -> UInt64 in
                var s: UInt64 = 0
                indices.withUnsafeBufferPointer { buf in
                    for i in buf { s &+= UInt64((try? d.virq(index: Int(i))) ?? 0) }
                }
                return s
            }
        })
        cLookup = min(cLookup, best(1) { cSum = indices.withUnsafeBufferPointer { mb_lookup_sum(cStore, $0.baseAddress, $0.count) } })
    }
    guard swiftSum == cSum else { throw BenchFailure(description: "lookup sums differ: \(swiftSum) vs \(cSum)") }
    rows.append(Row(name: "getVirq lookup, lock held (ns/op)", swift: swiftLookup / Double(lookups) * 1e9,
                    c: cLookup / Double(lookups) * 1e9, unit: "ns", floor: "≤ 2.0×"))
    let lockedCount = lookups / 4
    var swiftLocked = Double.infinity
    var cLocked = Double.infinity
    for _ in 0..<(runs * 2) {
        swiftLocked = min(swiftLocked, best(1) {
            var s: UInt64 = 0
            indices.withUnsafeBufferPointer { buf in
                for i in buf[0..<lockedCount] { s &+= UInt64((try? dev.getVirq(index: Int(i))) ?? 0) }
            }
            sink &+= s
        })
        cLocked = min(cLocked, best(1) {
            sink &+= indices.withUnsafeBufferPointer { mb_lookup_sum_locked(cStore, $0.baseAddress, lockedCount) }
        })
    }
    rows.append(Row(name: "msi_get_virq, lock per call (ns/op)", swift: swiftLocked / Double(lockedCount) * 1e9,
                    c: cLocked / Double(lockedCount) * 1e9, unit: "ns", floor: "≤ 2.0×"))
    }

    // MARK: iterate 2048 with a filter
    let iterations = quick ? 200 : 2000
    if want("iterate") {
    let swiftIter = best(runs) {
        let s = dev.withLockedDescriptors { d -> UInt64 in
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
        sink &+= s
    }
    let cIter = best(runs) { for _ in 0..<iterations { sink &+= mb_iterate(cStore, 2) } }
    rows.append(Row(name: "first/next 2048 ASSOCIATED (µs/pass)", swift: swiftIter / Double(iterations) * 1e6,
                    c: cIter / Double(iterations) * 1e6, unit: "µs"))
    let swiftForEach = best(runs) {
        let s = dev.withLockedDescriptors { d -> UInt64 in
            var s: UInt64 = 0
            for _ in 0..<iterations {
                d.forEachDescriptor(.associated) { _, c in s &+= UInt64(c.virq + 1) }
            }
            return s
        }
        sink &+= s
    }
    rows.append(Row(name: "for_each_desc 2048 ASSOCIATED (µs/pass)", swift: swiftForEach / Double(iterations) * 1e6,
                    c: cIter / Double(iterations) * 1e6, unit: "µs"))
    }

    // MARK: alloc + free 2048 MSI-X descriptors
    if want("alloc") {
    let storeDev = MSIDevice(name: "0000:00:04.0", platform: platform, pci: silentPCI(msix: 2048).hardware)
    try storeDev.createDomain(.default, template: .pciMSIX(), hwsize: 2048)
    let cycles = quick ? 20 : 200
    let template = MSIDescriptor(index: 0, vectorCount: 1, pci: PCIMSIAttributes(isMSIX: true, canMask: true, is64Bit: true))
    let swiftStore = try best(runs) {
        try storeDev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            for _ in 0..<cycles {
                for i in 0..<2048 { try d.insertDescriptor(template, domain: .default, at: .index(i)) }
                try d.freeDescriptors(domain: .default, first: 0, last: 2047)
            }
        }
    }
    let cStoreCycle = mb_store_create(2048)
    defer { mb_store_destroy(cStoreCycle) }
    let cAllocFree = best(runs) {
        for _ in 0..<cycles {
            for i in 0..<2048 { _ = mb_insert(cStoreCycle, UInt32(i), 0) }
            for i in 0..<2048 { mb_erase(cStoreCycle, UInt32(i)) }
        }
    }
    rows.append(Row(name: "alloc+free 2048 MSI-X descs, store (µs)", swift: swiftStore / Double(cycles) * 1e6,
                    c: cAllocFree / Double(cycles) * 1e6, unit: "µs"))
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
                    c: cAllocFree / Double(cycles) * 1e6, unit: "µs"))
    }

    // MARK: IMS alloc-any 32768 then free
    let imsCount = 32768
    if want("ims") {
    let imsPlatform = try MSIPlatform(.x86(cpus: 2))
    let imsDev = MSIDevice(name: "0000:00:06.0", platform: imsPlatform, pci: silentPCI(msix: 1).hardware)
    try imsDev.createIMSDomain(template: .ims(chip: NullIMSChip()), hwsize: imsCount)
    let imsRuns = quick ? 1 : 3
    let swiftIMSStore = try best(imsRuns) {
        try imsDev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            let t = MSIDescriptor()
            for _ in 0..<imsCount { try d.insertDescriptor(t, domain: .secondary, at: .any) }
            for i in 0..<imsCount { try d.freeDescriptors(domain: .secondary, first: i, last: i) }
        }
    }
    let cIMSStore = mb_store_create(UInt32(imsCount))
    defer { mb_store_destroy(cIMSStore) }
    let cIMS = best(imsRuns) {
        for _ in 0..<imsCount { _ = mb_insert_any(cIMSStore, 0) }
        for i in 0..<imsCount { mb_erase(cIMSStore, UInt32(i)) }
    }
    rows.append(Row(name: "IMS alloc-any 32768 + free, store (ms)", swift: swiftIMSStore * 1e3, c: cIMS * 1e3, unit: "ms"))
    var maps: [MSIMap] = []
    maps.reserveCapacity(imsCount)
    let swiftIMSFull = try best(imsRuns) {
        maps.removeAll(keepingCapacity: true)
        for k in 0..<imsCount { maps.append(try imsDev.imsAllocIRQ(cookie: UInt64(k))) }
        for m in maps { try imsDev.imsFreeIRQ(m) }
    }
    rows.append(Row(name: "pci_ims_alloc_irq ×32768 + free, full (ms)", swift: swiftIMSFull * 1e3, c: cIMS * 1e3, unit: "ms"))
    }

    // MARK: work queues (QueueBench.swift)
    if want("queues") {
        for r in try queueBenchRows(quick: quick, runs: runs) {
            rows.append(Row(name: r.name, swift: r.swift, c: r.c, unit: "µs", floor: r.floor))
        }
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
    if want("bytes") {
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
    if want("deliver") {
    rows.append(Row(name: "deliveries/s, x86 vector (M/s)", swift: try deliveryRate(remapping: false), c: nil, unit: "M/s", floor: "≥ 20 M/s"))
    rows.append(Row(name: "deliveries/s, VT-d remapped (M/s)", swift: try deliveryRate(remapping: true), c: nil, unit: "M/s", floor: "≥ 20 M/s"))
    }

    // MARK: table
    print("msibench model — kernel model vs flat C array (release, best of \(runs))")
    print(pad("measurement", 44) + pad("swift", 10, right: true) + pad("C", 10, right: true) + pad("ratio", 9, right: true) + "  floor")
    var failed = false
    for var r in rows {
        let ratio = r.c.map { r.swift / $0 }
        if let f = r.floor {
            if f.hasPrefix("≤ 2.0×"), let ratio { r.pass = ratio <= 2.0 }
            if f.hasPrefix("≤ 3.0×"), let ratio { r.pass = ratio <= 3.0 }
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
