// VFIO through the fake kernel: opening flows, region info (capability chains, argsz
// re-query, malformed replies), the config region, BAR mapping plans and mapped BARs.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import DeviceIO
import MSIShimCore
import PCIAccess
import CMSIShim

/// A vfio-pci device with BAR0 (16 KiB registers, MSI-X table at 0x2000 with 64 entries, PBA
/// at 0x3000), BAR2 (64-bit, 16 KiB), MSI with 4 vectors, in IOMMU group 7.
struct VFIOFixture {
    let tree = FakeTree()
    let kernel: FakeVFIOKernel
    var env: DeviceIOEnvironment { tree.environment(syscalls: kernel) }

    /// `cdevNode: false` with `cdev: true` is Linux 6.1-6.5: sysfs lists `vfio-dev/vfio3`, /dev has no node.
    init(msixMappable: Bool = true, sparse: [Range<UInt64>]? = nil, dynamicMSIX: Bool = false, cdev: Bool = false,
         cdevNode: Bool = true, viable: Bool = true, tableOffset: UInt32 = 0x2000, bar0Size: Int = 0x4000, msixEntries: Int = 64) {
        kernel = FakeVFIOKernel(devRoot: tree.dev)
        var cfg = ConfigBuilder(size: 4096)
        cfg.bar(0, 0xfe00_0000)
        cfg.bar(2, 0x0000_000c)
        cfg.bar(3, 0x8)
        cfg.msix(at: 0x40, next: 0x50, entries: msixEntries, tableBIR: 0, tableOffset: tableOffset, pbaBIR: 0,
                 pbaOffset: 0x3000)
        cfg.msi(at: 0x50, log2Count: 2)
        cfg.bytes[PCIReg.interruptPin] = 1
        tree.add(FakeFunction(
            address: devA, driver: "vfio-pci", config: cfg.bytes,
            resource: resourceText([0: (0xfe00_0000, UInt64(bar0Size), memFlags),
                                    2: (0x8_0000_0000, 0x4000, mem64PrefetchFlags)]),
            iommuGroup: 7, vfioDev: cdev ? "vfio3" : nil))
        var d = FakeVFIODevice(address: devA, group: 7, cdevName: cdev && cdevNode ? "vfio3" : nil, config: cfg.bytes)
        d.bars = [0: FakeBAR(size: bar0Size), 2: FakeBAR(size: 0x4000)]
        d.msixBAR = 0
        d.msixTable = Int(tableOffset)..<(Int(tableOffset) + 16 * msixEntries)
        d.msixMappable = msixMappable
        if let sparse { d.sparse[0] = sparse }
        d.msiCount = 4
        d.msixCount = msixEntries
        d.hasDynMSIX = dynamicMSIX
        kernel.add(d, viable: viable)
    }
}

@Test func groupFlowOpensTheDevice() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    #expect(dev.flow == .group && dev.group == 7 && dev.iommuType == VFIO.IOMMUType.type1v2)
    #expect(dev.info.flags.contains(.pci) && dev.info.regionCount == 9 && dev.info.irqCount == 5)
    #expect(f.kernel.log.prefix(8) == [
        "open \(f.tree.dev)/vfio/vfio", "VFIO_GET_API_VERSION", "VFIO_CHECK_EXTENSION(3)", "open \(f.tree.dev)/vfio/7",
        "VFIO_GROUP_GET_STATUS", "VFIO_GROUP_SET_CONTAINER", "VFIO_SET_IOMMU(3)", "VFIO_GROUP_GET_DEVICE_FD",
    ])
    #expect(!dev.permission.isGranted)
}

@Test func closingTheDeviceReleasesEveryDescriptor() throws {
    let f = VFIOFixture()
    do {
        let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
        #expect(f.kernel.openFakeHandles == 3)
        _ = dev
    }
    #expect(f.kernel.openFakeHandles == 0)
    // The group can be opened again.
    _ = try VFIODevice.open(devA, flow: .group, environment: f.env)
}

