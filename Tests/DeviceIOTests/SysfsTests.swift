// sysfs config and resourceN backends, BAR decoding and the write policy, on a fake tree.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import DeviceIO
import MSIShimCore

let devA = try! PCIAddress(parsing: "0000:00:03.0")
let devB = try! PCIAddress(parsing: "0000:00:04.0")

@Test func sysfsConfigReadsWhatTheKernelGives() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(address: devA, driver: "virtio-pci", config: ConfigBuilder().bytes))
    let cfg = try SysfsConfigSpace(address: devA, environment: tree.environment())
    #expect(cfg.readableSize == 256 && cfg.declaredSize == 256)
    #expect(try cfg.read16(PCIReg.vendorID) == 0x1af4)
    #expect(try cfg.read32(0) == 0x1041_1af4)
    // An unprivileged reader gets 64 bytes: capabilities then read as out of bounds.
    writeBytes(tree.devicePath(devA) + "/config", Array(ConfigBuilder().bytes.prefix(64)))
    let short = try SysfsConfigSpace(address: devA, environment: tree.environment())
    #expect(short.readableSize == 64)
    #expect(throws: DeviceAccessError.outOfBounds(short.name, offset: 0x40, width: 1, size: 64)) { try short.read8(0x40) }
    let big = ConfigBuilder(size: 4096).bytes
    writeBytes(tree.devicePath(devA) + "/config", big)
    #expect(try SysfsConfigSpace(address: devA, environment: tree.environment()).readableSize == 4096)
}

@Test func sysfsConfigRefusesWritesToKernelOwnedDevices() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(address: devA, driver: "virtio-pci", config: ConfigBuilder().bytes))
    let cfg = try SysfsConfigSpace(address: devA, environment: tree.environment(), intent: .allowWrites)
    #expect(!cfg.isWritable)
    do {
        try cfg.write16(PCIReg.command, 0)
        Issue.record("write to a virtio-pci device was accepted")
    } catch let DeviceAccessError.notWritable(_, reason) {
        #expect(reason.contains("'virtio-pci'") && reason.contains("vfio-pci or uio_pci_generic"))
    }
    #expect(fileBytes(tree.devicePath(devA) + "/config").u16(at: PCIReg.command) == PCIReg.Command.memory)
}

@Test func sysfsConfigWritesOnlyWithIntentAndUserspaceDriver() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(address: devA, driver: "vfio-pci", config: ConfigBuilder().bytes))
    let readOnly = try SysfsConfigSpace(address: devA, environment: tree.environment())
    #expect(!readOnly.isWritable)
    #expect(throws: DeviceAccessError.self) { try readOnly.write8(0x3C, 5) }
    let cfg = try SysfsConfigSpace(address: devA, environment: tree.environment(), intent: .allowWrites)
    #expect(cfg.isWritable)
    try cfg.write8(PCIReg.interruptLine, 0x0B)
    #expect(fileBytes(tree.devicePath(devA) + "/config")[PCIReg.interruptLine] == 0x0B)
    // The device is handed back to a kernel driver: the next write is refused.
    tree.setDriver(devA, "virtio-pci")
    do {
        try cfg.write8(PCIReg.interruptLine, 0x0C)
        Issue.record("write after rebind was accepted")
    } catch let DeviceAccessError.notWritable(_, reason) {
        #expect(reason.contains("driver changed since open") && reason.contains("virtio-pci"))
    }
    tree.setDriver(devA, nil)
    #expect(WritePolicy.evaluate(address: devA, sysfs: tree.environment().sysfs, intent: .allowWrites).reason?
        .contains("not bound to any driver") == true)
}

@Test func policyGuardWrapsAnyBackend() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(address: devA, driver: "uio_pci_generic", config: ConfigBuilder().bytes))
    let mem = MemoryConfigSpace(name: "libpci stand-in", bytes: ConfigBuilder().bytes)
    let guarded = PolicyGuardedConfigSpace(base: mem, address: devA, sysfs: tree.environment().sysfs, intent: .allowWrites)
    #expect(guarded.isWritable)
    try guarded.write32(0x40, 1)
    #expect(try mem.read32(0x40) == 1)
    tree.setDriver(devA, "nvme")
    #expect(throws: DeviceAccessError.self) { try guarded.write32(0x40, 2) }
    #expect(try mem.read32(0x40) == 1)
    let readOnlyBase = PolicyGuardedConfigSpace(
        base: ConfigSnapshot(name: "dump", bytes: ConfigBuilder().bytes), address: devA,
        sysfs: tree.environment().sysfs, intent: .allowWrites)
    #expect(!readOnlyBase.isWritable)
}

