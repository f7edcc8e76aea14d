// Errors of opening things (BARs, VFIO devices, UIO maps). Errors of individual accesses
// are MSIShimCore's DeviceAccessError.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore
public import PCIAccess

/// Why a device, BAR, VFIO object or UIO map could not be opened. Every message says what
/// happened and why; what to type about it is the caller's to add (msictl does).
public enum DeviceIOError: ErrnoCarrying, Equatable, Sendable, CustomStringConvertible {
    /// The device is not in sysfs (wrong address, or removed).
    case noSuchDevice(PCIAddress)
    /// `open`/`mmap`/`ioctl` said EACCES (not root) or EPERM (refused even to root).
    case permissionDenied(path: String, errno: Int32)
    /// Another system call failed.
    case system(operation: String, errno: Int32)
    /// The BAR cannot be mapped (I/O, unimplemented, upper half of a 64-bit BAR, …).
    case barUnusable(PCIAddress, bar: Int, reason: String)
    /// The device is not bound to the driver this backend needs.
    case wrongDriver(PCIAddress, driver: String?, needed: String)
    /// VFIO is missing or unusable on this kernel.
    case vfioUnavailable(reason: String)
    /// The device has no IOMMU group / the container offers no usable IOMMU type.
    case noIOMMU(PCIAddress, reason: String)
    /// The IOMMU group has members bound to kernel drivers.
    case groupNotViable(group: Int, device: PCIAddress, blockers: [GroupMember])
    /// `/dev/vfio/<group>` is already open in another process.
    case groupBusy(group: Int)
    /// The per-device VFIO cdev flow is unavailable (kernel < 6.6, or no iommufd).
    case noDeviceCdev(PCIAddress, reason: String)
    /// A VFIO/iommufd ioctl failed.
    case ioctlFailed(String, errno: Int32, context: String)
    /// The kernel's (or a fake's) reply breaks the uAPI: capability chains that loop or leave
    /// the buffer, argsz that keeps growing, …
    case malformedReply(String, reason: String)
    /// No UIO device belongs to the PCI function.
    case uioNotFound(PCIAddress)
    /// The UIO device exports no memory maps.
    case uioNoMaps(PCIAddress, uio: String)
    /// No UIO map matches the BAR's bus address.
    case uioBARNotMapped(PCIAddress, bar: Int, uio: String)
    /// An interrupt call made no sense in the current state (vector out of range, index off).
    case interrupt(String)

    public var errno: KernelErrno? {
        switch self {
        case .noSuchDevice, .uioNotFound, .vfioUnavailable, .noDeviceCdev, .noIOMMU: .ENODEV
        case .permissionDenied(_, let e), .system(_, let e), .ioctlFailed(_, let e, _): KernelErrno(code: e)
        case .barUnusable, .malformedReply, .uioBARNotMapped, .interrupt, .wrongDriver, .groupNotViable: .EINVAL
        case .groupBusy: .EBUSY
        case .uioNoMaps: .ENOENT
        }
    }

    public var description: String {
        switch self {
        case .noSuchDevice(let a):
            return "\(a): no such PCI device in sysfs (removed, or a wrong address)"
        case let .permissionDenied(path, e):
            return "\(path): \(KernelErrno.describeWithReason(e))"
        case let .system(op, e):
            return "\(op) failed: \(KernelErrno.describe(e))"
        case let .barUnusable(a, bar, reason):
            return "\(a) BAR\(bar): \(reason)"
        case let .wrongDriver(a, driver, needed):
            return "\(a) is \(driver.map { "bound to \($0)" } ?? "not bound to any driver"), not \(needed)"
        case .vfioUnavailable(let reason):
            return "VFIO unavailable: \(reason)"
        case let .noIOMMU(a, reason):
            return "\(a): no usable IOMMU: \(reason)"
        case let .groupNotViable(group, device, blockers):
            let list = blockers.map { "\($0.address) is \($0.driver.map { "bound to \($0)" } ?? "unbound")" }
            return "IOMMU group \(group) of \(device) is not viable: every device in the group must be bound to "
                + "vfio-pci (or pci-stub, or to no driver), but " + list.joined(separator: ", ")
        case .groupBusy(let group):
            return "VFIO group \(group) is already open in another process (QEMU, DPDK, another user of this "
                + "library?); a group can be opened once"
        case let .noDeviceCdev(a, reason):
            return "\(a): no VFIO device cdev: \(reason)"
        case let .ioctlFailed(name, e, context):
            return "\(name) failed: \(KernelErrno.describe(e))\(context.isEmpty ? "" : " (\(context))")"
                + (KernelErrno.refusalReason(e).map { "; " + $0 } ?? "")
        case let .malformedReply(name, reason):
            return "\(name): malformed reply: \(reason)"
        case .uioNotFound(let a):
            return "\(a) has no UIO device: it is not bound to uio_pci_generic"
        case let .uioNoMaps(a, uio):
            return "\(a): \(uio) exports no memory maps (uio_pci_generic on many kernels maps no BARs); "
                + "use the sysfs resourceN files instead"
        case let .uioBARNotMapped(a, bar, uio):
            return "\(a): no map of \(uio) has BAR\(bar)'s bus address (uio_pci_generic maps only plain 32-bit "
                + "non-prefetchable BARs, at most 5); use the sysfs resource\(bar) file instead"
        case .interrupt(let reason):
            return reason
        }
    }

    /// Maps a failed system call on `path` to an error, singling out permission problems.
    static func from(_ error: SyscallError, path: String, operation: String) -> DeviceIOError {
        if error.code == EACCES || error.code == EPERM { return .permissionDenied(path: path, errno: error.code) }
        return .system(operation: "\(operation) \(path)", errno: error.code)
    }
}