/// The order `VFIODevice` documents and `deinit` follows: device, then group, then container.
@Test func releaseClosesDeviceThenGroupThenContainer() throws {
    let f = VFIOFixture()
    do { _ = try VFIODevice.open(devA, flow: .group, environment: f.env) }
    #expect(f.kernel.log.filter { $0.hasPrefix("close") } == ["close device \(devA)", "close group 7", "close container"])
}

/// A group-flow open that fails after the group was opened closes the group before the container,
/// in the same order as a released device (it used to close the container first).
@Test func failedGroupOpenClosesGroupBeforeContainer() throws {
    let f = VFIOFixture(viable: false)
    #expect(throws: DeviceIOError.self) { try VFIODevice.open(devA, flow: .group, environment: f.env) }
    #expect(f.kernel.log.filter { $0.hasPrefix("close") } == ["close group 7", "close container"])
    #expect(f.kernel.openFakeHandles == 0)
}

/// uAPI structure fields outside their bytes throw (they used to read 0 and drop writes).
@Test func structureFieldsOutsideTheBytesThrow() throws {
    var bytes = [UInt8](repeating: 0, count: VFIO.Layout.groupStatusSize)
    #expect(throws: DeviceIOError.self) { try bytes.field32(at: 6) }
    #expect(throws: DeviceIOError.self) { try bytes.field64(at: 1) }
    #expect(throws: DeviceIOError.self) { try bytes.field16(at: -1) }
    #expect(throws: DeviceIOError.self) { try bytes.setField32(1, at: 8) }
    #expect(bytes == [UInt8](repeating: 0, count: 8))
    try bytes.setField32(0x0403_0201, at: 4)
    #expect(try bytes.field32(at: 4) == 0x0403_0201 && bytes[4] == 1 && bytes[7] == 4)
    #expect(try bytes.field64(at: 0) == 0x0403_0201_0000_0000)
}

@Test func type1FallbackAndNoIOMMU() throws {
    let f = VFIOFixture()
    f.kernel.extensions = [VFIO.IOMMUType.type1]
    #expect(try VFIODevice.open(devA, flow: .group, environment: f.env).iommuType == VFIO.IOMMUType.type1)
    f.kernel.extensions = []
    #expect(throws: DeviceIOError.self) { try VFIODevice.open(devA, flow: .group, environment: f.env) }
    #expect(f.kernel.openFakeHandles == 0)
}

@Test func groupNotViableNamesTheOtherDevices() throws {
    let f = VFIOFixture(viable: false)
    f.tree.add(FakeFunction(address: devB, driver: "snd_hda_intel", config: ConfigBuilder().bytes, iommuGroup: 7))
    let bridge = try PCIAddress(parsing: "00:1c.0")
    var bridgeConfig = ConfigBuilder()
    bridgeConfig.bytes[PCIReg.headerType] = 1
    f.tree.add(FakeFunction(address: bridge, driver: "pcieport", config: bridgeConfig.bytes, iommuGroup: 7))
    do {
        _ = try VFIODevice.open(devA, flow: .group, environment: f.env)
        Issue.record("opened a non-viable group")
    } catch {
        let e = error
        #expect(e == .groupNotViable(group: 7, device: devA, blockers: [GroupMember(address: devB, driver: "snd_hda_intel")]))
        #expect(e.description.contains("0000:00:04.0 is bound to snd_hda_intel"))
        #expect(!e.description.contains("msictl"))  // the command to type is msictl's to add
        #expect(!e.description.contains("00:1c.0"))  // bridges do not block
    }
    #expect(f.kernel.openFakeHandles == 0)
}

