import Foundation
import Testing

@testable import MSIShimCore

@Suite("JSONWriter")
struct JSONWriterTests {
    @Test("nesting, commas, escapes and numbers round-trip through JSONSerialization")
    func roundTrip() throws {
        var w = JSONWriter()
        w.beginArray()
        w.newline()
        w.beginObject()
        w.key("s"); w.string("a\"b\\c\n\t\u{1}é")
        w.key("n"); w.number(-42)
        w.key("u"); w.number(UInt64.max)
        w.key("z"); w.number(0)
        w.key("t"); w.bool(true)
        w.key("f"); w.bool(false)
        w.key("null"); w.null()
        w.key("optional"); w.string(nil as String?)
        w.key("list"); w.beginArray(); w.number(1); w.number(2); w.beginObject(); w.endObject(); w.endArray()
        w.endObject()
        w.newline()
        w.beginObject(); w.key("second"); w.number(2); w.endObject()
        w.raw("\n")
        w.endArray()
        let bytes = w.takeBytes()
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("[\n{"))
        #expect(String(decoding: bytes, as: UTF8.self).contains("},\n{\"second\""))
        let value = try JSONSerialization.jsonObject(with: Data(bytes)) as? [[String: Any]]
        let first = try #require(value?.first)
        #expect(first["s"] as? String == "a\"b\\c\n\t\u{1}é")
        #expect(first["n"] as? Int == -42)
        #expect((first["u"] as? NSNumber)?.uint64Value == UInt64.max)
        #expect(first["z"] as? Int == 0)
        #expect(first["t"] as? Bool == true && first["f"] as? Bool == false)
        #expect(first["null"] is NSNull && first["optional"] is NSNull)
        #expect((first["list"] as? [Any])?.count == 3)
        #expect(value?.count == 2)
        #expect(w.takeBytes().isEmpty)
    }

    @Test("fractions: rounded, no exponent, no trailing zeros, null when not finite", arguments: [
        (12.5, "12.5"), (1.0 / 3.0, "0.333"), (4.0, "4"), (0.0004, "0"), (-2.25, "-2.25"), (0.1, "0.1"),
        (4_294_967_296.5, "4294967296.5"), (Double.nan, "null"), (Double.infinity, "null"), (-0.0001, "0"),
    ])
    func fractions(value: Double, text: String) {
        var w = JSONWriter()
        w.number(value)
        #expect(String(decoding: w.takeBytes(), as: UTF8.self) == text)
    }
}
