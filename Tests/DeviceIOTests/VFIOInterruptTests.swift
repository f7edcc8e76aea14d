// MSI/MSI-X through VFIO with one eventfd per vector, and SET_IRQS validated the way
// vfio-pci validates it.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import DeviceIO
import MSIShimCore

/// Issues a raw SET_IRQS through the fake and returns the errno (0 on success).
func rawSetIRQs(
    _ kernel: FakeVFIOKernel, _ fd: Int32, flags: VFIO.IRQSetFlags, index: Int, start: Int, count: Int, data: [Int32] = [],
    argsz: Int? = nil
) -> Int32 {
    var bytes = [UInt8](repeating: 0, count: 20 + 4 * data.count)
    bytes.put32(UInt32(argsz ?? bytes.count), at: 0)
    bytes.put32(flags.rawValue, at: 4)
    bytes.put32(UInt32(index), at: 8)
    bytes.put32(UInt32(start), at: 12)
    bytes.put32(UInt32(count), at: 16)
    for (i, fd) in data.enumerated() { bytes.put32(UInt32(bitPattern: fd), at: 20 + 4 * i) }
    do {
        _ = try kernel.ioctl(fd, VFIO.Ioctl.deviceSetIRQs, bytes: &bytes)
        return 0
    } catch {
        return error.code
    }
}

@Test func irqInfoReportsCountsAndFlags() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let msix = try dev.irqInfo(.msix)
    #expect(msix.count == 64 && msix.flags.contains([.eventfd, .noResize]))
    #expect(try dev.irqInfo(.msi).count == 4)
    let intx = try dev.irqInfo(.intx)
    #expect(intx.count == 1 && intx.flags.contains([.maskable, .automasked]))
    #expect(try dev.irqInfo(.req).count == 1)
    let dynamic = VFIOFixture(dynamicMSIX: true)
    let d2 = try VFIODevice.open(devA, flow: .group, environment: dynamic.env)
    #expect(!(try d2.irqInfo(.msix)).flags.contains(.noResize))
}

@Test func armAllLoopbackAndDeviceInterrupts() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let fds = try dev.enableInterrupts(.msix, count: 8)
    #expect(fds.count == 8 && dev.interruptStatus.kind == .msix && dev.interruptStatus.allocated == 8)
    #expect(f.kernel.runtime(devA).ctx.count == 8)
    // Nothing fired yet: a non-blocking read says 0 (EAGAIN), not a block.
    #expect(try dev.takeEventCount(3) == 0)
    try dev.triggerVector(3, kind: .msix)
    #expect(try dev.takeEventCount(3) == 1)
    #expect(try dev.takeEventCount(3) == 0)
    #expect(try dev.takeEventCount(2) == 0)  // no spurious interrupt elsewhere
    #expect(f.kernel.fire(devA, vector: 5))
    #expect(f.kernel.fire(devA, vector: 5))
    #expect(try fds[5].take() == 2)
    #expect(throws: DeviceIOError.self) { try dev.enableInterrupts(.msi, count: 1) }
    try dev.disableInterrupts(.msix)
    #expect(f.kernel.runtime(devA).irqType == nil && f.kernel.runtime(devA).ctx.isEmpty)
    #expect(dev.interruptStatus.kind == nil)
    #expect(!f.kernel.fire(devA, vector: 5))
    #expect(try dev.takeEventCount(5) == nil)
    // MSI after MSI-X is off.
    _ = try dev.enableInterrupts(.msi, count: 4)
    try dev.triggerVector(0, kind: .msi)
    #expect(try dev.takeEventCount(0) == 1)
    #expect(throws: DeviceIOError.self) { try dev.enableInterrupts(.msi, count: 8) }
}

@Test func attachDetachAndNoResizeGrowth() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    // QEMU-style: enable with a single vector; the kernel allocates start + count.
    let first = try dev.attachVector(2, kind: .msix)
    guard case .attached = first else { Issue.record("expected a plain attach"); return }
    #expect(dev.interruptStatus.allocated == 3 && f.kernel.runtime(devA).allocated == 3)
    let v0 = try dev.attachVector(0, kind: .msix)
    guard case .attached = v0 else { Issue.record("expected a plain attach inside the range"); return }
    // Past the allocated range with NORESIZE: disable + re-enable, reported.
    let grown = try dev.attachVector(6, kind: .msix)
    guard case .grewByReenabling(_, let old, let new) = grown else { Issue.record("expected re-enable"); return }
    #expect(old == 3 && new == 7)
    #expect(f.kernel.runtime(devA).allocated == 7)
    #expect(Set(f.kernel.runtime(devA).ctx.keys) == [0, 2, 6])  // earlier vectors re-armed
    #expect(f.kernel.fire(devA, vector: 2))
    #expect(try dev.takeEventCount(2) == 1)
    // Detach (fd −1): the vector stops signalling, the index stays on.
    try dev.detachVector(2, kind: .msix)
    #expect(!f.kernel.fire(devA, vector: 2))
    #expect(f.kernel.runtime(devA).irqType == 2)
    #expect(throws: DeviceIOError.self) { try dev.attachVector(64, kind: .msix) }
    #expect(throws: DeviceIOError.self) { try dev.attachVector(0, kind: .msi) }
}