@Test func openErrorsSayWhatIsMissing() throws {
    let f = VFIOFixture()
    f.kernel.vfioPresent = false
    if case let .vfioUnavailable(reason)? = thrownError({ try VFIODevice.open(devA, flow: .group, environment: f.env) }) as? DeviceIOError {
        #expect(reason.contains("modprobe vfio-pci"))
    } else {
        Issue.record("expected DeviceIOError.vfioUnavailable")
    }
    f.kernel.vfioPresent = true
    // Group already open elsewhere.
    let held = try f.kernel.open(f.tree.dev + "/vfio/7", flags: O_RDWR)
    #expect(throws: DeviceIOError.groupBusy(group: 7)) { try VFIODevice.open(devA, flow: .group, environment: f.env) }
    f.kernel.close(held)
    // Not bound to vfio-pci.
    f.tree.setDriver(devA, "e1000e")
    #expect(throws: DeviceIOError.wrongDriver(devA, driver: "e1000e", needed: "vfio-pci")) {
        try VFIODevice.open(devA, environment: f.env)
    }
    f.tree.setDriver(devA, "vfio-pci")
    // No IOMMU group.
    unlink(f.tree.devicePath(devA) + "/iommu_group")
    if case let .noIOMMU(_, reason)? = thrownError({ try VFIODevice.open(devA, flow: .group, environment: f.env) }) as? DeviceIOError {
        #expect(reason.contains("intel_iommu=on"))
    } else {
        Issue.record("expected DeviceIOError.noIOMMU")
    }
    // Permission.
    let denied = f.tree.environment(syscalls: FailingOpens(base: f.kernel, failures: ["/vfio/vfio": EACCES]))
    symlinkAt(f.tree.sysfs + "/kernel/iommu_groups/7", f.tree.devicePath(devA) + "/iommu_group")
    #expect(throws: DeviceIOError.permissionDenied(path: f.tree.dev + "/vfio/vfio", errno: EACCES)) {
        try VFIODevice.open(devA, flow: .group, environment: denied)
    }
    #expect(throws: DeviceIOError.noSuchDevice(devB)) { try VFIODevice.open(devB, environment: f.env) }
}

@Test func cdevFlowBindsAndAttaches() throws {
    let f = VFIOFixture(cdev: true)
    let dev = try VFIODevice.open(devA, flow: .automatic, environment: f.env)
    #expect(dev.flow == .cdev)
    #expect(f.kernel.log.contains("VFIO_DEVICE_BIND_IOMMUFD") && f.kernel.log.contains("IOMMU_IOAS_ALLOC")
        && f.kernel.log.contains("VFIO_DEVICE_ATTACH_IOMMUFD_PT"))
    #expect(!f.kernel.log.contains { $0.hasSuffix("/vfio/vfio") })
    #expect(try dev.configSpace().read16(PCIReg.vendorID) == 0x1af4)
}

@Test func cdevMissingFallsBackOrExplains() throws {
    // Kernel < 6.6: no vfio-dev/ in sysfs.
    let old = VFIOFixture(cdev: false)
    if case let .noDeviceCdev(_, reason)? = thrownError({ try VFIODevice.open(devA, flow: .cdev, environment: old.env) }) as? DeviceIOError {
        #expect(reason.contains("6.6"))
    } else {
        Issue.record("expected DeviceIOError.noDeviceCdev")
    }
    #expect(try VFIODevice.open(devA, flow: .automatic, environment: old.env).flow == .group)
    // Linux 6.1-6.5 (seen in the QEMU lab on Debian's 6.1): sysfs lists vfio-dev/vfio3, /dev has no
    // cdev. The reason says so; automatic falls back to the group flow.
    let sysfsOnly = VFIOFixture(cdev: true, cdevNode: false)
    if case let .noDeviceCdev(_, reason)? = thrownError({
        try VFIODevice.open(devA, flow: .cdev, environment: sysfsOnly.env)
    }) as? DeviceIOError {
        #expect(reason.contains("vfio-dev/vfio3") && reason.contains("CONFIG_VFIO_DEVICE_CDEV") && reason.contains("group flow"))
    } else {
        Issue.record("expected DeviceIOError.noDeviceCdev")
    }
    #expect(try VFIODevice.open(devA, flow: .automatic, environment: sysfsOnly.env).flow == .group)
    // cdev present but no /dev/iommu: automatic falls back to the group flow.
    let f = VFIOFixture(cdev: true)
    f.kernel.iommufdPresent = false
    #expect(throws: DeviceIOError.self) { try VFIODevice.open(devA, flow: .cdev, environment: f.env) }
    #expect(try VFIODevice.open(devA, flow: .automatic, environment: f.env).flow == .group)
}

