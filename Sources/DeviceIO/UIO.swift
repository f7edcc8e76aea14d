// UIO (uio_pci_generic and friends): /sys/class/uio/uioX/maps/mapN/{name,addr,size,offset}
// describe memory maps; mmap of /dev/uioX with offset N × page size selects map N, and the
// data starts `offset` bytes into that mapping. Map N is not BAR N (uio_pci_generic skips
// 64-bit and prefetchable BARs), so BARs are matched by bus address.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore
import PCIAccess

/// One memory map a UIO device exports.
public struct UIOMap: Hashable, Sendable {
    /// N in `mapN` (the mmap selector: offset N × page size).
    public var index: Int
    /// The map's `name` attribute (uio_pci_generic uses e.g. `BAR0`), if any.
    public var name: String?
    /// Physical (bus) address of the map.
    public var address: UInt64
    /// Size in bytes.
    public var size: Int
    /// Where the data starts inside the page-aligned mapping.
    public var offset: Int

    /// Creates a map description.
    public init(index: Int, name: String?, address: UInt64, size: Int, offset: Int) {
        self.index = index
        self.name = name
        self.address = address
        self.size = size
        self.offset = offset
    }
}

/// A UIO device bound to a PCI function.
public struct UIODevice: Sendable {
    /// The PCI function.
    public var address: PCIAddress
    /// The UIO name, `uioX`.
    public var uioName: String
    /// The exported memory maps (may be empty).
    public var maps: [UIOMap]
    /// The UIO driver's name (`name` attribute, e.g. `uio_pci_generic`).
    public var driverName: String?
    let environment: DeviceIOEnvironment

    /// Finds the UIO device of `address`: `<dev>/uio/uioX` in sysfs, or else a
    /// `class/uio/uioX/device` link pointing at the function.
    public init(_ address: PCIAddress, environment: DeviceIOEnvironment = .live) throws(DeviceIOError) {
        let sysfs = environment.sysfs
        guard sysfs.exists(address) else { throw .noSuchDevice(address) }
        var name = listDirectory(sysfs.devicePath(address) + "/uio").filter { $0.hasPrefix("uio") }.sorted().first
        if name == nil {
            name = listDirectory(sysfs.root + "/class/uio").sorted().first { uio in
                readLinkBasename(sysfs.root + "/class/uio/" + uio + "/device") == address.description
            }
        }
        guard let name else { throw .uioNotFound(address) }
        self.address = address
        self.uioName = name
        self.environment = environment
        let dir = UIODevice.classDirectory(name, address: address, sysfs: sysfs)
        self.driverName = readText(dir + "/name")?.trimmingWhitespace()
        self.maps = UIODevice.readMaps(dir + "/maps")
    }

    /// The sysfs directory of the UIO device (`class/uio/uioX`, or under the PCI device).
    static func classDirectory(_ name: String, address: PCIAddress, sysfs: SysfsPCI) -> String {
        let viaClass = sysfs.root + "/class/uio/" + name
        if access(viaClass, F_OK) == 0 { return viaClass }
        return sysfs.devicePath(address) + "/uio/" + name
    }

    static func readMaps(_ dir: String) -> [UIOMap] {
        listDirectory(dir).compactMap { entry -> UIOMap? in
            guard entry.hasPrefix("map"), let n = Int(entry.dropFirst(3)) else { return nil }
            let base = dir + "/" + entry + "/"
            func number(_ attr: String) -> UInt64? {
                guard let t = readText(base + attr)?.trimmingWhitespace() else { return nil }
                return t.hasPrefix("0x") ? UInt64(t.dropFirst(2), radix: 16) : UInt64(t)
            }
            guard let addr = number("addr"), let size = number("size"), size > 0 else { return nil }
            return UIOMap(
                index: n, name: readText(base + "name")?.trimmingWhitespace(), address: addr, size: Int(size),
                offset: Int(number("offset") ?? 0))
        }.sorted { $0.index < $1.index }
    }

    /// The map holding BAR `index`, matched by bus address against sysfs `resource`.
    public func map(forBAR index: Int) throws(DeviceIOError) -> UIOMap {
        guard !maps.isEmpty else { throw .uioNoMaps(address, uio: uioName) }
        let bars = PCIBAR.fromSysfs(address, sysfs: environment.sysfs) ?? []
        guard let bar = bars.first(where: { $0.index == index }), bar.isMemory else {
            throw .barUnusable(address, bar: index, reason: "not a memory BAR")
        }
        guard let m = maps.first(where: { $0.address == bar.start }) else {
            throw .uioBARNotMapped(address, bar: index, uio: uioName)
        }
        return m
    }

    /// Maps BAR `index` through `/dev/uioX`.
    ///
    /// Writable only with ``WriteIntent/allowWrites`` while the function is bound to
    /// uio_pci_generic (the write policy). The region is the BAR's bytes covered by the map
    /// (`min(map size, BAR size)`).
    public func mapBAR(_ index: Int, intent: WriteIntent = .readOnly) throws -> MappedRegion {
        let m = try map(forBAR: index)
        let permission = WritePolicy.evaluate(address: address, sysfs: environment.sysfs, intent: intent)
        let path = environment.uioDevicePath(uioName)
        let syscalls = environment.syscalls
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: permission.isGranted ? O_RDWR : O_RDONLY)
        } catch {
            throw DeviceIOError.from(error, path: path, operation: "open")
        }
        do {
            return try MappedRegion.mapDescriptor(
                fd: fd, name: "\(address) BAR\(index) (\(uioName) map\(m.index))", offset: m.offset, length: m.size,
                writeRefusal: permission.reason, syscalls: syscalls,
                presence: SysfsBAR.presence(of: address, environment: environment),
                mapOffset: Int64(m.index * systemPageSize))
        } catch {
            syscalls.close(fd)
            throw error
        }
    }
}