@Test func dynamicMSIXGrowsWithoutReenabling() throws {
    let f = VFIOFixture(dynamicMSIX: true)
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    _ = try dev.enableInterrupts(.msix, count: 2)
    let setsBefore = f.kernel.log.filter { $0 == "VFIO_DEVICE_SET_IRQS" }.count
    let added = try dev.attachVector(10, kind: .msix)
    guard case .attached = added else { Issue.record("dynamic MSI-X should not re-enable"); return }
    #expect(f.kernel.runtime(devA).allocated == 11)
    #expect(f.kernel.log.filter { $0 == "VFIO_DEVICE_SET_IRQS" }.count == setsBefore + 1)  // no disable/re-enable
    #expect(Set(f.kernel.runtime(devA).ctx.keys) == [0, 1, 10])
    #expect(f.kernel.fire(devA, vector: 10))
    #expect(try added.eventFD.take() == 1)
}

@Test func setIRQsIsValidatedLikeVfioPCI() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let k = f.kernel
    let fd = dev.deviceFD
    let efd = try EventFD()
    let trig: VFIO.IRQSetFlags = [.dataEventfd, .actionTrigger]
    // Index out of range.
    #expect(rawSetIRQs(k, fd, flags: trig, index: 5, start: 0, count: 1, data: [efd.fd]) == EINVAL)
    // Two data types / unknown flag bits.
    #expect(rawSetIRQs(k, fd, flags: [.dataNone, .dataEventfd, .actionTrigger], index: 2, start: 0, count: 1,
                       data: [efd.fd]) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: VFIO.IRQSetFlags(rawValue: 1 << 9).union(trig), index: 2, start: 0, count: 1,
                       data: [efd.fd]) == EINVAL)
    // Two actions, or MASK on MSI-X (not implemented by vfio-pci).
    #expect(rawSetIRQs(k, fd, flags: [.dataNone, .actionTrigger, .actionMask], index: 2, start: 0, count: 1) == ENOTTY)
    #expect(rawSetIRQs(k, fd, flags: [.dataNone, .actionMask], index: 2, start: 0, count: 1) == ENOTTY)
    // start + count beyond the index's count.
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 63, count: 2, data: [efd.fd, efd.fd]) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: trig, index: 1, start: 4, count: 1, data: [efd.fd]) == EINVAL)
    // argsz smaller than header + 4·count, or than the header.
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 0, count: 2, data: [efd.fd, efd.fd], argsz: 24) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 0, count: 0, argsz: 16) == EINVAL)
    // count 0 disables only with DATA_NONE|TRIGGER on the enabled index; otherwise EINVAL.
    #expect(rawSetIRQs(k, fd, flags: [.dataNone, .actionTrigger], index: 2, start: 0, count: 0) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 0, count: 0) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 0, count: 1, data: [efd.fd]) == 0)
    #expect(rawSetIRQs(k, fd, flags: trig, index: 1, start: 0, count: 1, data: [efd.fd]) == EINVAL)  // MSI-X is on
    // NORESIZE: a vector past the allocated one is refused.
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 5, count: 1, data: [efd.fd]) == EINVAL)
    #expect(rawSetIRQs(k, fd, flags: [.dataNone, .actionTrigger], index: 2, start: 0, count: 0) == 0)
    // DATA_BOOL loopback.
    #expect(rawSetIRQs(k, fd, flags: trig, index: 2, start: 0, count: 2, data: [efd.fd, -1]) == 0)
    var bools = [UInt8](repeating: 0, count: 22)
    bools.put32(22, at: 0)
    bools.put32(VFIO.IRQSetFlags([.dataBool, .actionTrigger]).rawValue, at: 4)
    bools.put32(2, at: 8)
    bools.put32(2, at: 16)
    bools[20] = 1
    _ = try k.ioctl(fd, VFIO.Ioctl.deviceSetIRQs, bytes: &bools)
    #expect(try efd.take() == 1)
}

@Test func releaseRequestNotification() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    #expect(try !dev.releaseRequested())
    try dev.enableReleaseRequestNotification()
    #expect(try !dev.releaseRequested())
    f.kernel.requestRelease(devA)
    #expect(try dev.releaseRequested())
    #expect(try !dev.releaseRequested())
}

@Test func eventFDReadsAreEightBytesAndNonBlocking() throws {
    let e = try EventFD()
    #expect(try e.take() == 0)
    try e.signal(3)
    try e.signal()
    #expect(try e.take() == 4)
}