@Test func cdevRefusesAccessBeforeBind() throws {
    let f = VFIOFixture(cdev: true)
    let fd = try f.kernel.open(f.tree.dev + "/vfio/devices/vfio3", flags: O_RDWR)
    var info = [UInt8](repeating: 0, count: 24)
    info.put32(24, at: 0)
    #expect(throws: SyscallError(EINVAL)) { try f.kernel.ioctl(fd, VFIO.Ioctl.deviceGetInfo, bytes: &info) }
    f.kernel.close(fd)
}

@Test func regionInfoRequeriesWithTheKernelsArgsz() throws {
    let f = VFIOFixture(msixMappable: true)
    f.kernel.add(FakeVFIODevice(address: devB, group: 8, config: ConfigBuilder().bytes))
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let before = f.kernel.state.withLock { $0.regionQueries }
    let bar0 = try dev.regionInfo(0)
    #expect(f.kernel.state.withLock { $0.regionQueries } - before == 2)  // 32 bytes, then 40
    #expect(bar0.msixMappable && bar0.flags.contains([.read, .write, .mmap, .caps]))
    #expect(bar0.size == 0x4000 && bar0.offset == 0)
    let bar2 = try dev.regionInfo(2)
    #expect(!bar2.msixMappable && bar2.sparseAreas == nil && bar2.offset == 2 << 40)
    let cfg = try dev.regionInfo(VFIO.Region.config)
    #expect(cfg.size == 4096 && !cfg.flags.contains(.mmap))
    #expect(try dev.regionInfo(1).size == 0)
    #expect(throws: DeviceIOError.self) { try dev.regionInfo(9) }
}

@Test func capabilityChainWithSparseMSIXAndType() throws {
    let f = VFIOFixture(msixMappable: true, sparse: [0..<0x2000, 0x3000..<0x4000])
    f.kernel.state.withLock { $0.devices[devA.description]!.typeCap[0] = (0x8000_10de, 1) }
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let r = try dev.regionInfo(0)
    #expect(r.sparseAreas == [0..<0x2000, 0x3000..<0x4000])
    #expect(r.msixMappable)
    #expect(r.type?.type == 0x8000_10de && r.type?.subtype == 1)
}

@Test func malformedCapabilityChainsAreRejected() throws {
    let f = VFIOFixture(sparse: [0..<0x1000])
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    f.kernel.regionFaults[0] = .loopingChain
    if case let .malformedReply(_, reason)? = thrownError({ try dev.regionInfo(0) }) as? DeviceIOError {
        #expect(reason.contains("loops"))
    } else {
        Issue.record("expected DeviceIOError.malformedReply")
    }
    f.kernel.regionFaults[0] = .nextOutsideReply
    if case let .malformedReply(_, reason)? = thrownError({ try dev.regionInfo(0) }) as? DeviceIOError {
        #expect(reason.contains("outside"))
    } else {
        Issue.record("expected DeviceIOError.malformedReply")
    }
    f.kernel.regionFaults[0] = .argszGrowsForever
    if case let .malformedReply(_, reason)? = thrownError({ try dev.regionInfo(0) }) as? DeviceIOError {
        #expect(reason.contains("keeps growing"))
    } else {
        Issue.record("expected DeviceIOError.malformedReply")
    }
}

