import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

/// The dump scanner must read exactly what libpci's dump method reads, name the line of
/// every error, and refuse the inputs libpci would crash on.
@Suite("lspci -x dump files")
struct DumpFileTests {
    @Test(
        "the scanner holds the same bytes as libpci for every device of every fixture dump",
        arguments: TestEnvironment.fixtureDumps)
    func sameBytesAsLibPCI(path: String) throws {
        let records = try LSPCIDump.read(path: path, collectBytes: true)
        let session = try LibPCISession(method: .dump(path: path))
        #expect(records.map(\.address).sorted() == session.addresses)
        for r in records {
            #expect(r.bytes.count == r.length)
            #expect(try session.readableConfigSize(r.address) == r.length, "\(r.address)")
            #expect(try session.readConfig(r.address, offset: 0, count: r.length) == r.bytes, "\(r.address)")
            #expect(try session.readConfig(r.address, offset: 0, count: r.length + 1) == nil, "\(r.address) past the end")
        }
    }

    @Test("libpci's oddities are mirrored: gaps read 0xFF, CRLF, ignored lines, bad function digit")
    func oddities() throws {
        let text = """
            stray text before any device\r
            00: 11 22 33\r
            00:01.0 Ethernet\r
            00: 86 80 d3 10\r
            \tCapabilities: [40] lines from lspci -vx are ignored\r
            10: aa bb \r
            \r
            20: cc dd\r
            00:02.a not a device: F must be decimal, libpci ignores the line\r
            00:03.0 Next\r
            08: 01\r

            """
        let path = try Fixtures.write(text)
        let records = try LSPCIDump.read(path: path, collectBytes: true)
        #expect(records.map(\.address.description) == ["0000:00:01.0", "0000:00:03.0"])
        #expect(records[0].length == 0x12)
        #expect(Array(records[0].bytes[0..<4]) == [0x86, 0x80, 0xD3, 0x10])
        #expect(records[0].bytes[4..<0x10].allSatisfy { $0 == 0xFF })
        #expect(Array(records[0].bytes[0x10..<0x12]) == [0xAA, 0xBB])
        #expect(records[1].length == 9 && records[1].bytes[8] == 0x01 && records[1].bytes[0] == 0xFF)
        // libpci agrees byte for byte.
        let session = try LibPCISession(method: .dump(path: path))
        #expect(session.addresses == records.map(\.address))
        for r in records {
            #expect(try session.readConfig(r.address, offset: 0, count: r.length) == r.bytes)
        }
    }

    @Test("the full-line fast path of readPairs reads exactly what the byte-by-byte grammar reads")
    func pairsFastPath() {
        var nibbles = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "0123456789abcdef".utf8.enumerated() { nibbles[Int(c)] = UInt8(i) }
        for (i, c) in "ABCDEF".utf8.enumerated() { nibbles[Int(c)] = UInt8(10 + i) }
        /// The grammar, one pair at a time (what libpci's loop accepts).
        func reference(_ line: [UInt8], offset: Int) -> (consumed: Int, bytes: [UInt8]) {
            var z = 0, bytes: [UInt8] = []
            while z + 1 < line.count, nibbles[Int(line[z])] < 16, nibbles[Int(line[z + 1])] < 16,
                  z + 2 == line.count || line[z + 2] == 0x20 {
                bytes.append(nibbles[Int(line[z])] << 4 | nibbles[Int(line[z + 1])])
                z = min(z + 3, line.count)
            }
            return (z, bytes)
        }
        var rng = SystemRandomNumberGenerator()
        let valid = Array((0..<16).map { String(format: "%02x", $0 * 17 % 256) }.joined(separator: " ").utf8)
        #expect(valid.count == 47)
        let alphabet = Array("0123456789abcdefABCDEFgx \t:".utf8)
        for round in 0..<3000 {
            var line = valid
            for _ in 0..<(round % 3) { line[Int.random(in: 0..<47, using: &rng)] = alphabet.randomElement(using: &rng)! }
            var out = [UInt8](repeating: 0xEE, count: 64)
            let got = line.withUnsafeBufferPointer { l in
                nibbles.withUnsafeBufferPointer { n in
                    out.withUnsafeMutableBufferPointer { o in
                        LSPCIDump.readPairs(l.baseAddress!, count: 47, nibbles: n.baseAddress!, into: o.baseAddress!, offset: 8, limit: 4096)
                    }
                }
            }
            let want = reference(line, offset: 8)
            #expect(got.consumed == want.consumed && got.offset == 8 + want.bytes.count && !got.overflow, "\(String(decoding: line, as: UTF8.self))")
            #expect(Array(out[8..<(8 + want.bytes.count)]) == want.bytes)
        }
    }

