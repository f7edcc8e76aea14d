// Reads msictl's --json output in the guest, for the checks that compare it with the kernel.
// The parsing is Foundation's (JSONDecoder of FoundationEssentials); the value lands in
// JSONValue, the type msictl writes, so the checks navigate what msictl wrote.
// FoundationEssentials rather than Foundation's JSONSerialization: the whole Foundation links
// ICU and its data into the static guest binary, which would triple msilab's size in the
// initramfs for one parse.
import FoundationEssentials
import MSIShimCore

enum JSONReader {
    /// The JSON document `text`, or the decoder's error (what is wrong and where).
    static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(DecodedValue.self, from: Data(text.utf8)).value
    }

    /// Any JSON value: null, true/false, an integer (Int, or UInt64 past Int.max), a string,
    /// an array or an object. An object's keys come out sorted (a decoder does not keep the
    /// document's order; the checks look keys up by name). Fractions are refused: msictl
    /// writes none.
    private struct DecodedValue: Decodable {
        let value: JSONValue

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                value = .null
            } else if let b = try? c.decode(Bool.self) {
                value = .bool(b)
            } else if let n = try? c.decode(Int.self) {
                value = .int(n)
            } else if let n = try? c.decode(UInt64.self) {
                value = .uint(n)
            } else if let s = try? c.decode(String.self) {
                value = .string(s)
            } else if let items = try? c.decode([DecodedValue].self) {
                value = .array(items.map(\.value))
            } else if let object = try? c.decode([String: DecodedValue].self) {
                value = .object(object.sorted { $0.key < $1.key }.map { ($0.key, $0.value.value) })
            } else {
                throw DecodingError.dataCorruptedError(
                    in: c, debugDescription: "not null, a boolean, an integer, a string, an array or an object")
            }
        }
    }
}

extension JSONValue {
    var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    var arrayValue: [JSONValue]? { if case .array(let v) = self { return v } else { return nil } }
}
