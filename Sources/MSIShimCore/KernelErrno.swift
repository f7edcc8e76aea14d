/// The Linux errno values this package reports, with their kernel names.
///
/// Errors thrown by every layer carry one of these where the kernel has a matching code, so
/// a caller (and `msictl --json`) can report `EBUSY` exactly where Linux would.
/// `ENOTSUPP` (524) is kernel-internal and has no userspace `<errno.h>` name; the kernel's
/// PCI/MSI code returns it, so the model does too.
public enum KernelErrno: Int32, Sendable, Hashable, CaseIterable, CustomStringConvertible, Codable {
    case EPERM = 1
    case ENOENT = 2
    case EIO = 5
    case ENXIO = 6
    case E2BIG = 7
    case EBADF = 9
    case EAGAIN = 11
    case ENOMEM = 12
    case EACCES = 13
    case EFAULT = 14
    case EBUSY = 16
    case EEXIST = 17
    case ENODEV = 19
    case EINVAL = 22
    case ENOSPC = 28
    case ERANGE = 34
    case ENOSYS = 38
    case ENOTTY = 25
    case EOPNOTSUPP = 95
    case ENOTSUPP = 524

    /// Maps a raw errno (as `errno` or a negative kernel return) to a known name, if any.
    public init?(code: Int32) {
        self.init(rawValue: code < 0 ? -code : code)
    }

    /// The symbolic name, e.g. `"EBUSY"`.
    public var name: String {
        switch self {
        case .EPERM: "EPERM"
        case .ENOENT: "ENOENT"
        case .EIO: "EIO"
        case .ENXIO: "ENXIO"
        case .E2BIG: "E2BIG"
        case .EBADF: "EBADF"
        case .EAGAIN: "EAGAIN"
        case .ENOMEM: "ENOMEM"
        case .EACCES: "EACCES"
        case .EFAULT: "EFAULT"
        case .EBUSY: "EBUSY"
        case .EEXIST: "EEXIST"
        case .ENODEV: "ENODEV"
        case .EINVAL: "EINVAL"
        case .ENOSPC: "ENOSPC"
        case .ERANGE: "ERANGE"
        case .ENOSYS: "ENOSYS"
        case .ENOTTY: "ENOTTY"
        case .EOPNOTSUPP: "EOPNOTSUPP"
        case .ENOTSUPP: "ENOTSUPP"
        }
    }

    public var description: String { name }

    /// A short human explanation, as `strerror` would give (ENOTSUPP has none there).
    public var message: String {
        switch self {
        case .EPERM: "operation not permitted"
        case .ENOENT: "no such file or directory"
        case .EIO: "input/output error"
        case .ENXIO: "no such device or address"
        case .E2BIG: "argument list too long"
        case .EBADF: "bad file descriptor"
        case .EAGAIN: "resource temporarily unavailable"
        case .ENOMEM: "cannot allocate memory"
        case .EACCES: "permission denied"
        case .EFAULT: "bad address"
        case .EBUSY: "device or resource busy"
        case .EEXIST: "file exists"
        case .ENODEV: "no such device"
        case .EINVAL: "invalid argument"
        case .ENOSPC: "no space left"
        case .ERANGE: "result out of range"
        case .ENOSYS: "function not implemented"
        case .ENOTTY: "inappropriate ioctl for device"
        case .EOPNOTSUPP: "operation not supported"
        case .ENOTSUPP: "operation not supported (kernel ENOTSUPP)"
        }
    }
}

/// An error that carries a kernel errno name. Every error type in this package that has a
/// kernel equivalent conforms, so the CLI can print `{"errno":"EBUSY",...}` uniformly.
public protocol ErrnoCarrying: Error {
    /// The kernel errno this error corresponds to, or `nil` when the kernel has none.
    var errno: KernelErrno? { get }
}