@Test func sysfsConfigDetectsDeviceGone() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(address: devA, driver: "virtio-pci", config: ConfigBuilder().bytes))
    let cfg = try SysfsConfigSpace(address: devA, environment: tree.environment())
    writeBytes(tree.devicePath(devA) + "/config", [UInt8](repeating: 0xFF, count: 256))
    #expect(throws: DeviceAccessError.deviceGone(cfg.name)) { try cfg.read32(0x10) }
    #expect(throws: DeviceAccessError.deviceGone(cfg.name)) { try cfg.read16(0) }
    removeTree(tree.devicePath(devA))
    #expect(throws: DeviceIOError.noSuchDevice(devA)) { try SysfsBAR.map(devA, bar: 0, environment: tree.environment()) }
}

@Test func permissionDeniedSaysRunAsRoot() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(
        address: devA, driver: "virtio-pci", config: ConfigBuilder().bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags)]), resourceFiles: [0: [UInt8](repeating: 0, count: 4096)]))
    let env = tree.environment(syscalls: FailingOpens(base: LinuxSystemCalls(), failures: ["/config": EACCES, "/resource0": EPERM]))
    do {
        _ = try SysfsConfigSpace(address: devA, environment: env)
        Issue.record("open succeeded")
    } catch let e as DeviceAccessError {
        // EACCES: the file's permissions; root would be let in.
        #expect(e.description.contains("EACCES") && e.description.contains("run as root"))
    }
    do {
        _ = try SysfsBAR.map(devA, bar: 0, environment: env)
        Issue.record("open succeeded")
    } catch let e as DeviceIOError {
        #expect(e == .permissionDenied(path: tree.devicePath(devA) + "/resource0", errno: EPERM))
        // EPERM: the kernel refuses root too (it used to say "run as root" here, wrongly).
        #expect(e.description.contains("EPERM") && e.description.contains("even to root"))
        #expect(!e.description.contains("run as root"))
    }
}

@Test func parsesSysfsResourceWith64BitBARs() {
    let text = resourceText([
        0: (0xfe00_0000, 0x1000, memFlags),
        2: (0x8_0000_0000, 0x4000, mem64PrefetchFlags),
        4: (0xc000, 0x20, ioFlags),
    ])
    let bars = PCIBAR.parseSysfsResource(text)
    #expect(bars.count == 6)
    #expect(bars[0].kind == .memory32 && bars[0].size == 0x1000 && bars[0].start == 0xfe00_0000)
    #expect(bars[1].kind == .unimplemented)
    #expect(bars[2].kind == .memory64 && bars[2].prefetchable && bars[2].size == 0x4000)
    #expect(bars[3].kind == .upperHalf(lower: 2))
    #expect(bars[4].kind == .io && !bars[4].isMemory)
    #expect(bars[5].kind == .unimplemented)
}

@Test func decodesBARRegistersWithExternalSizes() {
    let regs: [UInt32] = [0xfe00_0000, 0x0000_c001, 0x0000_000c, 0x0000_0008, 0, 0]
    let bars = PCIBAR.decode(registers: regs, sizes: [0x1000, 0x20, 0x4000, 0, 0, 0])
    #expect(bars[0].kind == .memory32 && bars[0].start == 0xfe00_0000)
    #expect(bars[1].kind == .io && bars[1].start == 0xc000)
    #expect(bars[2].kind == .memory64 && bars[2].prefetchable && bars[2].start == 0x8_0000_0000)
    #expect(bars[3].kind == .upperHalf(lower: 2))
    #expect(bars[4].kind == .unimplemented)
}

@Test func sysfsResourceMapsTheBARFile() throws {
    let tree = FakeTree()
    var bar2 = [UInt8](repeating: 0, count: 0x4000)
    bar2.put32(0x1234_5678, at: 0x2000)
    tree.add(FakeFunction(
        address: devA, driver: "vfio-pci", config: ConfigBuilder().bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags), 2: (0x8_0000_0000, 0x4000, mem64PrefetchFlags),
                                4: (0xc000, 0x20, ioFlags)]),
        resourceFiles: [0: [UInt8](repeating: 0, count: 0x1000), 2: bar2], wcFiles: [2]))
    let env = tree.environment()
    let ro = try SysfsBAR.map(devA, bar: 2, environment: env)
    #expect(ro.size == 0x4000 && !ro.isWritable && ro.name.hasSuffix("(sysfs resource2)"))
    #expect(try ro.read32(0x2000) == 0x1234_5678)
    #expect(throws: DeviceAccessError.self) { try ro.write32(0, 1) }
    let wc = try SysfsBAR.map(devA, bar: 2, writeCombining: true, environment: env)
    #expect(wc.name.hasSuffix("(sysfs resource2_wc)"))
    // BAR0 is not prefetchable: asking for WC falls back to resource0.
    let rw = try SysfsBAR.map(devA, bar: 0, writeCombining: true, intent: .allowWrites, environment: env)
    #expect(rw.name.hasSuffix("(sysfs resource0)") && rw.isWritable)
    try rw.write32(0x10, 0xfeed_beef)
    #expect(fileBytes(tree.devicePath(devA) + "/resource0").u32(at: 0x10) == 0xfeed_beef)
    #expect(throws: DeviceIOError.barUnusable(devA, bar: 3, reason: "upper half of the 64-bit BAR2")) {
        try SysfsBAR.map(devA, bar: 3, environment: env)
    }
    #expect(throws: DeviceIOError.self) { try SysfsBAR.map(devA, bar: 4, environment: env) }
    #expect(throws: DeviceIOError.barUnusable(devA, bar: 1, reason: "not implemented (size 0)")) {
        try SysfsBAR.map(devA, bar: 1, environment: env)
    }
    #expect(throws: DeviceIOError.self) { try SysfsBAR.map(devA, bar: 7, environment: env) }
    // Truncating the stand-in file under the mapping does not crash.
    #expect(truncate(tree.devicePath(devA) + "/resource0", 0) == 0)
    #expect(throws: DeviceAccessError.self) { try rw.read32(0x10) }
}

