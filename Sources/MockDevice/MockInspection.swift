// What a debugger sees of a mock device: config space and BAR memory read without going over
// the bus. `show` and `msictl inspect --mock` read through these, so their reads are not
// counted (`counters` reports only what the driver did) and never record a violation.
public import MSIShimCore

/// Config space of a ``MockPCIDevice`` as an inspector reads it: reads are not counted,
/// writes are refused.
public struct MockInspectionConfigSpace: ConfigSpaceAccess {
    let device: MockPCIDevice

    /// `mock <address> config (inspection)`.
    public var name: String { "mock \(device.address) config (inspection)" }
    /// The config bytes the device has (256 or 4096).
    public var readableSize: Int { device.state.withLock { $0.config.count } }
    /// Never: an inspector only reads.
    public var isWritable: Bool { false }

    /// One byte, not counted.
    public func read8(_ offset: Int) throws -> UInt8 {
        UInt8(truncatingIfNeeded: try device.state.withLock { try $0.peekConfig(offset, width: 1) })
    }

    /// One word, not counted.
    public func read16(_ offset: Int) throws -> UInt16 {
        UInt16(truncatingIfNeeded: try device.state.withLock { try $0.peekConfig(offset, width: 2) })
    }

    /// One dword, not counted.
    public func read32(_ offset: Int) throws -> UInt32 {
        try device.state.withLock { try $0.peekConfig(offset, width: 4) }
    }

    /// Refused: `DeviceAccessError.notWritable`.
    public func write8(_ offset: Int, _ value: UInt8) throws { throw refusal }
    /// Refused: `DeviceAccessError.notWritable`.
    public func write16(_ offset: Int, _ value: UInt16) throws { throw refusal }
    /// Refused: `DeviceAccessError.notWritable`.
    public func write32(_ offset: Int, _ value: UInt32) throws { throw refusal }

    var refusal: DeviceAccessError { .notWritable(name, reason: "an inspection view only reads") }
}

/// One BAR of a ``MockPCIDevice`` as an inspector reads it: reads are not counted and have
/// no side effects, writes are refused.
public struct MockInspectionRegion: MMIORegion {
    let device: MockPCIDevice
    /// The BAR index.
    public let index: Int
    /// The BAR size in bytes.
    public let size: Int

    /// `mock <address> BARn (inspection)`.
    public var name: String { "mock \(device.address) BAR\(index) (inspection)" }
    /// Never: an inspector only reads.
    public var isWritable: Bool { false }

    /// One dword, not counted.
    public func read32(_ offset: Int) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try device.state.withLock { try $0.peekMMIOChecked(bar: index, offset, width: 4) })
    }

    /// One qword, not counted.
    public func read64(_ offset: Int) throws -> UInt64 {
        try device.state.withLock { try $0.peekMMIOChecked(bar: index, offset, width: 8) }
    }

    /// Refused: `DeviceAccessError.notWritable`.
    public func write32(_ offset: Int, _ value: UInt32) throws { throw refusal }
    /// Refused: `DeviceAccessError.notWritable`.
    public func write64(_ offset: Int, _ value: UInt64) throws { throw refusal }

    var refusal: DeviceAccessError { .notWritable(name, reason: "an inspection view only reads") }
}

extension MockPCIDevice {
    /// Config space for inspection (reads not counted, writes refused).
    public var inspectionConfig: MockInspectionConfigSpace { MockInspectionConfigSpace(device: self) }

    /// BAR `index` for inspection (reads not counted, writes refused), nil when not implemented.
    public func inspectionBAR(_ index: Int) -> MockInspectionRegion? {
        state.withLock { s in
            guard index >= 0, index < s.bars.count, let bar = s.bars[index] else { return nil }
            return MockInspectionRegion(device: self, index: index, size: bar.size)
        }
    }
}