@Test func regionParserGuardsCapabilityBodies() throws {
    var reply = [UInt8](repeating: 0, count: 48)
    reply.put32(48, at: 0)
    reply.put32(VFIO.RegionFlags([.read, .mmap, .caps]).rawValue, at: 4)
    reply.put32(32, at: 12)
    reply.put16(VFIO.RegionCapability.sparseMMap, at: 32)
    reply.put32(1000, at: 40)  // 1000 areas in 16 bytes
    #expect(throws: DeviceIOError.self) { try VFIORegionInfo.parse(reply, context: "t") }
    reply.put32(16, at: 12)  // capability inside the structure itself
    #expect(throws: DeviceIOError.self) { try VFIORegionInfo.parse(reply, context: "t") }
    #expect(throws: DeviceIOError.self) { try VFIORegionInfo.parse([0, 1, 2], context: "t") }
}

@Test func vfioConfigSpaceAndWritePolicy() throws {
    let f = VFIOFixture()
    do {
        let ro = try VFIODevice.open(devA, flow: .group, environment: f.env)
        let cfg = try ro.configSpace()
        #expect(cfg.readableSize == 4096 && !cfg.isWritable)
        #expect(try cfg.read32(0) == 0x1041_1af4)
        #expect(try cfg.capabilityList().first(PCICapabilityID.msix)?.offset == 0x40)
        if case let .notWritable(_, reason)? = thrownError({ try cfg.write16(PCIReg.command, 0) }) as? DeviceAccessError {
            #expect(reason.contains("read-only") && reason.contains("WriteIntent.allowWrites"))
        } else {
            Issue.record("read-only VFIO config accepted a write")
        }
    }
    // The group is free again once the device (and its config space) are released.
    let rw = try VFIODevice.open(devA, flow: .group, intent: .allowWrites, environment: f.env)
    let wcfg = try rw.configSpace()
    #expect(wcfg.isWritable)
    try wcfg.write8(PCIReg.interruptLine, 9)
    #expect(try wcfg.read8(PCIReg.interruptLine) == 9)
}

@Test func barsAndMSIXLayoutThroughVFIO() throws {
    let f = VFIOFixture()
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let bars = try dev.bars()
    #expect(bars[0].kind == .memory32 && bars[0].size == 0x4000)
    #expect(bars[2].kind == .memory64 && bars[2].prefetchable && bars[3].kind == .upperHalf(lower: 2))
    let layout = try #require(try dev.msixLayout())
    #expect(layout.tableBAR == 0 && layout.tableRange == 0x2000..<0x2400 && layout.pbaRange == 0x3000..<0x3008)
}

@Test func mappingPlans() {
    let page = 4096
    func region(_ size: UInt64, _ flags: VFIO.RegionFlags = [.read, .write, .mmap], mappable: Bool = false,
                sparse: [Range<UInt64>]? = nil) -> VFIORegionInfo {
        VFIORegionInfo(index: 0, flags: flags, size: size, offset: 0, sparseAreas: sparse, msixMappable: mappable)
    }
    // Mappable: whole BAR.
    var p = VFIOMappingPlan.make(region: region(0x4000, mappable: true), msixTable: 0x2000..<0x2400, pageSize: page)
    #expect(p.strategy == .whole && p.areas == [0..<0x4000])
    // Not mappable: around the table's page.
    p = VFIOMappingPlan.make(region: region(0x4000), msixTable: 0x2000..<0x2400, pageSize: page)
    #expect(p.strategy == .aroundMSIXTable && p.areas == [0..<0x2000, 0x3000..<0x4000])
    // Table at offset 0: only the piece after it.
    p = VFIOMappingPlan.make(region: region(0x4000), msixTable: 0..<0x100, pageSize: page)
    #expect(p.areas == [0x1000..<0x4000])
    // Table pages covering the whole BAR from 0: nothing mapped.
    p = VFIOMappingPlan.make(region: region(0x2000), msixTable: 0..<0x1800, pageSize: page)
    #expect(p.strategy == .none && p.areas.isEmpty && p.explanation.contains("cover the whole BAR"))
    // Table running to (or past) the end: no second piece.
    p = VFIOMappingPlan.make(region: region(0x4000), msixTable: 0x3800..<0x4800, pageSize: page)
    #expect(p.areas == [0..<0x3000])
    // Sparse areas win; unaligned ones are dropped; areas are clamped to the BAR.
    p = VFIOMappingPlan.make(region: region(0x4000, sparse: [0..<0x1000, 0x1800..<0x2000, 0x3000..<0x5000]),
                             msixTable: 0x2000..<0x2400, pageSize: page)
    #expect(p.strategy == .sparse && p.areas == [0..<0x1000, 0x3000..<0x4000])
    // No MMAP flag (I/O or sub-page BAR): pread/pwrite only.
    p = VFIOMappingPlan.make(region: region(0x100, [.read, .write]), msixTable: nil, pageSize: page)
    #expect(p.strategy == .none && p.areas.isEmpty)
    // Sub-page BAR that vfio-pci lets us map: one area, mapped as a whole page.
    p = VFIOMappingPlan.make(region: region(0x800), msixTable: nil, pageSize: page)
    #expect(p.strategy == .whole && p.areas == [0..<0x800])
    #expect(VFIOMappingPlan.make(region: region(0), msixTable: nil).strategy == .none)
}

