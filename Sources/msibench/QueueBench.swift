// The work-queue rows of `msibench model`: queue create + free ×4096 on a 4096-slot IMS table
// through WorkQueues and the whole model (IMS descriptor, Linux irq, vector reservation,
// request_irq with a real vector and the slot writes, then free_irq and the free), against
// BenchBaseline's queue_baseline.c doing the same bookkeeping in flat C arrays, once with the
// locks the kernel takes on this path and once without any.
import BenchBaseline
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import WorkQueues

/// Nothing raises interrupts in this benchmark: a device that signals nothing.
private struct SilentSignals: QueueSignals {
    func raise(_ interrupt: QueueInterrupt) -> FireResult { .dropped(.deviceGone) }
}

/// The Swift and C sides of the queue benchmark: 4096 queues on a 4096-slot IMS table,
/// 32 CPUs (enough vectors for every queue's `request_irq`).
final class QueueBench {
    static let queues = 4096
    let platform: MSIPlatform
    let wq: WorkQueueDevice
    let cLocked: OpaquePointer
    let cBare: OpaquePointer
    let consumers: [QueueConsumer] = [.kernel, .vfio, .cdev]
    /// A C cycle that did not go as expected (the C closures cannot throw).
    var failure: String?

    init() throws {
        let cpus = 32
        platform = try MSIPlatform(.x86(cpus: cpus))
        let region = try MappedRegion.anonymous(name: "bench IMS slots", size: Self.queues * IMSSlotLayout.size)
        let table = try IMSDeviceTable(region: region, offset: 0, slots: Self.queues)
        let pci = SimulatedPCIFunction(.init(msixTableSize: 64, intxIRQ: 11, logging: false))
        let device = MSIDevice(name: "0000:00:0a.0", platform: platform, pci: pci.hardware)
        try device.createIMSDomain(template: .ims(chip: IMSDeviceChip(table: table)), hwsize: Self.queues)
        wq = try WorkQueueDevice(device: device, signals: SilentSignals())
        guard let l = qb_create(UInt32(Self.queues), UInt32(cpus), 1), let b = qb_create(UInt32(Self.queues), UInt32(cpus), 0) else {
            throw QueueBenchFailure("qb_create failed")
        }
        cLocked = l
        cBare = b
    }

    deinit {
        qb_destroy(cLocked)
        qb_destroy(cBare)
    }

    /// Creates 4096 queues (consumers in turn, PASID i + 1), each on an IMS slot, then frees them.
    func swiftCycle() throws {
        for i in 0..<Self.queues {
            let q = try wq.createQueue(for: consumers[i % 3], pasid: UInt32(i + 1))
            guard q.queue == i, case .ims = q.interrupt else { throw QueueBenchFailure("queue \(i) got \(q)") }
        }
        for i in 0..<Self.queues { try wq.freeQueue(i, by: consumers[i % 3]) }
    }

    /// The same in C.
    func cCycle(locked: Bool) {
        let d = locked ? cLocked : cBare
        for i in 0..<Self.queues where qb_queue_create(d, Int32(i % 3), UInt32(i + 1)) != Int32(i) {
            failure = failure ?? "C queue \(i) was not created"
        }
        for i in 0..<Self.queues where qb_queue_free(d, Int32(i), Int32(i % 3)) != 0 {
            failure = failure ?? "C queue \(i) was not freed"
        }
    }

    /// Throws when a cycle went wrong or left anything behind.
    func check() throws {
        if let failure { throw QueueBenchFailure(failure) }
        guard wq.queueCount == 0, platform.allocatedIRQs.count == 1 else { throw QueueBenchFailure("queues left behind") }
    }
}

struct QueueBenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
