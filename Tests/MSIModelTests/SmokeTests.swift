import Testing
@testable import MSIModel
import MSIShimCore

@Test func msixEnableRequestDeliver() throws {
    let p = try x86Platform()
    let (dev, hw) = pciDevice(p)
    let n = try dev.allocIRQVectors(min: 1, max: 4, flags: .msix)
    #expect(n == 4)
    for a in hw.log { print(a) }
    let v0 = try dev.irqVector(0)
    print("virq", v0, p.irq(v0)!)
    let counter = Counter()
    try dev.requestIRQ(v0) { _ in counter.bump() }
    print(p.irq(v0)!)
    let (msg, ctrl) = hw.msixEntry(0)!
    print(msg, ctrl)
    #expect(p.deliver(msg) == .delivered(virq: v0, cpu: p.irq(v0)!.assignedCPU!, vector: p.irq(v0)!.assignedVector!))
    #expect(counter.value == 1)
    try dev.freeIRQ(v0)
    try dev.freeIRQVectors()
    #expect(p.allocatedIRQs.isEmpty)
    print(dev.warnings, p.warnings)
}

import Synchronization
final class Counter: Sendable {
    let v = Atomic<Int>(0)
    func bump() { v.add(1, ordering: .relaxed) }
    var value: Int { v.load(ordering: .relaxed) }
}
