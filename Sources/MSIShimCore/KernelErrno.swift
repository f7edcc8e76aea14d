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
    /// Interrupted system call.
    case EINTR = 4
    /// Too many open files in this process.
    case EMFILE = 24
    /// Not a directory.
    case ENOTDIR = 20
    /// Is a directory.
    case EISDIR = 21
    /// Read-only file system.
    case EROFS = 30
    /// File name too long.
    case ENAMETOOLONG = 36
    /// Too many levels of symbolic links.
    case ELOOP = 40
    /// Timed out.
    case ETIMEDOUT = 110
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
        case .EINTR: "EINTR"
        case .EMFILE: "EMFILE"
        case .ENOTDIR: "ENOTDIR"
        case .EISDIR: "EISDIR"
        case .EROFS: "EROFS"
        case .ENAMETOOLONG: "ENAMETOOLONG"
        case .ELOOP: "ELOOP"
        case .ETIMEDOUT: "ETIMEDOUT"
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
        case .EINTR: "interrupted system call"
        case .EMFILE: "too many open files"
        case .ENOTDIR: "not a directory"
        case .EISDIR: "is a directory"
        case .EROFS: "read-only file system"
        case .ENAMETOOLONG: "file name too long"
        case .ELOOP: "too many levels of symbolic links"
        case .ETIMEDOUT: "connection timed out"
        }
    }
}

// MARK: - Describing an errno

extension KernelErrno {
    /// How every message of the package shows an errno value: `EBUSY (device or resource
    /// busy)`, or `errno 123` for a value this type does not name. Negative kernel returns are
    /// accepted.
    public static func describe(_ code: Int32) -> String {
        KernelErrno(code: code).map { "\($0.name) (\($0.message))" } ?? "errno \(code < 0 ? -code : code)"
    }

    /// Why an access was refused, for the two refusals that need telling apart; nil for any
    /// other value.
    ///
    /// - `EACCES`: the file's permissions refuse this user — on the files this package opens
    ///   (`config` beyond 64 bytes, `resourceN`, `/dev/vfio/*`, state files) that means the
    ///   caller is not root.
    /// - `EPERM`: the kernel refuses whoever asks, root included: kernel lockdown, or its
    ///   policy for a BAR that a driver holds (strict devmem). Running as root does not help.
    public static func refusalReason(_ code: Int32) -> String? {
        switch KernelErrno(code: code) {
        case .EACCES?:
            "the file's permissions refuse this user: run as root"
        case .EPERM?:
            "the kernel refuses this even to root (kernel lockdown, or a BAR that a driver holds under "
                + "strict devmem: boot with iomem=relaxed or bind the device to vfio-pci)"
        default:
            nil
        }
    }

    /// ``describe(_:)`` followed by ``refusalReason(_:)`` when there is one.
    public static func describeWithReason(_ code: Int32) -> String {
        describe(code) + (refusalReason(code).map { "; " + $0 } ?? "")
    }
}

/// An error that carries a kernel errno name. Every error type in this package that has a
/// kernel equivalent conforms, so the CLI can print `{"errno":"EBUSY",...}` uniformly.
public protocol ErrnoCarrying: Error {
    /// The kernel errno this error corresponds to, or `nil` when the kernel has none.
    var errno: KernelErrno? { get }
}
