// A small libudev wrapper: PCI device lookup (driver, modalias) and a hotplug monitor.
//
// libudev objects are not thread-safe; each wrapper confines its object behind a Mutex.
// Lookups read sysfs through libudev and work without a running udevd; the monitor's
// `.udev` source needs udevd (it relays processed events), `.kernel` takes the kernel's
// uevents directly.
#if canImport(Glibc)
import Glibc
#endif
import CUdev
public import MSIShimCore

/// A failed libudev call.
public struct UdevError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// The libudev call that failed.
    public var operation: String
    /// The errno it left.
    public var code: Int32

    /// An error for `operation` with `code`.
    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var errno: KernelErrno? { KernelErrno(code: code) }
    public var description: String { "libudev: \(operation) failed: \(KernelErrno.describe(code))" }
}

/// A PCI device as udev sees it.
public struct UdevPCIDevice: Hashable, Sendable {
    /// The function's address.
    public var address: PCIAddress
    /// The device's path in sysfs.
    public var syspath: String
    /// Bound driver, nil when unbound.
    public var driver: String?
    /// The `MODALIAS` the kernel matches drivers against.
    public var modalias: String?
}

/// An opaque libudev pointer. Sendable only so Mutex-protected state can be; it is used
/// only while its owner's lock is held.
private struct UdevHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A `struct udev` context.
public final class UdevContext: Sendable {
    private let udev: PackageMutex<UdevHandle>

    /// A new libudev context (`udev_new`).
    public init() throws(UdevError) {
        guard let u = udev_new() else { throw UdevError(operation: "udev_new", code: errno == 0 ? ENOMEM : errno) }
        udev = PackageMutex(UdevHandle(pointer: u))
    }

    deinit {
        udev.withLock { _ = udev_unref($0.pointer) }
    }

    /// The device at `address`, or nil when sysfs has no such device.
    public func device(_ address: PCIAddress) -> UdevPCIDevice? {
        // Hand libudev the real device path (one readlink here): it verifies a syspath
        // component by component, and the bus/pci/devices link would add a dozen steps.
        let link = "/sys/bus/pci/devices/" + address.description
        let syspath = resolveSymlink(link) ?? link
        return udev.withLock { u -> UdevPCIDevice? in
            guard let d = udev_device_new_from_syspath(u.pointer, syspath)
                ?? udev_device_new_from_subsystem_sysname(u.pointer, "pci", address.description)
            else { return nil }
            defer { udev_device_unref(d) }
            return UdevPCIDevice(
                address: address,
                syspath: udev_device_get_syspath(d).map { String(cString: $0) } ?? "",
                driver: udev_device_get_driver(d).map { String(cString: $0) },
                modalias: udev_device_get_property_value(d, "MODALIAS").map { String(cString: $0) })
        }
    }

    /// The bound driver's name, nil when unbound or absent.
    public func driver(of address: PCIAddress) -> String? {
        device(address)?.driver
    }

    fileprivate func withHandle<R>(_ body: (OpaquePointer) -> R) -> R {
        udev.withLock { body($0.pointer) }
    }
}

/// What happened to a device.
public enum UdevAction: Hashable, Sendable, CustomStringConvertible {
    /// A device appeared.
    case add
    /// A device went away.
    case remove
    /// A device's attributes changed.
    case change
    /// A device was renamed or moved in the tree.
    case move
    /// A driver bound to the device.
    case bind
    /// The device's driver unbound.
    case unbind
    /// A device was brought online.
    case online
    /// A device was taken offline.
    case offline
    /// An action this type does not name.
    case other(String)

    /// The action a uevent's `ACTION` text names.
    public init(_ text: String) {
        switch text {
        case "add": self = .add
        case "remove": self = .remove
        case "change": self = .change
        case "move": self = .move
        case "bind": self = .bind
        case "unbind": self = .unbind
        case "online": self = .online
        case "offline": self = .offline
        default: self = .other(text)
        }
    }

    public var description: String {
        switch self {
        case .add: "add"
        case .remove: "remove"
        case .change: "change"
        case .move: "move"
        case .bind: "bind"
        case .unbind: "unbind"
        case .online: "online"
        case .offline: "offline"
        case .other(let s): s
        }
    }
}