    @Test("read a chunk at a time: the same records or the same error wherever the chunks end, on fixtures and damaged copies")
    func chunked() throws {
        var rng = SystemRandomNumberGenerator()
        let dir = try TestEnvironment.temporaryDirectory("chunks")
        for (n, fixture) in TestEnvironment.fixtureDumps.enumerated() {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: fixture)))
            for round in 0..<60 {
                var bytes = original
                // Round 0 as is; then damage: a byte changed, a newline dropped, a NUL, a long line.
                if round > 0 {
                    let at = Int.random(in: 0..<bytes.count, using: &rng)
                    switch round % 4 {
                    case 0: bytes[at] = Array("0x :\n\r g".utf8).randomElement(using: &rng)!
                    case 1: if let nl = bytes[at...].firstIndex(of: 0x0A) { bytes.remove(at: nl) }
                    case 2: bytes[at] = 0
                    default: bytes.insert(contentsOf: [UInt8](repeating: 0x41, count: 300), at: at)
                    }
                }
                let path = dir.appendingPathComponent("d\(n)-\(round).dump").path
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let whole = Result { () throws(DumpFileError) in
                    try LSPCIDump.parse(String(decoding: bytes, as: UTF8.self), name: path)
                }
                for chunk in [300, 511, 4096, 1 << 18] {
                    let read = Result { () throws(DumpFileError) in
                        try LSPCIDump.read(path: path, collectBytes: true, chunkSize: chunk)
                    }
                    #expect(read == whole, "\(path), chunks of \(chunk)")
                }
            }
        }
    }

    @Test("a data line with an offset and no bytes adds nothing, as in libpci (the length stays)")
    func offsetWithoutBytes() throws {
        let text = "00:01.0 Device\n00: 86 80 d3 10\nff0: \n80: \n\n"
        let records = try LSPCIDump.parse(text, name: "t")
        #expect(records.count == 1 && records[0].length == 4 && records[0].bytes == [0x86, 0x80, 0xD3, 0x10])
        let path = try Fixtures.write(text)
        let session = try LibPCISession(method: .dump(path: path))
        #expect(try session.readableConfigSize(records[0].address) == 4)
    }

    @Test("domains of 4 and 5 hex digits, and 4096-byte config space")
    func domainsAndExtendedSpace() throws {
        var bytes = Fixtures.config()
        bytes += [UInt8](repeating: 0x5A, count: 4096 - 256)
        let path = try Fixtures.write(Fixtures.dump([("0001:02:03.4", bytes), ("10000:00:00.0", Fixtures.config())]))
        let records = try LSPCIDump.read(path: path, collectBytes: true)
        #expect(records.map(\.address.description) == ["0001:02:03.4", "10000:00:00.0"])
        #expect(records[0].length == 4096 && records[0].bytes[4095] == 0x5A)
    }

    /// (dump text, expected line, a word the reason must contain)
    static let malformed: [(String, Int, String)] = [
        ("00:01.0 D\n00: 86 80\n10: 8 80\n", 3, "column 5"),
        ("00:01.0 D\n00: 86  80\n", 2, "Malformed"),
        ("00:01.0 D\n00: 86 80 zz\n", 2, "Malformed"),
        ("00:01.0 D\n1000: 00\n", 2, "4096"),
        ("00:01.0 D\nff0: 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00\n", 2, "4096"),
        ("00:01.0 D\n80000000: 00\n", 2, "outside config space"),
        ("00:01.0 D\nffffffff: 05 06\n", 2, "outside config space"),
        ("00:01.0 D\n00: " + String(repeating: "00 ", count: 84) + "\n", 2, "longer than 253"),
        ("00:01.0 D\n00: 86 80", 2, "no newline"),
        ("00:01.0 D\n00: 86\u{0}80\n", 2, "NUL"),
        ("00:01.0 D\n00: 86\n\n00:01.0 D\n", 4, "appears twice (first at line 1)"),
        ("00:20.0 D\n", 1, "device number 20"),
        ("00:01.8 D\n", 1, "function number 8"),
    ]

    @Test("malformed dumps name the line and the reason", arguments: malformed)
    func malformedLine(text: String, line: Int, word: String) throws {
        let path = try Fixtures.write(text)
        #expect {
            _ = try LSPCIDump.read(path: path, collectBytes: false)
        } throws: { error in
            guard case let DumpFileError.malformed(p, l, reason) = error else { return false }
            return p == path && l == line && reason.contains(word)
        }
        // The whole probe reports the same error (and never hands the file to libpci).
        #expect(throws: ProbeError.self) { try PCIProbe.run(.dump(path: path)) }
    }

    @Test("libpci's own message for a malformed dump carries no line number: the reason for the scanner")
    func libpciMessageHasNoLine() throws {
        let path = try Fixtures.write("00:01.0 D\n00: 86 80\n10: 8 80\n")
        #expect {
            _ = try LibPCISession(method: .dump(path: path))
        } throws: { error in
            guard case let LibPCIError.failed(operation, message) = error else { return false }
            return operation == "init" && message == "dump: Malformed line"
        }
    }

    @Test("empty files, text without devices and bare addresses are refused with a hint")
    func noDevices() throws {
        let cases: [(String, String)] = [
            ("", "empty"),
            ("hello\nworld\n", "no device lines"),
            ("00:03.0\n00: 86 80 d3 10\n", "line 1: a device line needs text after the address"),
        ]
        for (text, word) in cases {
            let path = try Fixtures.write(text)
            #expect {
                _ = try LSPCIDump.read(path: path, collectBytes: false)
            } throws: { error in
                guard case let DumpFileError.noDevices(_, reason) = error else { return false }
                return reason.contains(word)
            }
        }
    }

    @Test("endless inputs stop at the first bad line instead of filling memory")
    func endless() throws {
        #expect(throws: DumpFileError.malformed(
            path: "/dev/zero", line: 1, reason: "contains a NUL byte (libpci: line too long or unterminated)")) {
            _ = try LSPCIDump.read(path: "/dev/zero", collectBytes: false)
        }
    }

    @Test("unreadable paths report the errno")
    func unreadable() throws {
        #expect(throws: DumpFileError.cannotOpen(path: "/nonexistent/x.dump", errno: ENOENT)) {
            _ = try LSPCIDump.read(path: "/nonexistent/x.dump", collectBytes: false)
        }
        let dir = try TestEnvironment.temporaryDirectory("dir")
        #expect(throws: DumpFileError.cannotRead(path: dir.path, errno: EISDIR)) {
            _ = try LSPCIDump.read(path: dir.path, collectBytes: false)
        }
        #expect(DumpFileError.cannotOpen(path: "/x", errno: ENOENT).errno == .ENOENT)
    }
}

