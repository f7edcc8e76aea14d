// The narrow system-call surface every hardware backend goes through. The live
// implementation calls the kernel; tests substitute a fake that follows the VFIO uAPI, so the
// VFIO/UIO/sysfs code paths run unchanged on a machine without VFIO.
#if canImport(Glibc)
import Glibc
#endif
import CMSIShim
public import MSIShimCore

/// A failed system call: the raw errno (`errno` of the failing call).
public struct SyscallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The raw errno value, e.g. `ENOENT`.
    public var code: Int32

    /// Wraps a raw errno value.
    public init(_ code: Int32) {
        self.code = code
    }

    /// The kernel name of the errno, when this package knows it.
    public var kernelErrno: KernelErrno? { KernelErrno(code: code) }

    public var description: String {
        kernelErrno.map { "\($0.name) (\($0.message))" } ?? "errno \(code)"
    }
}

/// What `fstat`/`fstatfs` say about an open file: enough to decide whether a mapping of it can
/// shrink under us.
public struct FileStatus: Equatable, Sendable {
    /// `st_size` (for sysfs attributes, the attribute's declared size).
    public var size: Int
    /// `S_ISREG`.
    public var isRegularFile: Bool
    /// The file lives on sysfs (a `resourceN` or `config` attribute, not storage).
    public var isOnSysfs: Bool

    /// Creates a status; the fake kernel uses this for its device files.
    public init(size: Int, isRegularFile: Bool, isOnSysfs: Bool) {
        self.size = size
        self.isRegularFile = isRegularFile
        self.isOnSysfs = isOnSysfs
    }

    /// Whether the object can be truncated under a mapping (a plain file on a disk or tmpfs):
    /// accesses to such a mapping check the size first.
    public var canShrink: Bool { isRegularFile && !isOnSysfs }
}

/// The system calls the device-I/O layer makes, one method each, with errno surfaced as a
/// typed error.
///
/// ``LinuxSystemCalls`` is the real kernel. A test fake implements the VFIO ioctls on its own
/// file descriptors and forwards everything else (eventfds, regular files) to the kernel, so
/// the same code paths run everywhere. Implementations must be thread-safe.
public protocol SystemCalls: Sendable {
    /// `open(2)`; returns the new descriptor.
    func open(_ path: String, flags: Int32) throws(SyscallError) -> Int32
    /// `close(2)`; errors are ignored as the kernel ignores most of them.
    func close(_ fd: Int32)
    /// `ioctl(2)` whose argument is a pointer to a structure (or a string, or an int).
    func ioctl(_ fd: Int32, _ request: UInt, pointer: UnsafeMutableRawPointer?) throws(SyscallError) -> Int32
    /// `ioctl(2)` whose argument is an integer value (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU).
    func ioctl(_ fd: Int32, _ request: UInt, value: UInt) throws(SyscallError) -> Int32
    /// `pread(2)`; returns the byte count (short reads are possible).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int
    /// `pwrite(2)`; returns the byte count.
    func pwrite(_ fd: Int32, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int
    /// `read(2)`.
    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> Int
    /// `write(2)`.
    func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(SyscallError) -> Int
    /// `mmap(2)` of a file (`fd` ≥ 0) or anonymous memory (`fd` = −1 with `MAP_ANONYMOUS`).
    func mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int64)
        throws(SyscallError) -> UnsafeMutableRawPointer
    /// `munmap(2)`.
    func munmap(_ address: UnsafeMutableRawPointer, length: Int)
    /// `eventfd(2)`.
    func eventfd(initial: UInt32, flags: Int32) throws(SyscallError) -> Int32
    /// `fstat(2)` + `fstatfs(2)`.
    func status(_ fd: Int32) throws(SyscallError) -> FileStatus
}

/// The real kernel.
public struct LinuxSystemCalls: SystemCalls {
    /// The live system.
    public init() {}

    public func open(_ path: String, flags: Int32) throws(SyscallError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SyscallError(errno) }
        }
    }

    public func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    public func ioctl(_ fd: Int32, _ request: UInt, pointer: UnsafeMutableRawPointer?) throws(SyscallError) -> Int32 {
        let r = msishim_ioctl_ptr(fd, request, pointer)
        if r < 0 { throw SyscallError(errno) }
        return r
    }

    public func ioctl(_ fd: Int32, _ request: UInt, value: UInt) throws(SyscallError) -> Int32 {
        let r = msishim_ioctl_value(fd, request, value)
        if r < 0 { throw SyscallError(errno) }
        return r
    }

    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int {
        while true {
            let n = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw SyscallError(errno) }
        }
    }

    public func pwrite(_ fd: Int32, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int {
        while true {
            let n = Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw SyscallError(errno) }
        }
    }

    public func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw SyscallError(errno) }
        }
    }

    public func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(SyscallError) -> Int {
        while true {
            let n = Glibc.write(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw SyscallError(errno) }
        }
    }

    public func mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int64)
        throws(SyscallError) -> UnsafeMutableRawPointer
    {
        guard let p = Glibc.mmap(nil, length, protection, flags, fd, off_t(offset)), p != MAP_FAILED else {
            throw SyscallError(errno)
        }
        return p
    }

    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) {
        _ = Glibc.munmap(address, length)
    }

    public func eventfd(initial: UInt32, flags: Int32) throws(SyscallError) -> Int32 {
        let fd = msishim_eventfd(initial, flags)
        if fd < 0 { throw SyscallError(errno) }
        return fd
    }

    public func status(_ fd: Int32) throws(SyscallError) -> FileStatus {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SyscallError(errno) }
        var fs = statfs()
        let onSysfs = fstatfs(fd, &fs) == 0 && Int(fs.f_type) == MSISHIM_SYSFS_MAGIC
        return FileStatus(size: Int(st.st_size), isRegularFile: st.st_mode & S_IFMT == S_IFREG, isOnSysfs: onSysfs)
    }
}

extension SystemCalls {
    /// Reads exactly `buffer.count` bytes at `offset` or throws (a short read is `EIO`).
    func preadExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SyscallError) {
        var done = 0
        while done < buffer.count {
            let n = try pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done))
            if n == 0 { throw SyscallError(EIO) }
            done += n
        }
    }

    /// Writes exactly `buffer.count` bytes at `offset` or throws.
    func pwriteExactly(_ fd: Int32, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(SyscallError) {
        var done = 0
        while done < buffer.count {
            let n = try pwrite(fd, from: UnsafeRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done))
            if n == 0 { throw SyscallError(EIO) }
            done += n
        }
    }
}
