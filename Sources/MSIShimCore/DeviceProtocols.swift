// The two protocols every device backend implements: the mock, libpci, sysfs, UIO, VFIO,
// plain memory and files. Upper layers (capability decoding, MSI-X/MSI/IMS tables, the
// model's irq chips) only ever see these, so the same code runs on hardware and on a mock.

/// Access to one PCI function's configuration space.
///
/// Offsets are byte offsets from the start of config space. Implementations check bounds and
/// natural alignment (a 16-bit access at an even offset, a 32-bit one at a multiple of 4) and
/// throw ``DeviceAccessError`` instead of trapping.
///
/// **Writes** are refused with ``DeviceAccessError/notWritable(_:reason:)`` unless
/// ``isWritable`` is true. Hardware backends are writable only for a device bound to
/// vfio-pci or uio_pci_generic and opened with explicit write permission; mocks and files
/// are writable; dumps are not. Nothing in this package writes to a device a kernel driver owns.
public protocol ConfigSpaceAccess: Sendable {
    /// A human name for errors, e.g. `"0000:00:03.0 config (sysfs)"`.
    var name: String { get }
    /// How many bytes can be read: 64 for an unprivileged sysfs reader, 256 for conventional
    /// PCI, 4096 for PCIe extended config space.
    var readableSize: Int { get }
    /// Whether write calls may reach the device (see the type's documentation).
    var isWritable: Bool { get }

    /// Reads the byte at `offset`.
    func read8(_ offset: Int) throws -> UInt8
    /// Reads the 16-bit register at `offset` (2-byte aligned).
    func read16(_ offset: Int) throws -> UInt16
    /// Reads the 32-bit register at `offset` (4-byte aligned).
    func read32(_ offset: Int) throws -> UInt32
    /// Writes the byte at `offset`; throws unless ``isWritable``.
    func write8(_ offset: Int, _ value: UInt8) throws
    /// Writes the 16-bit register at `offset`; throws unless ``isWritable``.
    func write16(_ offset: Int, _ value: UInt16) throws
    /// Writes the 32-bit register at `offset`; throws unless ``isWritable``.
    func write32(_ offset: Int, _ value: UInt32) throws
}

/// A memory-mapped region of a device, usually one BAR (or a window of one).
///
/// Only aligned 32-bit and 64-bit accesses exist: the MSI-X and IMS structures allow nothing
/// else, and the kernel's readl/writel/readq/writeq are the model. Implementations check
/// `offset + width <= size` and alignment before touching memory and throw
/// ``DeviceAccessError`` (never trap, never fault on a short mapping).
public protocol MMIORegion: Sendable {
    /// A human name for errors, e.g. `"0000:00:02.0 BAR3 (vfio)"`.
    var name: String { get }
    /// Size of the region in bytes.
    var size: Int { get }
    /// Whether write calls may reach the device (see ``ConfigSpaceAccess``).
    var isWritable: Bool { get }

    /// One 32-bit load at `offset` (4-byte aligned), like the kernel's `readl`.
    func read32(_ offset: Int) throws -> UInt32
    /// One 64-bit load at `offset` (8-byte aligned), like `readq`.
    func read64(_ offset: Int) throws -> UInt64
    /// One 32-bit store at `offset`, like `writel`; throws unless ``isWritable``.
    func write32(_ offset: Int, _ value: UInt32) throws
    /// One 64-bit store at `offset`, like `writeq`; throws unless ``isWritable``.
    func write64(_ offset: Int, _ value: UInt64) throws
}

/// Why an access to config space or a device region failed.
public enum DeviceAccessError: ErrnoCarrying, Equatable, Sendable, CustomStringConvertible {
    /// `offset + width` is past the end of the region (or of readable config space).
    case outOfBounds(_ region: String, offset: Int, width: Int, size: Int)
    /// The access is not naturally aligned for its width.
    case unaligned(_ region: String, offset: Int, width: Int)
    /// A write to something that is not writable; `reason` says why and what would allow it.
    case notWritable(_ region: String, reason: String)
    /// Reads return all-ones: the device was removed, reset or is powered off.
    case deviceGone(_ region: String)
    /// The backing object shrank below the access (a truncated file under a mapping).
    case truncated(_ region: String, offset: Int, size: Int)
    /// A system call failed; `errno` is the raw value.
    case system(_ region: String, operation: String, errno: Int32)
    /// The backend cannot do this at all (e.g. 64-bit access on a 32-bit-only window).
    case unsupported(_ region: String, what: String)

    public var errno: KernelErrno? {
        switch self {
        case .outOfBounds, .unaligned: .EINVAL
        case .notWritable: .EPERM
        case .deviceGone: .ENODEV
        case .truncated: .EFAULT
        case .system(_, _, let e): KernelErrno(code: e)
        case .unsupported: .EOPNOTSUPP
        }
    }

    public var description: String {
        switch self {
        case let .outOfBounds(r, offset, width, size):
            "\(r): \(width)-byte access at 0x\(hex(offset, width: 1)) is outside the region (size 0x\(hex(size, width: 1)))"
        case let .unaligned(r, offset, width):
            "\(r): \(width)-byte access at 0x\(hex(offset, width: 1)) is not \(width)-byte aligned"
        case let .notWritable(r, reason):
            "\(r): not writable: \(reason)"
        case let .deviceGone(r):
            "\(r): device not responding (reads return all-ones): removed, in reset or powered off"
        case let .truncated(r, offset, size):
            "\(r): backing object is now \(size) bytes, access at 0x\(hex(offset, width: 1)) would fault"
        case let .system(r, op, e):
            "\(r): \(op) failed: \(KernelErrno.describeWithReason(e))"
        case let .unsupported(r, what):
            "\(r): \(what) is not supported"
        }
    }
}

extension DeviceAccessError {
    /// Checks `offset`/`width` against `size` and natural alignment; the one guard every
    /// backend uses (typed, so helpers that throw only ``DeviceAccessError`` can call it too).
    @inlinable
    public static func check(
        _ region: @autoclosure () -> String, offset: Int, width: Int, size: Int
    ) throws(DeviceAccessError) {
        guard offset >= 0, width <= size, offset <= size - width else {
            throw DeviceAccessError.outOfBounds(region(), offset: offset, width: width, size: size)
        }
        guard offset & (width - 1) == 0 else {
            throw DeviceAccessError.unaligned(region(), offset: offset, width: width)
        }
    }
}
