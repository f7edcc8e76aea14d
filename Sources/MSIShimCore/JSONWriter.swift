// A small streaming JSON writer into a byte buffer: no Foundation, no intermediate values.
// `msictl probe --json` writes thousands of devices with it; JSONEncoder would build and
// sort dictionaries for each.

/// Appends JSON to `bytes`. Commas are inserted automatically; the caller pairs
/// begin/end calls and puts a `key(_:)` before every value inside an object.
public struct JSONWriter: Sendable {
    /// The JSON written so far, UTF-8.
    public private(set) var bytes: [UInt8] = []
    /// Per open container: whether the next element needs a comma first.
    private var needsComma: [Bool] = [false]
    private var afterKey = false

    /// A writer whose buffer starts with room for `capacity` bytes.
    public init(capacity: Int = 1 << 16) {
        bytes.reserveCapacity(capacity)
    }

    /// Opens an object: `{` (pair it with ``endObject()``).
    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    /// Closes the innermost object: `}`.
    public mutating func endObject() { needsComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    /// Opens an array: `[` (pair it with ``endArray()``).
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    /// Closes the innermost array: `]`.
    public mutating func endArray() { needsComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// An object key; the next call writes its value.
    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }  // keys are plain ASCII identifiers
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// An object key that is not known at compile time.
    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// A string value, escaped as JSON requires.
    public mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        // Most strings (names, slots) need no escape: append them whole.
        var text = value
        let plain = text.withUTF8 { utf8 -> Bool in
            for c in utf8 where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for c in value.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(hexDigits[Int(c >> 4)])
                bytes.append(hexDigits[Int(c & 0xF)])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A string value, or `null`.
    public mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    /// A number value.
    public mutating func number(_ value: UInt64) {
        separate()
        appendDigits(value)
    }

    /// A number value.
    public mutating func number(_ value: Int) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(value.magnitude.toUInt64)
    }

    /// A number value, or `null`.
    public mutating func number(_ value: UInt64?) {
        if let value { number(value) } else { null() }
    }

    /// A number value, or `null`.
    public mutating func number(_ value: Int?) {
        if let value { number(value) } else { null() }
    }

    /// A fraction rounded to `decimals` places (at most 6), without an exponent and without
    /// trailing zeros (`12.5`, `0.333`, `4`); `null` when not finite (JSON has no NaN/inf).
    public mutating func number(_ value: Double, decimals: Int = 3) {
        guard value.isFinite, value.magnitude < 1e15 else { return null() }
        let places = min(max(decimals, 0), 6)
        var scale: UInt64 = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = (value.magnitude * Double(scale)).rounded()
        let whole = UInt64(scaled) / scale
        var fraction = UInt64(scaled) % scale
        separate()
        if value < 0 && scaled != 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(whole)
        guard fraction != 0 else { return }
        var width = places
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        bytes.append(UInt8(ascii: "."))
        var digits: [UInt8] = []
        for _ in 0..<width {
            digits.append(UInt8(ascii: "0") + UInt8(fraction % 10))
            fraction /= 10
        }
        bytes.append(contentsOf: digits.reversed())
    }

    private mutating func appendDigits(_ value: UInt64) {
        if value < 10 { bytes.append(UInt8(ascii: "0") + UInt8(value)); return }
        var v = value
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt64.max has 20 digits
        withUnsafeMutableBytes(of: &digits) { d in
            var count = 0
            while v > 0 {
                d[count] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
                count += 1
            }
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    /// `true` or `false`.
    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? trueBytes : falseBytes)
    }

    /// `null`.
    public mutating func null() {
        separate()
        bytes.append(contentsOf: nullBytes)
    }

    /// Appends raw bytes outside any value (e.g. a newline between array elements).
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Starts the next element of the open container on a new line (the comma, if one is
    /// due, goes before the newline).
    public mutating func newline() {
        if needsComma[needsComma.count - 1] {
            bytes.append(UInt8(ascii: ","))
            needsComma[needsComma.count - 1] = false
        }
        bytes.append(0x0A)
    }

    /// Takes the bytes written so far, leaving the writer's nesting state as is.
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes.removeAll(keepingCapacity: true) }
        return bytes
    }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)
private let trueBytes = Array("true".utf8)
private let falseBytes = Array("false".utf8)
private let nullBytes = Array("null".utf8)

extension UInt {
    fileprivate var toUInt64: UInt64 { UInt64(self) }
}

/// A JSON value built in memory, for results whose shape depends on the data (the mock
/// session's command results). Object keys keep their insertion order.
public indirect enum JSONValue: Hashable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A signed number.
    case int(Int)
    /// An unsigned 64-bit number (addresses): written as is, never as a negative `Int`.
    case uint(UInt64)
    /// A string (escaped when written).
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object whose keys keep their order.
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.int(x), .int(y)): x == y
        case let (.uint(x), .uint(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let v): h.combine(v)
        case .int(let v): h.combine(v)
        case .uint(let v): h.combine(v)
        case .string(let v): h.combine(v)
        case .array(let v): h.combine(v)
        case .object(let v): for (k, x) in v { h.combine(k); h.combine(x) }
        }
    }

    /// The value of `key` in an object, nil otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    /// Writes the value.
    public func write(to w: inout JSONWriter) {
        switch self {
        case .null: w.null()
        case .bool(let v): w.bool(v)
        case .int(let v): w.number(v)
        case .uint(let v): w.number(v)
        case .string(let v): w.string(v)
        case .array(let items):
            w.beginArray()
            for i in items { i.write(to: &w) }
            w.endArray()
        case .object(let pairs):
            w.beginObject()
            for (k, v) in pairs {
                w.key(k)
                v.write(to: &w)
            }
            w.endObject()
        }
    }

    /// Compact JSON text.
    public var jsonText: String {
        var w = JSONWriter(capacity: 256)
        write(to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