@Test func mappableMSIXBARShowsTheRealTable() throws {
    let f = VFIOFixture(msixMappable: true)
    f.kernel.poke32(devA, bar: 0, 0x2008, 0x4021)  // entry 0 data
    f.kernel.poke32(devA, bar: 0, 0x200C, 1)       // entry 0 masked
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let bar = try dev.bar(0)
    #expect(bar.plan.strategy == .whole && bar.isMapped(0x2000..<0x2400))
    #expect(try bar.read32(0x2008) == 0x4021 && (try bar.read32(0x200C)) == 1)
}

@Test func unmappableMSIXBARReadsTableAsAllOnesThroughPread() throws {
    let f = VFIOFixture(msixMappable: false)
    f.kernel.poke32(devA, bar: 0, 0x2008, 0x4021)
    f.kernel.poke32(devA, bar: 0, 0x100, 0xABCD)
    f.kernel.poke32(devA, bar: 0, 0x3000, 0x5)
    let dev = try VFIODevice.open(devA, flow: .group, intent: .allowWrites, environment: f.env)
    let bar = try dev.bar(0)
    #expect(bar.plan.strategy == .aroundMSIXTable && bar.mappedRanges == [0..<0x2000, 0x3000..<0x4000])
    #expect(!bar.isMapped(0x2000..<0x2400))
    #expect(try bar.read32(0x100) == 0xABCD)        // mapped piece
    #expect(try bar.read32(0x3000) == 5)            // second piece (PBA)
    #expect(try bar.read32(0x2008) == 0xFFFF_FFFF)  // virtualized table (device still present)
    #expect(try bar.read64(0x2400) == 0)            // outside the table, not mapped: real bytes via pread
    try bar.write32(0x2008, 0x1234)                 // dropped by vfio-pci
    #expect(f.kernel.peek32(devA, bar: 0, 0x2008) == 0x4021)
    try bar.write32(0x2400, 0x77)
    #expect(f.kernel.peek32(devA, bar: 0, 0x2400) == 0x77)
    try bar.write32(0x10, 0x99)
    #expect(f.kernel.peek32(devA, bar: 0, 0x10) == 0x99)
    #expect(throws: DeviceAccessError.self) { try bar.read32(0x4000) }
    #expect(throws: DeviceAccessError.unaligned(bar.name, offset: 0x2402, width: 4)) { try bar.read32(0x2402) }
}

@Test func memoryDecodeOffGivesEIO() throws {
    let f = VFIOFixture(msixMappable: false)
    let dev = try VFIODevice.open(devA, flow: .group, intent: .allowWrites, environment: f.env)
    let bar = try dev.bar(0)
    #expect(try dev.memoryDecodeEnabled())
    f.kernel.setMemoryDecode(devA, false)
    #expect(try !dev.memoryDecodeEnabled())
    do {
        _ = try bar.read32(0x2400)
        Issue.record("read with decode off succeeded")
    } catch let e as DeviceAccessError {
        #expect(e.errno == .EIO && e.description.contains("Command.MEM"))
    }
    try dev.enableMemoryDecode()
    #expect(try bar.read32(0x2400) == 0)
}

