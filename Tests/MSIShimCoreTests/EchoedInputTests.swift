import Testing
import MSIShimCore

@Suite("user input in one-line messages; one strict address parser")
struct EchoedInputTests {
    @Test("control characters are escaped, nothing else changes")
    func escapes() {
        #expect(echoed("0000:00:03.0\n") == "0000:00:03.0\\n")
        #expect(echoed("a\r\tb\u{1B}[31m\u{7F}\u{85}\u{2028}") == "a\\r\\tb\\e[31m\\x7f\\x85\\u{2028}")
        #expect(echoed("plain ‹ünïcode›") == "plain ‹ünïcode›")
        #expect(escapingControlCharacters("one\ntwo") == "one\\ntwo")
    }

    @Test("long input is cut after the limit with the number of bytes left out")
    func capped() {
        let long = String(repeating: "x", count: 131_000)
        let e = echoed(long)
        #expect(e.hasPrefix(String(repeating: "x", count: echoedInputLimit)))
        #expect(e.hasSuffix("…(\(131_000 - echoedInputLimit) more bytes)"))
        #expect(e.utf8.count < 100)
        #expect(echoed(String(repeating: "y", count: echoedInputLimit)) == String(repeating: "y", count: echoedInputLimit))
    }

    @Test("escapes count toward the limit as printed: 100 line separators quote as at most 64 characters")
    func escapesCountAsPrinted() {
        let e = echoed(String(repeating: "\u{2028}", count: 100))
        let quote = e.prefix { $0 != "…" }
        #expect(quote.count <= echoedInputLimit && quote.count == 8 * (echoedInputLimit / 8))
        #expect(e.hasSuffix("more bytes)"))
    }

    @Test("addresses with signs, prefixes or spaces in any field are refused (as lspci -s does)", arguments: [
        "00:+3.0", "+0000:00:05.0", "0000:+0:05.0", "00:03.+0", "-0:00:03.0", "00:-3.0", "0x0:00:03.0",
        " 00:03.0", "00:03.0 ", "00: 3.0", "0000:00:03.0\n", "00:3.", ".0", "00:03.0.0", "100000000:00:03.0",
    ])
    func signsRefused(_ text: String) {
        #expect(throws: PCIAddressError.self) { try PCIAddress(parsing: text) }
    }

    @Test("the error quotes the input escaped and bounded")
    func errorEcho() {
        do {
            _ = try PCIAddress(parsing: "0000:00:03.0\n" + String(repeating: "z", count: 131_000))
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(error.description.utf8.count < 400, "\(error.description.utf8.count) bytes")
        }
    }

    @Test("hex fields: digits only, bounded")
    func hexDigits() {
        #expect(parseHexDigits("1f", max: 0x1F) == 0x1F)
        #expect(parseHexDigits("20", max: 0x1F) == nil)
        #expect(parseHexDigits("ffffffff", max: 0xFFFF_FFFF) == 0xFFFF_FFFF)
        #expect(parseHexDigits("100000000", max: 0xFFFF_FFFF) == nil)
        #expect(parseHexDigits("9", max: 7) == nil)
        #expect(parseHexDigits("+1", max: 0xFF) == nil && parseHexDigits("", max: 0xFF) == nil)
    }
}
