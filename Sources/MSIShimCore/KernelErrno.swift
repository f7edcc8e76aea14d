/// The Linux errno values this package reports, with their kernel names.
///
/// Errors thrown by every layer carry one of these where the kernel has a matching code, so
/// a caller (and `msictl --json`) can report `EBUSY` exactly where Linux would.
/// `ENOTSUPP` (524) is kernel-internal and has no userspace `<errno.h>` name; the kernel's
/// PCI/MSI code returns it, so the model does too.
public enum KernelErrno: Int32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Operation not permitted: the kernel refuses whoever asks (lockdown, a policy).
    case EPERM = 1
    /// No such file or directory.
    case ENOENT = 2
    /// Input/output error (e.g. VFIO BAR access with memory decoding off).
    case EIO = 5
    /// No such device or address.
    case ENXIO = 6
    /// Argument list too long.
    case E2BIG = 7
    /// Bad file descriptor.
    case EBADF = 9
    /// Try again: nothing to read yet.
    case EAGAIN = 11
    /// Out of memory.
    case ENOMEM = 12
    /// Permission denied by the file's permissions (typically: not root).
    case EACCES = 13
    /// Bad address.
    case EFAULT = 14
    /// Resource busy: an index, a group or a device is taken.
    case EBUSY = 16
    /// Already exists.
    case EEXIST = 17
    /// No such device, or no interrupt domain.
    case ENODEV = 19
    /// Invalid argument.
    case EINVAL = 22
    /// No space left: no free vector or index.
    case ENOSPC = 28
    /// Out of range: an index past the domain's size, or `max < min`.
    case ERANGE = 34
    /// Not implemented.
    case ENOSYS = 38
    /// Inappropriate ioctl for the descriptor.
    case ENOTTY = 25
    /// Operation not supported (userspace's code 95).
    case EOPNOTSUPP = 95
    /// The kernel-internal "not supported" (524) that the PCI/MSI code returns.
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