@Test func sysfsResourceWritesRefusedForKernelDriver() throws {
    let tree = FakeTree()
    tree.add(FakeFunction(
        address: devA, driver: "e1000e", config: ConfigBuilder().bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags)]), resourceFiles: [0: [UInt8](repeating: 0, count: 0x1000)]))
    let r = try SysfsBAR.map(devA, bar: 0, intent: .allowWrites, environment: tree.environment())
    #expect(!r.isWritable)
    #expect(r.writeRefusal?.contains("e1000e") == true)
    #expect(throws: DeviceAccessError.self) { try r.write32(0, 1) }
    // No resourceN file at all (this VM's kernel).
    removeTree(tree.devicePath(devA) + "/resource0")
    do {
        _ = try SysfsBAR.map(devA, bar: 0, environment: tree.environment())
        Issue.record("mapped a missing file")
    } catch let DeviceIOError.barUnusable(_, _, reason) {
        #expect(reason.contains("no ") && reason.contains("resource0"))
    }
}

@Test(.enabled(if: !DeviceIOEnvironment().sysfs.addresses().isEmpty, "no PCI devices in /sys/bus/pci/devices"))
func liveSysfsConfigOfARealDevice() throws {
    let addresses = DeviceIOEnvironment().sysfs.addresses()
    let cfg = try SysfsConfigSpace(address: addresses[0], environment: DeviceIOEnvironment())
    #expect(try cfg.read16(PCIReg.vendorID) != 0xFFFF)
    #expect([64, 256, 4096].contains(cfg.readableSize))
    #expect(!cfg.isWritable)
}

@Test func subPageBARMapsAWholePageButBoundsAtTheBARSize() throws {
    let tree = FakeTree()
    var bytes = [UInt8](repeating: 0, count: 0x100)
    bytes.put32(0x5A5A_5A5A, at: 0xFC)
    tree.add(FakeFunction(
        address: devA, driver: "vfio-pci", config: ConfigBuilder().bytes,
        resource: resourceText([1: (0xfe00_1000, 0x100, memFlags)]), resourceFiles: [1: bytes]))
    let r = try SysfsBAR.map(devA, bar: 1, environment: tree.environment())
    #expect(r.size == 0x100)
    #expect(try r.read32(0xFC) == 0x5A5A_5A5A)
    #expect(throws: DeviceAccessError.outOfBounds(r.name, offset: 0x100, width: 4, size: 0x100)) { try r.read32(0x100) }
}

@Test func strictDevmemRefusalSaysHowToMapIt() throws {
    // Seen in the QEMU lab: Debian's kernel (CONFIG_IO_STRICT_DEVMEM) refuses the mmap of
    // resourceN of a BAR the nvme driver holds with EINVAL; iomem=relaxed lifts that.
    let tree = FakeTree()
    tree.add(FakeFunction(
        address: devA, driver: "nvme", config: ConfigBuilder().bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags)]), resourceFiles: [0: [UInt8](repeating: 0, count: 4096)]))
    let env = tree.environment(syscalls: FailingOpens(base: LinuxSystemCalls(), failures: ["mmap": EINVAL]))
    guard case let .barUnusable(_, bar, reason)? = thrownError({ try SysfsBAR.map(devA, bar: 0, environment: env) })
        as? DeviceIOError else {
        Issue.record("expected DeviceIOError.barUnusable")
        return
    }
    #expect(bar == 0 && reason.contains("CONFIG_IO_STRICT_DEVMEM") && reason.contains("iomem=relaxed"))
}
