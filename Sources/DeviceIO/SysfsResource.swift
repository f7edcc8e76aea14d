// BARs through sysfs `resourceN` (and `resourceN_wc`): mmap of the attribute file, which the
// kernel maps straight onto the BAR. Root only; the kernel refuses when lockdown is on or a
// driver holds the BAR exclusively.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// Opens BARs through sysfs `resourceN` files.
public enum SysfsBAR {
    /// Maps BAR `index` of `address` as an `MMIORegion`.
    ///
    /// - Parameters:
    ///   - address: the function.
    ///   - index: the BAR register index (0…5).
    ///   - writeCombining: map `resourceN_wc` when the BAR is prefetchable and the file
    ///     exists, falling back to `resourceN` (uncached) otherwise; the region's name says
    ///     which was used. Never ask for it for MSI-X structures (they need uncached access).
    ///   - intent: ``WriteIntent/allowWrites`` maps read-write when the write policy grants it
    ///     (device bound to vfio-pci or uio_pci_generic); anything else maps read-only and the
    ///     region refuses writes, naming the owning driver.
    ///   - environment: where sysfs is, and the system calls to use.
    public static func map(
        _ address: PCIAddress, bar index: Int, writeCombining: Bool = false, intent: WriteIntent = .readOnly,
        environment: DeviceIOEnvironment = .live
    ) throws -> MappedRegion {
        let sysfs = environment.sysfs
        guard sysfs.exists(address) else { throw DeviceIOError.noSuchDevice(address) }
        guard (0...5).contains(index) else {
            throw DeviceIOError.barUnusable(address, bar: index, reason: "BAR index must be 0-5")
        }
        let bars = PCIBAR.fromSysfs(address, sysfs: sysfs) ?? []
        let bar = bars.first { $0.index == index } ?? PCIBAR(index: index, kind: .unimplemented)
        switch bar.kind {
        case .unimplemented:
            throw DeviceIOError.barUnusable(address, bar: index, reason: "not implemented (size 0)")
        case .upperHalf(let lower):
            throw DeviceIOError.barUnusable(address, bar: index, reason: "upper half of the 64-bit BAR\(lower)")
        case .io:
            throw DeviceIOError.barUnusable(
                address, bar: index, reason: "I/O-port BAR: it cannot be mmapped (read/write resource\(index) instead)")
        case .memory32, .memory64:
            break
        }
        let base = sysfs.devicePath(address) + "/resource\(index)"
        var path = base
        if writeCombining && bar.prefetchable && access(base + "_wc", F_OK) == 0 { path = base + "_wc" }
        let permission = WritePolicy.evaluate(address: address, sysfs: sysfs, intent: intent)
        let syscalls = environment.syscalls
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: permission.isGranted ? O_RDWR : O_RDONLY)
        } catch {
            if error.code == ENOENT {
                throw DeviceIOError.barUnusable(
                    address, bar: index, reason: "no \(path): this kernel exposes no BAR mmap files for it")
            }
            throw DeviceIOError.from(error, path: path, operation: "open")
        }
        let name = "\(address) BAR\(index) (sysfs \(path.split(separator: "/").last ?? ""))"
        do {
            return try MappedRegion.mapDescriptor(
                fd: fd, name: name, offset: 0, length: bar.size > 0 ? Int(bar.size) : nil,
                writeRefusal: permission.reason, syscalls: syscalls,
                presence: presence(of: address, environment: environment))
        } catch let error as DeviceAccessError {
            syscalls.close(fd)
            if case .system(_, let op, let e) = error, op.hasPrefix("mmap") {
                if e == EPERM || e == EACCES { throw DeviceIOError.permissionDenied(path: path, errno: e) }
                if e == EINVAL {
                    throw DeviceIOError.barUnusable(
                        address, bar: index, reason: "the kernel refused to map \(path) (EINVAL): a driver holds "
                            + "the BAR exclusively (CONFIG_IO_STRICT_DEVMEM; boot with iomem=relaxed to let root map it, "
                            + "or hand the device to vfio-pci/uio_pci_generic) or the range is not inside the BAR")
                }
            }
            throw error
        }
    }

    /// Whether `resourceN_wc` exists for the BAR (only prefetchable BARs have one).
    public static func hasWriteCombining(_ address: PCIAddress, bar index: Int, environment: DeviceIOEnvironment = .live) -> Bool {
        access(environment.sysfs.devicePath(address) + "/resource\(index)_wc", F_OK) == 0
    }

    /// Presence through the sysfs `config` file: gone when the directory vanished or the
    /// vendor ID reads 0xFFFF.
    static func presence(of address: PCIAddress, environment: DeviceIOEnvironment) -> DevicePresence {
        let sysfs = environment.sysfs
        let syscalls = environment.syscalls
        return DevicePresence {
            guard let fd = try? syscalls.open(sysfs.devicePath(address) + "/config", flags: O_RDONLY) else { return false }
            defer { syscalls.close(fd) }
            var vendor: UInt16 = 0xFFFF
            let n = withUnsafeMutableBytes(of: &vendor) { (try? syscalls.pread(fd, into: $0, at: 0)) ?? 0 }
            return n == 2 && UInt16(littleEndian: vendor) != 0xFFFF
        }
    }
}
