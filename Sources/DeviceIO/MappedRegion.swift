// A memory-mapped window with bounds-checked, aligned, volatile 32/64-bit access: the one
// MMIORegion implementation behind sysfs resourceN, UIO maps, VFIO BAR mmaps, anonymous
// memory and plain files.
#if canImport(Glibc)
import Glibc
#endif
public import CMSIShim
public import MSIShimCore

/// Answers "is the device still there?" when a read returns all-ones. Called only on that
/// (rare) value, so it may make system calls.
public struct DevicePresence: Sendable {
    /// Returns false once the device is gone (removed, in reset, powered off).
    public let isPresent: @Sendable () -> Bool

    /// Wraps a presence probe.
    public init(_ isPresent: @escaping @Sendable () -> Bool) {
        self.isPresent = isPresent
    }

    /// Presence through config space: the vendor ID reads 0xFFFF once the device is gone.
    public static func vendorID(of config: any ConfigSpaceAccess) -> DevicePresence {
        DevicePresence { (try? config.read16(PCIReg.vendorID)).map { $0 != 0xFFFF } ?? false }
    }
}

/// Guards a mapping of a regular file against truncation: before each access the file's
/// current size is compared with the end of the access, so a truncated file yields
/// `DeviceAccessError.truncated` instead of SIGBUS.
/// Costs one `fstat` per access; only plain files get it (device mappings cannot shrink).
struct ShrinkGuard: Sendable {
    let fd: Int32
    /// File offset of the region's byte 0.
    let fileOffset: Int
    let syscalls: any SystemCalls

    func check(_ name: String, offset: Int, width: Int) throws {
        let size: Int
        do {
            size = try syscalls.status(fd).size
        } catch {
            throw DeviceAccessError.system(name, operation: "fstat", errno: error.code)
        }
        if fileOffset + offset + width > size {
            throw DeviceAccessError.truncated(name, offset: offset, size: max(0, size - fileOffset))
        }
    }
}

/// Owns a mapping (and optionally the descriptor it came from) and releases both at deinit.
final class MappingOwner: @unchecked Sendable {
    // @unchecked: immutable after init; the pointer is only handed to munmap once, in deinit.
    let address: UnsafeMutableRawPointer
    let length: Int
    let fd: Int32?
    let syscalls: any SystemCalls

    init(address: UnsafeMutableRawPointer, length: Int, fd: Int32?, syscalls: any SystemCalls) {
        self.address = address
        self.length = length
        self.fd = fd
        self.syscalls = syscalls
    }

    deinit {
        syscalls.munmap(address, length: length)
        if let fd { syscalls.close(fd) }
    }
}

/// A memory-mapped region of a device (or of memory standing in for one).
///
/// Every access checks bounds and natural alignment, then performs exactly one volatile load
/// or store of the given width through the CMSIShim accessors (never split, never merged).
/// Reads that return all-ones ask the region's ``DevicePresence`` probe, if any, and throw
/// `DeviceAccessError.deviceGone` when the device has disappeared.
/// Mappings of regular files check the file size first (see ``isTruncationGuarded``).
///
/// Thread safety: the region is immutable; concurrent accesses are as safe as concurrent
/// MMIO is on the device (`@unchecked Sendable` because it holds a raw pointer).
public final class MappedRegion: MMIORegion, @unchecked Sendable {
    public let name: String
    public let size: Int
    /// Why writes are refused, or nil when the region is writable.
    public let writeRefusal: String?
    @usableFromInline let base: UnsafeMutableRawPointer
    /// What the hot path needs, as trivial values so an in-bounds access touches no
    /// reference-counted field. `readEnd4` is the exclusive bound for the start of a fast
    /// 4-byte read (size − 3), or 0 when every access must take the checked path (a
    /// truncation-guarded file); the write bounds are also 0 when the region is read-only.
    @usableFromInline let readEnd4: UInt
    @usableFromInline let readEnd8: UInt
    @usableFromInline let writeEnd4: UInt
    @usableFromInline let writeEnd8: UInt
    @usableFromInline let probed: Bool
    let writable: Bool
    let guarded: Bool
    let shrinkGuard: ShrinkGuard?
    let presence: DevicePresence?
    let owner: MappingOwner?

