// Config space held in memory: the base of mocks and of tests. Dumps use the read-only
// ConfigSnapshot (MSIShimCore); this one is writable unless told otherwise.
public import MSIShimCore

/// A config space in memory, little-endian like the bus, safe to share between threads.
///
/// Writable by default (it is a mock: no kernel driver owns it). Writes store bytes verbatim;
/// register semantics (read-only bits, write-1-to-clear) are the mock device's business.
public final class MemoryConfigSpace: ConfigSpaceAccess {
    public let name: String
    public let isWritable: Bool
    private let storage: PackageMutex<[UInt8]>
    private let size: Int

    /// Creates a config space from `bytes` (64, 256 or 4096 of them, usually).
    public init(name: String, bytes: [UInt8], writable: Bool = true) {
        self.name = name
        self.isWritable = writable
        self.size = bytes.count
        self.storage = PackageMutex(bytes)
    }

    /// Copies a snapshot (e.g. a dump) into a writable config space.
    public convenience init(copying snapshot: ConfigSnapshot, writable: Bool = true) {
        self.init(name: snapshot.name, bytes: snapshot.bytes, writable: writable)
    }

    public var readableSize: Int { size }

    /// The current bytes.
    public var bytes: [UInt8] { storage.withLock { $0 } }

    /// A read-only copy of the current bytes.
    public func snapshot() -> ConfigSnapshot { ConfigSnapshot(name: name, bytes: bytes) }

    public func read8(_ offset: Int) throws -> UInt8 {
        try UInt8(truncatingIfNeeded: load(offset, width: 1))
    }

    public func read16(_ offset: Int) throws -> UInt16 {
        try UInt16(truncatingIfNeeded: load(offset, width: 2))
    }

    public func read32(_ offset: Int) throws -> UInt32 {
        try UInt32(truncatingIfNeeded: load(offset, width: 4))
    }

    public func write8(_ offset: Int, _ value: UInt8) throws { try store(offset, width: 1, UInt32(value)) }
    public func write16(_ offset: Int, _ value: UInt16) throws { try store(offset, width: 2, UInt32(value)) }
    public func write32(_ offset: Int, _ value: UInt32) throws { try store(offset, width: 4, value) }

    private func load(_ offset: Int, width: Int) throws(DeviceAccessError) -> UInt32 {
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        return storage.withLock { b in
            var v: UInt32 = 0
            for i in 0..<width { v |= UInt32(b[offset + i]) << (8 * i) }
            return v
        }
    }

    private func store(_ offset: Int, width: Int, _ value: UInt32) throws(DeviceAccessError) {
        guard isWritable else {
            throw DeviceAccessError.notWritable(name, reason: "this in-memory config space was created read-only")
        }
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        storage.withLock { b in
            for i in 0..<width { b[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
    }
}