/// One PCI uevent.
public struct UdevPCIEvent: Hashable, Sendable {
    /// What happened.
    public var action: UdevAction
    /// nil when the device name is not a PCI address.
    public var address: PCIAddress?
    /// The device's path in sysfs.
    public var syspath: String
    /// The bound driver after the event, when the event carries one.
    public var driver: String?
}

/// Watches PCI hotplug and driver bind/unbind events.
public final class UdevPCIMonitor: Sendable {
    /// `.udev`: events after udevd processed them (needs udevd). `.kernel`: raw kernel uevents.
    public enum Source: String, Sendable {
        /// Events after udevd processed them.
        case udev
        /// The kernel's own uevents, without udevd.
        case kernel
    }

    private let context: UdevContext
    private let monitor: PackageMutex<UdevHandle>
    /// The monitor's socket, for callers that poll several descriptors.
    public let fileDescriptor: Int32

    /// Starts listening for PCI events from `source` (with a new context unless one is given).
    public init(context: UdevContext? = nil, source: Source = .udev) throws(UdevError) {
        let ctx: UdevContext
        if let context { ctx = context } else { ctx = try UdevContext() }
        self.context = ctx
        let made: Result<OpaquePointer, UdevError> = ctx.withHandle { u in
            guard let m = udev_monitor_new_from_netlink(u, source.rawValue) else {
                return .failure(UdevError(operation: "udev_monitor_new_from_netlink(\(source.rawValue))", code: errno == 0 ? EINVAL : errno))
            }
            var r = udev_monitor_filter_add_match_subsystem_devtype(m, "pci", nil)
            if r < 0 {
                udev_monitor_unref(m)
                return .failure(UdevError(operation: "udev_monitor_filter_add_match_subsystem_devtype", code: -r))
            }
            r = udev_monitor_enable_receiving(m)
            if r < 0 {
                udev_monitor_unref(m)
                return .failure(UdevError(operation: "udev_monitor_enable_receiving", code: -r))
            }
            return .success(m)
        }
        let m = try made.get()
        fileDescriptor = udev_monitor_get_fd(m)
        monitor = PackageMutex(UdevHandle(pointer: m))
    }

    deinit {
        monitor.withLock { _ = udev_monitor_unref($0.pointer) }
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for the next PCI event; nil on timeout.
    public func next(timeoutMilliseconds: Int32) throws(UdevError) -> UdevPCIEvent? {
        var pfd = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        let deadline = timeoutMilliseconds < 0 ? nil : monotonicMilliseconds() + Int64(timeoutMilliseconds)
        while true {
            let wait = deadline.map { Int32(clamping: max(0, $0 - monotonicMilliseconds())) } ?? -1
            let r = poll(&pfd, 1, wait)
            if r < 0 {
                if errno == EINTR { continue }
                throw UdevError(operation: "poll", code: errno)
            }
            if r == 0 { return nil }
            let event: UdevPCIEvent? = monitor.withLock { m in
                guard let d = udev_monitor_receive_device(m.pointer) else { return nil }
                defer { udev_device_unref(d) }
                let name = udev_device_get_sysname(d).map { String(cString: $0) } ?? ""
                return UdevPCIEvent(
                    action: UdevAction(udev_device_get_action(d).map { String(cString: $0) } ?? ""),
                    address: try? PCIAddress(parsing: name),
                    syspath: udev_device_get_syspath(d).map { String(cString: $0) } ?? "",
                    driver: udev_device_get_driver(d).map { String(cString: $0) })
            }
            if let event { return event }
            // Readable but nothing for us (filtered out or truncated): wait for the rest.
        }
    }
}

private func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The absolute, normalised target of a symlink (one level), or nil if `path` is not a link.
func resolveSymlink(_ path: String) -> String? {
    guard let target = readLinkTarget(path) else { return nil }
    var parts: [Substring] = target.hasPrefix("/") ? [] : path.split(separator: "/").dropLast()
    for component in target.split(separator: "/") {
        switch component {
        case ".": continue
        case "..": if !parts.isEmpty { parts.removeLast() }
        default: parts.append(component)
        }
    }
    return "/" + parts.joined(separator: "/")
}
