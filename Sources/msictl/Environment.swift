// Where msictl finds the kernel: the live system, unless MSICTL_SYSFS_ROOT, MSICTL_PROC_ROOT,
// MSICTL_DEV_ROOT or MSICTL_STATE_DIR point it elsewhere (the tests' fake trees). The
// libraries read no environment variables; this is the one place that does.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO

extension DeviceIOEnvironment {
    /// The live system with the roots msictl's environment variables override.
    static var msictl: DeviceIOEnvironment {
        func value(_ name: String) -> String? {
            guard let raw = getenv(name) else { return nil }
            let text = String(cString: raw)
            return text.isEmpty ? nil : text
        }
        let live = DeviceIOEnvironment.live
        return DeviceIOEnvironment(
            sysfsRoot: value("MSICTL_SYSFS_ROOT") ?? live.sysfs.root,
            devRoot: value("MSICTL_DEV_ROOT") ?? live.devRoot,
            procRoot: value("MSICTL_PROC_ROOT") ?? live.procRoot)
    }

    /// Where `msictl bind` records original drivers for `unbind --restore`: `/run/msictl` (tmpfs,
    /// gone at reboot like `driver_override` itself) unless MSICTL_STATE_DIR says otherwise.
    static var msictlStateDirectory: String {
        guard let raw = getenv("MSICTL_STATE_DIR"), raw.pointee != 0 else { return "/run/msictl" }
        return String(cString: raw)
    }
}