@Test func deviceGoneThroughVFIO() throws {
    let f = VFIOFixture(msixMappable: false)
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let bar = try dev.bar(0)
    f.kernel.poke32(devA, bar: 0, 0x2400, 0xFFFF_FFFF)
    #expect(try bar.read32(0x2400) == 0xFFFF_FFFF)  // vendor ID still reads: a real all-ones value
    f.kernel.state.withLock { s in
        for i in 0..<4096 { s.devices[devA.description]!.config[i] = 0xFF }
    }
    #expect(throws: DeviceAccessError.deviceGone(bar.name)) { try bar.read32(0x2400) }
    #expect(throws: DeviceAccessError.self) { try dev.configSpace().read32(0x10) }
}

@Test func sparseBARMapsOnlyListedAreas() throws {
    let f = VFIOFixture(msixMappable: false, sparse: [0..<0x2000, 0x3000..<0x4000])
    let dev = try VFIODevice.open(devA, flow: .group, environment: f.env)
    let bar = try dev.bar(0)
    #expect(bar.plan.strategy == .sparse && bar.mappedRanges == [0..<0x2000, 0x3000..<0x4000])
    #expect(f.kernel.log.filter { $0.hasPrefix("mmap") } == ["mmap region 0 0x0+0x2000", "mmap region 0 0x3000+0x1000"])
}

@Test func deviceHandleOverVFIO() throws {
    let f = VFIOFixture()
    let h = try DeviceHandle.open(devA, intent: .allowWrites, environment: f.env)
    #expect(h.backend == .vfio(.group) && h.isWritable && h.vfio != nil)
    let layout = try #require(try h.msixLayout())
    let bar = try h.bar(layout.tableBAR)
    try bar.write32(layout.tableOffset + 12, 1)
    #expect(f.kernel.peek32(devA, bar: 0, 0x200C) == 1)
    let table = try h.msixTable(layout)
    #expect(table.isReal && table.note.contains("MSIX_MAPPABLE"))
}

@Test func msixTableAccessSaysWhenVFIOHidesTheTable() throws {
    let f = VFIOFixture(msixMappable: false)
    let h = try DeviceHandle.open(devA, environment: f.env)
    let layout = try #require(try h.msixLayout())
    let table = try h.msixTable(layout)
    #expect(!table.isReal && table.note.contains("0xFF") && table.note.contains("resource0"))
    #expect(try table.region.read32(layout.tableOffset) == 0xFFFF_FFFF)
    #expect(!h.isWritable)
    #expect(throws: DeviceAccessError.self) { try table.region.write32(layout.tableOffset + 12, 0) }
}

@Test(.enabled(if: msishim_have_vfio_header() != 0, "the build host has no <linux/vfio.h> to compare with"))
func uapiLayoutsMatchTheKernelHeader() {
    #expect(msishim_sizeof_vfio_region_info() == VFIO.Layout.regionInfoSize)
    #expect(msishim_offsetof_vfio_region_info_offset() == 24)
    #expect(msishim_sizeof_vfio_irq_info() == VFIO.Layout.irqInfoSize)
    #expect(msishim_offsetof_vfio_irq_set_data() == VFIO.Layout.irqSetHeaderSize)
    #expect(msishim_sizeof_vfio_info_cap_header() == VFIO.Layout.capHeaderSize)
    #expect(msishim_sizeof_vfio_region_sparse_mmap_area() == VFIO.Layout.sparseAreaSize)
    #expect(msishim_offsetof_sparse_areas() == VFIO.Layout.sparseHeaderSize)
    #expect(VFIO.Ioctl.getAPIVersion == 0x3B64 && VFIO.Ioctl.deviceSetIRQs == 0x3B6E)
    #expect(VFIO.Ioctl.deviceBindIOMMUFD == 0x3B76 && VFIO.Ioctl.iommuIOASAlloc == 0x3B81)
}
