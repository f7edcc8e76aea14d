/// A read-only copy of config space bytes: what a dump holds or what libpci read.
///
/// Little-endian, like the bus. `readableSize` is the number of bytes captured; reads past
/// it throw ``DeviceAccessError/outOfBounds(_:offset:width:size:)`` (an unprivileged sysfs
/// read yields 64 bytes, so capability decoding then reports "needs root").
public struct ConfigSnapshot: ConfigSpaceAccess, Hashable {
    public let name: String
    /// The captured bytes, from offset 0.
    public let bytes: [UInt8]

    /// A snapshot of `bytes`, named `name` in errors.
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    public var readableSize: Int { bytes.count }
    public var isWritable: Bool { false }

    /// Reads the byte at `offset`.
    public func read8(_ offset: Int) throws -> UInt8 {
        try DeviceAccessError.check(name, offset: offset, width: 1, size: bytes.count)
        return bytes[offset]
    }

    /// Reads the little-endian 16-bit value at `offset` (2-byte aligned).
    public func read16(_ offset: Int) throws -> UInt16 {
        try DeviceAccessError.check(name, offset: offset, width: 2, size: bytes.count)
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    /// Reads the little-endian 32-bit value at `offset` (4-byte aligned).
    public func read32(_ offset: Int) throws -> UInt32 {
        try DeviceAccessError.check(name, offset: offset, width: 4, size: bytes.count)
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
            | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    /// Always throws ``DeviceAccessError/notWritable(_:reason:)``: a snapshot is read-only.
    public func write8(_ offset: Int, _ value: UInt8) throws { throw readOnly }
    /// Always throws ``DeviceAccessError/notWritable(_:reason:)``: a snapshot is read-only.
    public func write16(_ offset: Int, _ value: UInt16) throws { throw readOnly }
    /// Always throws ``DeviceAccessError/notWritable(_:reason:)``: a snapshot is read-only.
    public func write32(_ offset: Int, _ value: UInt32) throws { throw readOnly }

    private var readOnly: DeviceAccessError {
        .notWritable(name, reason: "a config-space snapshot (dump) is read-only")
    }
}
