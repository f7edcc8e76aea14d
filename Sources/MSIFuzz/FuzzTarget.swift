// The fuzz targets: each takes one input (bytes), runs it through a parser or a session the
// way a user's input would reach it, and checks properties that must hold for every input —
// not only "no crash". A broken property is returned, never trapped on: the `msifuzz` driver
// turns it into the crash libFuzzer records, and the regression tests into a test failure.

/// A property an input broke.
public struct PropertyViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// The target that found it.
    public var target: FuzzTarget
    /// What does not hold, with the values that show it.
    public var message: String

    /// A violation of `target`'s properties.
    public init(_ target: FuzzTarget, _ message: String) {
        self.target = target
        self.message = message
    }

    public var description: String { "\(target.rawValue): \(message)" }
}

/// Every fuzz target, by the name `scripts/fuzz` and the corpus folders use.
public enum FuzzTarget: String, CaseIterable, Hashable, Sendable {
    /// The native `lspci -x` dump reader: accepted dumps round-trip through a canonical
    /// rendering; refusals are one-line errors.
    case dumpNative = "dump-native"
    /// libpci's dump method next to the native reader: both accept the same files and hold the
    /// same bytes and decode to the same devices.
    case dumpLibPCI = "dump-libpci"
    /// The capability walker and the MSI/MSI-X decoders over raw config bytes, checked
    /// against an independent walk.
    case capabilities
    /// The mock script parser and a mock session: every line's `--json` object parses, and
    /// the model, the mock and the table agree after every command.
    case mockScript = "mock-script"
    /// The BDF, `-s` and `-d` parsers and script numbers: what they accept round-trips and
    /// agrees between parsers; what they refuse is a one-line, bounded message.
    case selectors

    /// The longest input worth trying (libFuzzer's `-max_len`).
    public var maxLength: Int {
        switch self {
        case .dumpNative, .dumpLibPCI: 16384
        case .capabilities: 4096
        case .mockScript: 2048
        case .selectors: 256
        }
    }

    /// Runs one input; nil when every property holds.
    public func run(_ input: [UInt8]) -> PropertyViolation? {
        let message: String?
        switch self {
        case .dumpNative: message = DumpNativeTarget.check(input)
        case .dumpLibPCI: message = DumpLibPCITarget.check(input)
        case .capabilities: message = CapabilityTarget.check(input)
        case .mockScript: message = MockScriptTarget.check(input)
        case .selectors: message = SelectorTarget.check(input)
        }
        return message.map { PropertyViolation(self, $0) }
    }
}

/// Whether `text` can be one line of an error message: no line break, no control
/// character, at most `limit` bytes.
func isOneBoundedLine(_ text: String, limit: Int) -> Bool {
    text.utf8.count <= limit
        && !text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029 }
}
