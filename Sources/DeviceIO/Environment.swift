// Where the device-I/O layer finds the kernel: sysfs, /dev and /proc, plus the system calls.
// Everything is injectable so tests run on a fake tree.
public import PCIAccess

/// The roots and system calls the device-I/O layer works with.
///
/// The library reads no environment variables: a caller that lets its user point it at another
/// tree (msictl's `MSICTL_SYSFS_ROOT` and friends, the tests' fake trees) builds the environment
/// itself and passes it in. ``live`` is the running system at its standard places.
public struct DeviceIOEnvironment: Sendable {
    /// The system calls (the kernel, or a fake).
    public var syscalls: any SystemCalls
    /// The sysfs reader, rooted at the sysfs mount point.
    public var sysfs: SysfsPCI
    /// The devtmpfs mount point, `/dev` on a live system.
    public var devRoot: String
    /// The procfs mount point, `/proc` on a live system.
    public var procRoot: String

    /// Creates an environment from explicit parts.
    public init(
        syscalls: any SystemCalls = LinuxSystemCalls(), sysfsRoot: String = "/sys", devRoot: String = "/dev",
        procRoot: String = "/proc"
    ) {
        self.syscalls = syscalls
        self.sysfs = SysfsPCI(root: sysfsRoot)
        self.devRoot = devRoot
        self.procRoot = procRoot
    }

    /// The running system: `/sys`, `/dev`, `/proc`, the real system calls.
    public static var live: DeviceIOEnvironment { DeviceIOEnvironment() }

    /// `<devRoot>/vfio/vfio`, the legacy container.
    public var vfioContainerPath: String { devRoot + "/vfio/vfio" }
    /// `<devRoot>/vfio/<group>`.
    public func vfioGroupPath(_ group: Int) -> String { devRoot + "/vfio/\(group)" }
    /// `<devRoot>/vfio/devices/<name>` (the per-device cdev, Linux 6.6+).
    public func vfioDeviceCdevPath(_ name: String) -> String { devRoot + "/vfio/devices/" + name }
    /// `<devRoot>/iommu`, the iommufd character device.
    public var iommufdPath: String { devRoot + "/iommu" }
    /// `<devRoot>/<uioName>`.
    public func uioDevicePath(_ name: String) -> String { devRoot + "/" + name }
}
