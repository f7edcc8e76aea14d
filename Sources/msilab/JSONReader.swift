// A small JSON reader for checking msictl's --json output in the guest: objects, arrays,
// strings (with the escapes JSONWriter emits), integers, true/false/null. Anything else is
// an error, which a check reports.
import PCIAccess
import MSIShimCore

struct JSONReader {
    struct Failure: Error, CustomStringConvertible {
        var at: Int
        var what: String
        var description: String { "JSON: \(what) at byte \(at)" }
    }

    private let bytes: [UInt8]
    private var i = 0

    static func parse(_ text: String) throws -> JSONValue {
        var r = JSONReader(bytes: Array(text.utf8))
        let v = try r.value()
        r.skipSpace()
        guard r.i == r.bytes.count else { throw Failure(at: r.i, what: "trailing bytes") }
        return v
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
    }

    private mutating func expect(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
            throw Failure(at: i, what: "expected \(word)")
        }
        i += w.count
    }

    private mutating func value() throws -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw Failure(at: i, what: "unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var pairs: [(String, JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard case .string(let key) = try value() else { throw Failure(at: i, what: "object key") }
                skipSpace()
                try expect(":")
                pairs.append((key, try value()))
                skipSpace()
                guard i < bytes.count else { throw Failure(at: i, what: "unterminated object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect("}")
                return .object(pairs)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw Failure(at: i, what: "unterminated array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect("]")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            i += 1
            var out: [UInt8] = []
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    i += 1
                    switch bytes[i] {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "u"):
                        guard i + 4 < bytes.count, let code = UInt32(String(decoding: bytes[(i + 1)...(i + 4)], as: UTF8.self), radix: 16),
                              let scalar = Unicode.Scalar(code)
                        else { throw Failure(at: i, what: "bad \\u escape") }
                        out += Array(String(Character(scalar)).utf8)
                        i += 4
                    default: out.append(bytes[i])
                    }
                } else {
                    out.append(bytes[i])
                }
                i += 1
            }
            try expect("\"")
            return .string(String(decoding: out, as: UTF8.self))
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default:
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            guard let n = Int(String(decoding: bytes[start..<i], as: UTF8.self)) else {
                throw Failure(at: start, what: "not a value")
            }
            return .int(n)
        }
    }
}

extension JSONValue {
    var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    var boolValue: Bool? { if case .bool(let v) = self { return v } else { return nil } }
    var arrayValue: [JSONValue]? { if case .array(let v) = self { return v } else { return nil } }
    var isNull: Bool { self == .null }
}