    /// Wraps `size` bytes at `base`. `owner` (if any) keeps the mapping alive as long as this
    /// region; `writeRefusal` nil makes it writable.
    init(
        name: String, base: UnsafeMutableRawPointer, size: Int, writeRefusal: String?, owner: MappingOwner?,
        shrinkGuard: ShrinkGuard? = nil, presence: DevicePresence? = nil
    ) {
        self.name = name
        self.base = base
        self.size = size
        self.writeRefusal = writeRefusal
        self.owner = owner
        self.shrinkGuard = shrinkGuard
        self.presence = presence
        self.writable = writeRefusal == nil
        self.guarded = shrinkGuard != nil
        self.probed = presence != nil
        let fast = shrinkGuard == nil
        self.readEnd4 = fast && size >= 4 ? UInt(size - 3) : 0
        self.readEnd8 = fast && size >= 8 ? UInt(size - 7) : 0
        self.writeEnd4 = writeRefusal == nil ? readEnd4 : 0
        self.writeEnd8 = writeRefusal == nil ? readEnd8 : 0
    }

    public var isWritable: Bool { writable }

    /// Whether accesses check the backing file's size first (true for plain files).
    public var isTruncationGuarded: Bool { guarded }

    /// The first byte of the region, for code that must hand the mapping to C (benchmarks).
    /// Accesses through it bypass every check.
    public var unsafeBaseAddress: UnsafeMutableRawPointer { base }

    // The fast paths below handle the common case (in bounds, aligned, nothing to guard) with
    // trivial comparisons; everything else, including every error, goes to `checked(...)`.

    @inlinable
    public func read32(_ offset: Int) throws -> UInt32 {
        guard UInt(bitPattern: offset) < readEnd4, offset & 3 == 0 else {
            return UInt32(truncatingIfNeeded: try checkedRead(offset, width: 4))
        }
        let v = msishim_mmio_read32(base + offset)
        if v == .max && probed { try verifyPresent() }
        return v
    }

    @inlinable
    public func read64(_ offset: Int) throws -> UInt64 {
        guard UInt(bitPattern: offset) < readEnd8, offset & 7 == 0 else {
            return try checkedRead(offset, width: 8)
        }
        let v = msishim_mmio_read64(base + offset)
        if v == .max && probed { try verifyPresent() }
        return v
    }

    @inlinable
    public func write32(_ offset: Int, _ value: UInt32) throws {
        guard UInt(bitPattern: offset) < writeEnd4, offset & 3 == 0 else {
            return try checkedWrite(offset, width: 4, UInt64(value))
        }
        msishim_mmio_write32(base + offset, value)
    }

    @inlinable
    public func write64(_ offset: Int, _ value: UInt64) throws {
        guard UInt(bitPattern: offset) < writeEnd8, offset & 7 == 0 else {
            return try checkedWrite(offset, width: 8, value)
        }
        msishim_mmio_write64(base + offset, value)
    }

    /// Reads `buffer.count` consecutive dwords starting at `offset` (e.g. a whole MSI-X table),
    /// checking the range once instead of per access; each dword is still one volatile 32-bit
    /// load, in ascending order. A block that reads entirely as all-ones (what a vanished device
    /// returns) asks the presence probe once at the end.
    @inlinable
    public func readDwords(_ offset: Int, into buffer: UnsafeMutableBufferPointer<UInt32>) throws {
        let count = buffer.count
        guard count > 0 else { return }
        guard UInt(bitPattern: offset) < readEnd4, offset & 3 == 0, count <= (size &- offset) >> 2 else {
            for i in 0..<count { buffer[i] = try read32(offset + 4 * i) }
            return
        }
        var allBits = UInt32.max
        let start = base + offset
        for i in 0..<count {
            let v = msishim_mmio_read32(start + 4 &* i)
            allBits &= v
            buffer[i] = v
        }
        if allBits == .max && probed { try verifyPresent() }
    }

    /// The slow path: full checks with errors, the truncation guard, then the access.
    @usableFromInline @inline(never)
    func checkedRead(_ offset: Int, width: Int) throws -> UInt64 {
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        if let shrinkGuard { try shrinkGuard.check(name, offset: offset, width: width) }
        let v = width == 8 ? msishim_mmio_read64(base + offset) : UInt64(msishim_mmio_read32(base + offset))
        if v == (width == 8 ? .max : 0xFFFF_FFFF) && probed { try verifyPresent() }
        return v
    }

    @usableFromInline @inline(never)
    func checkedWrite(_ offset: Int, width: Int, _ value: UInt64) throws {
        if let writeRefusal { throw DeviceAccessError.notWritable(name, reason: writeRefusal) }
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        if let shrinkGuard { try shrinkGuard.check(name, offset: offset, width: width) }
        if width == 8 {
            msishim_mmio_write64(base + offset, value)
        } else {
            msishim_mmio_write32(base + offset, UInt32(truncatingIfNeeded: value))
        }
    }

