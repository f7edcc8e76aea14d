public import MSIShimCore

/// A spec rule the software driving the mock broke. Recorded, never thrown: real hardware
/// would silently misbehave, and a test wants to see exactly what was done wrong.
public struct MockViolation: Hashable, Sendable, CustomStringConvertible {
    /// Rule number in `Docs/mock-device-rules.md`, 0 for others.
    public var rule: Int
    /// What was done, with the offsets and values involved.
    public var message: String

    /// A violation of `rule` (0 for one without a number).
    public init(rule: Int, message: String) {
        self.rule = rule
        self.message = message
    }

    public var description: String { rule > 0 ? "rule \(rule): \(message)" : message }
}

/// Access counters, by kind. `msictl mock`'s `counters` command and `scripts/bench tables`
/// compare them with the kernel's number of accesses per operation.
public struct MockCounters: Hashable, Sendable {
    /// Config-space reads of any width.
    public var configReads = 0
    /// Config-space writes of any width.
    public var configWrites = 0
    /// BAR reads (DWORD or QWORD).
    public var mmioReads = 0
    /// BAR writes (DWORD or QWORD).
    public var mmioWrites = 0

    /// All counters at zero.
    public init() {}

    /// Every access of any kind.
    public var total: Int { configReads + configWrites + mmioReads + mmioWrites }

    /// The accesses made between two readings (`a` taken after `b`), kind by kind.
    public static func - (a: MockCounters, b: MockCounters) -> MockCounters {
        var d = MockCounters()
        d.configReads = a.configReads - b.configReads
        d.configWrites = a.configWrites - b.configWrites
        d.mmioReads = a.mmioReads - b.mmioReads
        d.mmioWrites = a.mmioWrites - b.mmioWrites
        return d
    }
}

/// Errors building a mock device.
public enum MockDeviceError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The MSI-X capability describes a layout no device could have (rule 12).
    case invalidMSIXLayout(MSIXLayoutError)
    /// The configuration describes something the mock cannot emulate.
    case unsupported(String)

    public var errno: KernelErrno? { .EINVAL }

    public var description: String {
        switch self {
        case .invalidMSIXLayout(let why): "invalid MSI-X layout: \(why)"
        case .unsupported(let why): "cannot emulate this device: \(why)"
        }
    }
}
