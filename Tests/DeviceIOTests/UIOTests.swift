// UIO discovery and mapping on a fake sysfs tree, with a regular file standing for /dev/uioX.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import DeviceIO
import MSIShimCore

/// A device bound to uio_pci_generic whose UIO device maps BAR0 as map0 and BAR4 as map1
/// (BAR2 is 64-bit prefetchable, which uio_pci_generic skips).
func uioTree(maps: Bool = true) -> FakeTree {
    let tree = FakeTree()
    tree.add(FakeFunction(
        address: devA, driver: "uio_pci_generic", config: ConfigBuilder().bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags), 2: (0x8_0000_0000, 0x4000, mem64PrefetchFlags),
                                4: (0xfe20_0000, 0x2000, memFlags)]),
        resourceFiles: [2: [UInt8](repeating: 0x22, count: 0x4000)]))
    let uioDir = tree.devicePath(devA) + "/uio/uio0"
    makeDirectories(uioDir)
    writeText(uioDir + "/name", "uio_pci_generic\n")
    symlinkAt(uioDir, tree.sysfs + "/class/uio/uio0")
    symlinkAt(tree.devicePath(devA), uioDir + "/device")
    if maps {
        for (n, addr, size) in [(0, "0xfe000000", "0x1000"), (1, "0xfe200000", "0x2000")] {
            writeText(uioDir + "/maps/map\(n)/addr", addr + "\n")
            writeText(uioDir + "/maps/map\(n)/size", size + "\n")
            writeText(uioDir + "/maps/map\(n)/offset", "0x0\n")
            writeText(uioDir + "/maps/map\(n)/name", "BAR\(n == 0 ? 0 : 4)\n")
        }
    }
    // /dev/uio0: map N lives at N × page size.
    var dev = [UInt8](repeating: 0, count: 4096 + 0x2000)
    dev.put32(0xAAAA_0000, at: 0x10)          // map0 = BAR0
    dev.put32(0xBBBB_0004, at: 4096 + 0x1004) // map1 = BAR4
    writeBytes(tree.dev + "/uio0", dev)
    return tree
}

@Test func uioDiscoversMapsAndMatchesBARsByAddress() throws {
    let tree = uioTree()
    let uio = try UIODevice(devA, environment: tree.environment())
    #expect(uio.uioName == "uio0" && uio.driverName == "uio_pci_generic")
    #expect(uio.maps.map(\.index) == [0, 1])
    #expect(uio.maps[1] == UIOMap(index: 1, name: "BAR4", address: 0xfe20_0000, size: 0x2000, offset: 0))
    #expect(try uio.map(forBAR: 4).index == 1)  // map index ≠ BAR index
    let bar0 = try uio.mapBAR(0)
    #expect(try bar0.read32(0x10) == 0xAAAA_0000 && bar0.size == 0x1000)
    let bar4 = try uio.mapBAR(4, intent: .allowWrites)
    #expect(bar4.isWritable && bar4.name.contains("uio0 map1"))
    #expect(try bar4.read32(0x1004) == 0xBBBB_0004)
    try bar4.write32(0x1008, 0x600D)
    #expect(fileBytes(tree.dev + "/uio0").u32(at: 4096 + 0x1008) == 0x600D)
    #expect(throws: DeviceIOError.uioBARNotMapped(devA, bar: 2, uio: "uio0")) { try uio.mapBAR(2) }
}

@Test func uioFoundThroughClassLinkToo() throws {
    let tree = uioTree()
    // Only the class link remains (older layouts).
    let under = tree.devicePath(devA) + "/uio"
    let moved = tree.dir.path + "/uio0-real"
    rename(under + "/uio0", moved)
    symlinkAt(moved, tree.sysfs + "/class/uio/uio0")
    symlinkAt(tree.devicePath(devA), moved + "/device")
    let uio = try UIODevice(devA, environment: tree.environment())
    #expect(uio.uioName == "uio0" && uio.maps.count == 2)
}

@Test func uioWithoutMapsAndWithoutDevice() throws {
    let tree = uioTree(maps: false)
    let uio = try UIODevice(devA, environment: tree.environment())
    #expect(throws: DeviceIOError.uioNoMaps(devA, uio: "uio0")) { try uio.mapBAR(0) }
    #expect(DeviceIOError.uioNoMaps(devA, uio: "uio0").description.contains("resourceN"))
    tree.add(FakeFunction(address: devB, driver: "virtio-pci", config: ConfigBuilder().bytes))
    #expect(throws: DeviceIOError.uioNotFound(devB)) { try UIODevice(devB, environment: tree.environment()) }
}

@Test func uioWritesRefusedWhenNotOwnedByUIO() throws {
    let tree = uioTree()
    let uio = try UIODevice(devA, environment: tree.environment())
    tree.setDriver(devA, "nvme")
    let r = try uio.mapBAR(0, intent: .allowWrites)
    #expect(!r.isWritable)
    #expect(throws: DeviceAccessError.self) { try r.write32(0, 1) }
}

@Test func deviceHandleOverUIOFallsBackToResourceFiles() throws {
    let tree = uioTree()
    let handle = try DeviceHandle.open(devA, intent: .allowWrites, environment: tree.environment())
    #expect(handle.backend == .uio("uio0") && handle.isWritable && handle.config.isWritable)
    #expect(try handle.bar(0).read32(0x10) == 0xAAAA_0000)
    // BAR2 is not a UIO map: the handle uses resource2.
    let bar2 = try handle.bar(2)
    #expect(bar2.name.contains("sysfs resource2"))
    #expect(try bar2.read32(0) == 0x2222_2222)
    #expect(try handle.msixLayout() == nil)
}