    @usableFromInline @inline(never)
    func verifyPresent() throws {
        if let presence, !presence.isPresent() { throw DeviceAccessError.deviceGone(name) }
    }

    // MARK: - Regions that are not devices

    /// Anonymous, zero-filled, writable memory of `size` bytes (mapped in whole pages):
    /// a stand-in BAR for mocks, tests and benchmarks.
    public static func anonymous(
        name: String, size: Int, syscalls: any SystemCalls = LinuxSystemCalls()
    ) throws -> MappedRegion {
        guard size > 0 else { throw DeviceAccessError.unsupported(name, what: "an empty region") }
        let length = roundUpToPage(size)
        let p: UnsafeMutableRawPointer
        do {
            p = try syscalls.mmap(
                length: length, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: -1, offset: 0)
        } catch {
            throw DeviceAccessError.system(name, operation: "mmap of \(length) anonymous bytes", errno: error.code)
        }
        let owner = MappingOwner(address: p, length: length, fd: nil, syscalls: syscalls)
        return MappedRegion(name: name, base: p, size: size, writeRefusal: nil, owner: owner)
    }

    /// Maps `length` bytes of a file at `offset` (shared, so writes reach the file).
    ///
    /// The same mmap path as sysfs `resourceN` and UIO, testable on any machine. A file is
    /// not a device: it is writable when `writable` is true (the file is then opened
    /// read-write). Accesses check the file's size first, so truncating the file under the
    /// mapping gives `DeviceAccessError.truncated`, not SIGBUS.
    /// `length` nil maps from `offset` to the end of the file.
    public static func file(
        path: String, offset: Int = 0, length: Int? = nil, writable: Bool, name: String? = nil,
        syscalls: any SystemCalls = LinuxSystemCalls()
    ) throws -> MappedRegion {
        let name = name ?? "\(path) (file)"
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: writable ? O_RDWR : O_RDONLY)
        } catch {
            throw DeviceAccessError.system(name, operation: "open \(path)", errno: error.code)
        }
        do {
            return try mapDescriptor(
                fd: fd, name: name, offset: offset, length: length, writeRefusal: writable ? nil : "the file was opened read-only",
                syscalls: syscalls, presence: nil)
        } catch {
            syscalls.close(fd)
            throw error
        }
    }

    /// Maps `length` bytes of `fd` at `offset` (page-aligned or not: the mapping starts at the
    /// page below). Takes ownership of `fd` on success. Plain files get a shrink guard.
    static func mapDescriptor(
        fd: Int32, name: String, offset: Int, length: Int?, writeRefusal: String?, syscalls: any SystemCalls,
        presence: DevicePresence?, mapOffset: Int64? = nil
    ) throws -> MappedRegion {
        let status: FileStatus
        do {
            status = try syscalls.status(fd)
        } catch {
            throw DeviceAccessError.system(name, operation: "fstat", errno: error.code)
        }
        let size = length ?? (status.size - offset)
        guard offset >= 0, size > 0 else {
            throw DeviceAccessError.outOfBounds(name, offset: offset, width: max(size, 0), size: status.size)
        }
        if status.canShrink && offset + size > status.size {
            throw DeviceAccessError.truncated(name, offset: offset + size, size: status.size)
        }
        // mapOffset lets UIO select map N with N × page size while the data starts `offset` in.
        let pageStart = mapOffset ?? Int64(offset & ~(systemPageSize - 1))
        let delta = mapOffset == nil ? offset & (systemPageSize - 1) : offset
        let length = roundUpToPage(delta + size)
        let protection = writeRefusal == nil ? PROT_READ | PROT_WRITE : PROT_READ
        let p: UnsafeMutableRawPointer
        do {
            p = try syscalls.mmap(length: length, protection: protection, flags: MAP_SHARED, fd: fd, offset: pageStart)
        } catch {
            throw DeviceAccessError.system(
                name, operation: "mmap of \(length) bytes at file offset 0x\(hex(pageStart, width: 1))", errno: error.code)
        }
        let owner = MappingOwner(address: p, length: length, fd: fd, syscalls: syscalls)
        let guardFileOffset = Int(pageStart) + delta
        return MappedRegion(
            name: name, base: p + delta, size: size, writeRefusal: writeRefusal, owner: owner,
            shrinkGuard: status.canShrink ? ShrinkGuard(fd: fd, fileOffset: guardFileOffset, syscalls: syscalls) : nil,
            presence: presence)
    }
}

/// `value` rounded up to a whole number of pages.
func roundUpToPage(_ value: Int) -> Int {
    (value + systemPageSize - 1) & ~(systemPageSize - 1)
}
