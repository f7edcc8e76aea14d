// Where the device-I/O layer finds the kernel: sysfs, /dev, /proc and its own state
// directory, plus the system calls. Everything is injectable so tests run on a fake tree.
#if canImport(Glibc)
import Glibc
#endif
public import PCIAccess

/// The roots and system calls the device-I/O layer works with.
///
/// ``live`` reads the roots from environment variables so the CLI can be pointed at a fake
/// tree: `MSICTL_SYSFS_ROOT` (default `/sys`), `MSICTL_DEV_ROOT` (`/dev`), `MSICTL_PROC_ROOT`
/// (`/proc`) and `MSICTL_STATE_DIR` (`/run/msictl`, where `msictl bind` remembers original
/// drivers for `unbind --restore`).
public struct DeviceIOEnvironment: Sendable {
    /// The system calls (the kernel, or a fake).
    public var syscalls: any SystemCalls
    /// The sysfs reader, rooted at the sysfs mount point.
    public var sysfs: SysfsPCI
    /// The devtmpfs mount point, `/dev` on a live system.
    public var devRoot: String
    /// The procfs mount point, `/proc` on a live system.
    public var procRoot: String
    /// Where bind state (original drivers) is kept.
    public var stateDirectory: String

    /// Creates an environment from explicit parts.
    public init(
        syscalls: any SystemCalls = LinuxSystemCalls(), sysfsRoot: String = "/sys", devRoot: String = "/dev",
        procRoot: String = "/proc", stateDirectory: String = "/run/msictl"
    ) {
        self.syscalls = syscalls
        self.sysfs = SysfsPCI(root: sysfsRoot)
        self.devRoot = devRoot
        self.procRoot = procRoot
        self.stateDirectory = stateDirectory
    }

    /// The live system, with roots overridable through `MSICTL_*` environment variables.
    public static var live: DeviceIOEnvironment {
        func env(_ name: String, _ fallback: String) -> String {
            guard let value = getenv(name) else { return fallback }
            let text = String(cString: value)
            return text.isEmpty ? fallback : text
        }
        return DeviceIOEnvironment(
            sysfsRoot: env("MSICTL_SYSFS_ROOT", "/sys"), devRoot: env("MSICTL_DEV_ROOT", "/dev"),
            procRoot: env("MSICTL_PROC_ROOT", "/proc"), stateDirectory: env("MSICTL_STATE_DIR", "/run/msictl"))
    }

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