/// Random damage to real dumps: whatever the scanner accepts, libpci must read the same
/// bytes (so it is safe to hand libpci the file), and nothing may crash.
@Suite("dump fuzzing")
struct DumpFuzzTests {
    typealias SplitMix = SplitMix64

    @Test(
        "600 damaged dumps: accepted ones read identically by libpci and both probe readers")
    func fuzz() throws {
        let source = try String(contentsOfFile: try #require(TestEnvironment.fixtureDumps.last), encoding: .utf8)
        // The first few devices keep each case small.
        var seed = Array(source.utf8.prefix(6000))
        while seed.last != 0x0A { seed.removeLast() }
        let alphabet = Array("0123456789abcdefABCDEF :.\n\n  0f\r\tx".utf8) + [0]
        var rng = SplitMix(seed: 0x5EED)
        let dir = try TestEnvironment.temporaryDirectory("fuzz")
        var accepted = 0
        for round in 0..<600 {
            var bytes = seed
            for _ in 0..<(1 + rng.below(3)) {
                let at = rng.below(bytes.count)
                switch rng.below(4) {
                case 0: bytes[at] = alphabet[rng.below(alphabet.count)]
                case 1: bytes.insert(alphabet[rng.below(alphabet.count)], at: at)
                case 2: bytes.remove(at: at)
                default:  // a big offset, the kind libpci mishandles
                    bytes.insert(contentsOf: Array("\n\(["80000000", "7fffffff", "fff", "1000", "ff0"][rng.below(5)]): 00\n".utf8), at: at)
                }
            }
            let path = dir.appendingPathComponent("case\(round).dump").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            guard let records = try? LSPCIDump.read(path: path, collectBytes: true) else { continue }
            accepted += 1
            let session = try LibPCISession(method: .dump(path: path))
            #expect(session.addresses == records.map(\.address).sorted(), "case \(round)")
            for r in records {
                #expect(try session.readConfig(r.address, offset: 0, count: max(r.length, 1)) == (r.length == 0 ? nil : r.bytes),
                        "case \(round) \(r.address)")
            }
            let a = try PCIProbe.run(.dump(path: path, reader: .libpci), options: ProbeOptions(lookupNames: false))
            let b = try PCIProbe.run(.dump(path: path, reader: .native), options: ProbeOptions(lookupNames: false))
            #expect(a.devices == b.devices, "case \(round)")
        }
        #expect(accepted > 40)
    }
}
