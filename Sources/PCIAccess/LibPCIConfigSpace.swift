// Config space of one function through libpci, read lazily a dword at a time and cached.
//
// Why lazily: on a VM every config dword the kernel reads for a sysfs `config` read is a
// trap to the hypervisor (~20 µs measured here), so decoding the interrupt capabilities
// reads only the header, the capability headers and the capabilities it decodes.
//
// Lock order: `cache`, then the session's lock (inside the session calls). The session
// never calls back into a config space, so the order cannot invert.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// `ConfigSpaceAccess` backed by a ``LibPCISession``.
///
/// Reads go through libpci (`pci_read_block`) and are cached per dword; call
/// ``invalidate()`` to read the device again. **Writes** are refused with
/// `DeviceAccessError.notWritable` unless the object was created with
/// `allowWrites: true`; the DeviceIO layer decides when that is allowed (never for a device
/// a kernel driver owns). Dump sessions are never writable.
public final class LibPCIConfigSpace: ConfigSpaceAccess {
    public let name: String
    /// The function read.
    public let address: PCIAddress
    /// Bytes libpci can read (see ``LibPCISession/readableConfigSize(_:)``).
    public let readableSize: Int
    public let isWritable: Bool
    private let session: LibPCISession
    private let cache: PackageMutex<Cache>

    private struct Cache: Sendable {
        var bytes = [UInt8](repeating: 0xFF, count: PCIReg.extendedSize)
        /// One bit per dword.
        var present = [UInt64](repeating: 0, count: PCIReg.extendedSize / 4 / 64)

        func has(_ dword: Int) -> Bool { present[dword >> 6] & (1 << UInt64(dword & 63)) != 0 }
        mutating func mark(_ dword: Int) { present[dword >> 6] |= 1 << UInt64(dword & 63) }
        mutating func clear(_ dword: Int) { present[dword >> 6] &= ~(1 << UInt64(dword & 63)) }
    }

    /// Opens `address` in `session`.
    /// - Parameters:
    ///   - session: the libpci session that scanned the device.
    ///   - address: the function to read.
    ///   - allowWrites: let writes reach the device through libpci (default false).
    ///   - readableSize: skip the size probe when the caller knows it.
    ///   - prefetch: bytes to read at once from offset 0 (the 64-byte header by default).
    public init(
        session: LibPCISession, address: PCIAddress, allowWrites: Bool = false, readableSize: Int? = nil,
        prefetch: Int = PCIReg.standardHeaderSize
    ) throws(LibPCIError) {
        self.session = session
        self.address = address
        let method: String
        switch session.method {
        case .live: method = "libpci"
        case .dump: method = "dump"
        }
        name = "\(address) config (\(method))"
        let size: Int
        if let readableSize { size = readableSize } else { size = try session.readableConfigSize(address) }
        self.readableSize = size
        if case .dump = session.method {
            isWritable = false
        } else {
            isWritable = allowWrites
        }
        var initial = Cache()
        let count = min(prefetch, size) & ~3
        if count > 0, let header = try session.readConfig(address, offset: 0, count: count) {
            initial.bytes.replaceSubrange(0..<count, with: header)
            for d in 0..<(count / 4) { initial.mark(d) }
        }
        cache = PackageMutex(initial)
    }

    /// Forgets every cached byte.
    public func invalidate() {
        cache.withLock { $0.present = [UInt64](repeating: 0, count: $0.present.count) }
    }

    /// The bytes read so far, as a snapshot (unread dwords hold 0xFF; `readableSize` long).
    public func snapshotOfReadBytes() -> ConfigSnapshot {
        let bytes = cache.withLock { Array($0.bytes[0..<readableSize]) }
        return ConfigSnapshot(name: name, bytes: bytes)
    }

    public func read8(_ offset: Int) throws -> UInt8 {
        try fetch(offset, width: 1) { $0[offset] }
    }

    public func read16(_ offset: Int) throws -> UInt16 {
        try fetch(offset, width: 2) { UInt16($0[offset]) | UInt16($0[offset + 1]) << 8 }
    }

    public func read32(_ offset: Int) throws -> UInt32 {
        try fetch(offset, width: 4) {
            UInt32($0[offset]) | UInt32($0[offset + 1]) << 8 | UInt32($0[offset + 2]) << 16 | UInt32($0[offset + 3]) << 24
        }
    }

    public func write8(_ offset: Int, _ value: UInt8) throws { try store(offset, [value]) }
    public func write16(_ offset: Int, _ value: UInt16) throws {
        try store(offset, [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)])
    }
    public func write32(_ offset: Int, _ value: UInt32) throws {
        try store(offset, (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    // MARK: -

    private func fetch<T>(_ offset: Int, width: Int, _ extract: ([UInt8]) -> T) throws -> T {
        try DeviceAccessError.check(name, offset: offset, width: width, size: readableSize)
        let dword = offset >> 2  // aligned accesses never straddle a dword
        return try cache.withLock { c in
            if !c.has(dword) {
                guard let bytes = try session.readConfig(address, offset: dword << 2, count: 4) else {
                    throw DeviceAccessError.system(name, operation: "read config at 0x\(hex(dword << 2, width: 3))", errno: EIO)
                }
                c.bytes.replaceSubrange((dword << 2)..<((dword << 2) + 4), with: bytes)
                c.mark(dword)
            }
            return extract(c.bytes)
        }
    }

    private func store(_ offset: Int, _ bytes: [UInt8]) throws {
        try DeviceAccessError.check(name, offset: offset, width: bytes.count, size: readableSize)
        guard isWritable else {
            let reason: String
            if case .dump = session.method {
                reason = "a dump is read-only"
            } else {
                reason = "opened read-only; writes need a device bound to vfio-pci or uio_pci_generic and allowWrites: true"
            }
            throw DeviceAccessError.notWritable(name, reason: reason)
        }
        try cache.withLock { c in
            guard try session.writeConfig(address, offset: offset, bytes: bytes) else {
                throw DeviceAccessError.system(name, operation: "write config at 0x\(hex(offset, width: 3))", errno: EIO)
            }
            c.clear(offset >> 2)  // read back from the device: some bits are read-only or self-clearing
        }
    }
}
