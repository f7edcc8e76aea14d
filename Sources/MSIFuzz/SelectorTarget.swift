// The parsers of user-typed addresses and numbers. The first input byte picks the parser,
// the rest is the text. Accepted text contains only what the grammar allows and round-trips;
// the one-device parser and lspci's `-s` agree on every address the former accepts; every
// refusal is one line that quotes the input escaped and bounded.
import MSIShimCore
import MockHarness
import PCIAccess

enum SelectorTarget {
    static func check(_ input: [UInt8]) -> String? {
        guard let first = input.first else { return nil }
        let text = String(decoding: input.dropFirst(), as: UTF8.self)
        switch first % 5 {
        case 0: return address(text)
        case 1: return slotFilter(text)
        case 2: return idFilter(text)
        case 3: return number(text)
        default: return echo(text)
        }
    }

    /// The longest refusal: fixed text plus at most two quotes of 64 printed characters (each
    /// at most 4 UTF-8 bytes), each with its `…(N more bytes)`.
    static let refusalLimit = 160 + 2 * (4 * echoedInputLimit + 24)

    static func address(_ text: String) -> String? {
        let a: PCIAddress
        do { a = try PCIAddress(parsing: text) } catch {
            return isOneBoundedLine(error.description, limit: refusalLimit) ? nil : "refusal not one bounded line: \(echoed(error.description))"
        }
        guard text.utf8.allSatisfy({ isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
            return "accepted '\(echoed(text))' with characters outside [0-9a-fA-F:.]"
        }
        guard (try? PCIAddress(parsing: a.description)) == a else { return "\(a) does not round-trip" }
        // lspci's -s accepts the same text and selects exactly this function (its domain
        // field stops at 0x7fffffff, as lib/filter.c's does).
        guard a.domain <= 0x7FFF_FFFF else { return nil }
        guard let filter = try? PCISlotFilter(parsing: text) else { return "-s refuses '\(echoed(text))', which names \(a)" }
        guard filter.matches(a) else { return "-s '\(echoed(text))' does not select \(a)" }
        var other = a
        other.function = (a.function + 1) & 7
        guard !filter.matches(other) else { return "-s '\(echoed(text))' also selects \(other)" }
        return nil
    }

    static func slotFilter(_ text: String) -> String? {
        do {
            let f = try PCISlotFilter(parsing: text)
            guard text.utf8.allSatisfy({ isHex($0) || ":.*".utf8.contains($0) }) else {
                return "-s accepted '\(echoed(text))' with characters outside [0-9a-fA-F:.*]"
            }
            guard (f.slot ?? 0) <= 0x1F, (f.function ?? 0) <= 7 else { return "-s accepted out-of-range fields: \(f)" }
        } catch {
            return isOneBoundedLine(error.description, limit: refusalLimit) ? nil : "refusal not one bounded line: \(echoed(error.description))"
        }
        return nil
    }

    static func idFilter(_ text: String) -> String? {
        do {
            _ = try PCIIDFilter(parsing: text)
            guard text.utf8.allSatisfy({ isHex($0) || ":*xX".utf8.contains($0) }) else {
                return "-d accepted '\(echoed(text))' with characters outside [0-9a-fA-F:*xX]"
            }
        } catch {
            return isOneBoundedLine(error.description, limit: refusalLimit) ? nil : "refusal not one bounded line: \(echoed(error.description))"
        }
        return nil
    }

    static func number(_ text: String) -> String? {
        guard let n = parseScriptNumber(text) else { return nil }
        guard n >= 0 else { return "script number '\(echoed(text))' parsed as negative \(n)" }
        let expected = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(n, radix: 16) : String(n)
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        guard digits.lowercased().drop(while: { $0 == "0" }) == expected.drop(while: { $0 == "0" }) else {
            return "script number '\(echoed(text))' parsed as \(n)"
        }
        return nil
    }

    static func echo(_ text: String) -> String? {
        let e = echoed(text)
        guard isOneBoundedLine(e, limit: echoedInputLimit * 12 + 40) else { return "echoed() output not one bounded line" }
        if text.unicodeScalars.count <= echoedInputLimit, !text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029 }) {
            guard e == text else { return "echoed() changed plain text" }
        }
        return nil
    }

    static func isHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(c)
    }
}
