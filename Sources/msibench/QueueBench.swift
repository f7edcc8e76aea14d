// The work-queue rows of `msibench model`: queue create + free ×4096 on a 4096-slot IMS table
// through WorkQueues and the whole model (IMS descriptor, Linux irq, vector reservation,
// request_irq with a real vector and the slot writes, then free_irq and the free), against
// BenchBaseline's queue_baseline.c doing the same bookkeeping in flat C arrays.
import BenchBaseline
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import WorkQueues

/// Nothing raises interrupts in this benchmark.
private struct SilentSignals: QueueSignals {
    func raise(_ interrupt: QueueInterrupt) -> FireResult { .dropped("benchmark") }
}

/// One work-queue row: name, Swift and C figures (µs per create+free cycle of all queues).
struct QueueBenchRow {
    var name: String
    var swift: Double
    var c: Double
    var floor: String?
}

/// Queue create+free ×`queues` on an IMS table of as many slots, 32 CPUs (enough vectors for
/// every queue's `request_irq`): best of `runs`, Swift and C runs alternating.
func queueBenchRows(quick: Bool, runs: Int) throws -> [QueueBenchRow] {
    let queues = 4096
    let cpus = 32
    let platform = try MSIPlatform(.x86(cpus: cpus))
    let region = try MappedRegion.anonymous(name: "bench IMS slots", size: queues * IMSSlotLayout.size)
    let table = try IMSDeviceTable(region: region, offset: 0, slots: queues)
    let pci = SimulatedPCIFunction(.init(msixTableSize: 64, intxIRQ: 11, logging: false))
    let device = MSIDevice(name: "0000:00:0a.0", platform: platform, pci: pci.hardware)
    try device.createIMSDomain(template: .ims(chip: IMSDeviceChip(table: table)), hwsize: queues)
    let wq = try WorkQueueDevice(device: device, signals: SilentSignals())
    guard let cLocked = qb_create(UInt32(queues), UInt32(cpus), 1), let cBare = qb_create(UInt32(queues), UInt32(cpus), 0) else {
        throw QueueBenchFailure("qb_create failed")
    }
    defer {
        qb_destroy(cLocked)
        qb_destroy(cBare)
    }
    let consumers: [QueueConsumer] = [.kernel, .vfio, .cdev]

    func swiftCycle() throws {
        for i in 0..<queues {
            let q = try wq.createQueue(for: consumers[i % 3], pasid: UInt32(i + 1))
            guard q.queue == i, case .ims = q.interrupt else { throw QueueBenchFailure("queue \(i) got \(q)") }
        }
        for i in 0..<queues { try wq.freeQueue(i, by: consumers[i % 3]) }
    }
    func cCycle(_ d: OpaquePointer) throws {
        for i in 0..<queues {
            guard qb_queue_create(d, Int32(i % 3), UInt32(i + 1)) == Int32(i) else { throw QueueBenchFailure("C queue \(i)") }
        }
        for i in 0..<queues { guard qb_queue_free(d, Int32(i), Int32(i % 3)) == 0 else { throw QueueBenchFailure("C free \(i)") } }
    }
    try swiftCycle()  // warm up, and prove that every queue gets an IMS slot
    try cCycle(cLocked)
    try cCycle(cBare)
    var swiftBest = Double.infinity
    var lockedBest = Double.infinity
    var bareBest = Double.infinity
    for _ in 0..<(quick ? 2 : runs * 2) {
        var t = mb_now()
        try swiftCycle()
        swiftBest = min(swiftBest, mb_now() - t)
        t = mb_now()
        try cCycle(cLocked)
        lockedBest = min(lockedBest, mb_now() - t)
        t = mb_now()
        try cCycle(cBare)
        bareBest = min(bareBest, mb_now() - t)
    }
    guard wq.queueCount == 0, platform.allocatedIRQs.count == 1 else { throw QueueBenchFailure("queues left behind") }
    return [
        QueueBenchRow(name: "queue create+free ×4096, C w/ locks (µs)", swift: swiftBest * 1e6, c: lockedBest * 1e6, floor: "≤ 3.0×"),
        QueueBenchRow(name: "queue create+free ×4096, C no locks (µs)", swift: swiftBest * 1e6, c: bareBest * 1e6, floor: nil),
    ]
}

struct QueueBenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
