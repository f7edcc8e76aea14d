// The msictl binary against hostile input: every error is one line on stderr, echoes input
// escaped and bounded, and exits 2; scripts with CRLF run; refusals are documented.
import Foundation
import Testing
import TestSupport

@Suite(
    "msictl with hostile input (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct HostileInputCLITests {
    func msictl(_ args: [String], stdin: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let path = try #require(TestEnvironment.msictl)
        guard let stdin else { return try TestEnvironment.run(path, args) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// stderr holds exactly one line, without control characters, shorter than `limit` bytes.
    func expectOneErrorLine(_ stderr: String, limit: Int = 1200, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "stderr: \(stderr.prefix(300))", sourceLocation: sourceLocation)
        #expect(!stderr.dropLast().contains { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false) },
                sourceLocation: sourceLocation)
        #expect(stderr.utf8.count < limit, "\(stderr.utf8.count) bytes", sourceLocation: sourceLocation)
    }

    func objects(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("a CRLF script on stdin runs command by command")
    func crlfStdin() throws {
        let r = try msictl(["mock", "--json"], stdin: "enable msix 1 4\r\nshow\r\n")
        #expect(r.status == 0, "\(r.stdout.prefix(300))")
        let objs = try objects(r.stdout)
        #expect(objs.count == 2 && objs.allSatisfy { $0["ok"] as? Bool == true })
    }

    @Test("unmask of a never-requested vector fails; after free the entry is masked and a fire goes pending")
    func freedEntryStaysMasked() throws {
        let r = try msictl(["mock", "--json"], stdin: "enable msix 1 4\nunmask msix 1\nfree msix 1\nfire msix 1\nshow\n")
        #expect(r.status == 1)
        let objs = try objects(r.stdout)
        #expect(objs.count == 5)
        #expect(objs[1]["ok"] as? Bool == false && objs[1]["errno"] as? String == "EINVAL")
        let fire = try #require(objs[3]["result"] as? [String: Any])
        #expect(fire["pending"] as? Bool == true && fire["delivered"] == nil && fire["dropped"] == nil)
        let msix = try #require((objs[4]["result"] as? [String: Any])?["msix"] as? [String: Any])
        let entries = try #require(msix["entries"] as? [[String: Any]])
        let e1 = try #require(entries.first { $0["index"] as? Int == 1 })
        #expect(e1["masked"] as? Bool == true)
    }

    @Test("an unreadable script (a directory) is one error line and exit 2, like probe --dump")
    func unreadableScript() throws {
        let r = try msictl(["mock", "--script", "/tmp"])
        #expect(r.status == 2 && r.stdout.isEmpty)
        expectOneErrorLine(r.stderr)
        #expect(r.stderr.contains("/tmp") && r.stderr.contains("EISDIR (is a directory)"))
        let i = try msictl(["inspect", "--mock", "--script", "/tmp"])
        #expect(i.status == 2 && i.stderr.contains("EISDIR (is a directory)"))
    }

    @Test("vector 0x-1 is a parse error like -1")
    func negativeHex() throws {
        let r = try msictl(["mock", "--json"], stdin: "enable msix 1 4\nvector 0x-1\nvector -1\n")
        let objs = try objects(r.stdout)
        #expect(r.status == 1 && objs.count == 3)
        #expect(objs[1]["ok"] as? Bool == false && (objs[1]["message"] as? String)?.contains("usage: vector N") == true)
        #expect(objs[2]["ok"] as? Bool == false)
    }

    @Test("slots with signs are refused by every command (exit 2, one line)", arguments: [
        ["inspect", "--dump", "QEMU", "00:+3.0"],
        ["inspect", "--mock", "+0000:00:03.0"],
        ["unbind", "+0000:00:05.0", "--dry-run"],
        ["bind", "00:+5.0", "vfio-pci", "--dry-run"],
        ["mock", "--dump", "QEMU", "--slot", "00:+3.0"],
        ["probe", "--dump", "QEMU", "-s", "00:+3.0"],
    ])
    func signedSlots(_ args: [String]) throws {
        let dump = TestEnvironment.dumpsDirectory.appendingPathComponent("qemu-q35-nodrivers.dump").path
        let r = try msictl(args.map { $0 == "QEMU" ? dump : $0 }, stdin: "show\n")
        #expect(r.status == 2, "\(args): \(r.stderr)")
        #expect(r.stdout.isEmpty)
        expectOneErrorLine(r.stderr)
    }

    @Test("errors stay one line: newlines and escapes in arguments are escaped, echoed input is capped", arguments: [
        ["unbind", "0000:00:03.0\n", "--dry-run"],
        ["inspect", "--mock", "\u{1B}[31mred\u{1B}[0m"],
        ["inspect", "--mock", String(repeating: "0", count: 131_000)],
        ["probe", "-s", String(repeating: "0", count: 131_000)],
        ["probe", "-d", "\u{1B}]0;title\u{7}:1"],
        ["mock", "--\u{1B}[2J" + String(repeating: "x", count: 131_000)],
        ["mock", "--script", "/nonexistent/\n" + String(repeating: "p", count: 131_000)],
    ])
    func oneLineErrors(_ args: [String]) throws {
        let r = try msictl(args)
        #expect(r.status == 2, "\(r.stderr.prefix(200))")
        expectOneErrorLine(r.stderr)
    }

    @Test("probe -s with a 131,000-character selector says 'Expression too long', as lspci does")
    func expressionTooLong() throws {
        let r = try msictl(["probe", "-s", String(repeating: "0", count: 131_000)])
        #expect(r.status == 2 && r.stderr.contains("Expression too long"))
        expectOneErrorLine(r.stderr, limit: 300)
    }

    @Test("--cpus outside 1…256 names the range, --cpus -1 included")
    func cpusRange() throws {
        for value in ["-1", "0", "257", "abc", "0x4"] {
            let r = try msictl(["mock", "--cpus", value], stdin: "show\n")
            #expect(r.status == 2, "--cpus \(value)")
            #expect(r.stderr.contains("1…256") && !r.stderr.contains("Missing value"), "\(r.stderr)")
            expectOneErrorLine(r.stderr)
        }
        #expect(try msictl(["mock", "--cpus", "256"], stdin: "show\n").status == 0)
        #expect(try msictl(["mock", "--help"]).stdout.contains("1…256"))
    }

    @Test("README documents the --cpus range and the dump refusals lspci does not make")
    func readmeDocumentsRefusals() throws {
        let readme = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("`--cpus N` (1…256"))
        #expect(readme.contains("device number above 1f"))
        #expect(readme.contains("function number 8 or 9"))
        // And the binary refuses exactly those (lspci -F lists them).
        let dir = try TestEnvironment.temporaryDirectory("refusals")
        for (line, reason) in [("00:20.0 Device: x", "device number 20"), ("00:03.8 Device: x", "function number 8")] {
            let path = dir.appendingPathComponent("d.dump")
            try Data("\(line)\n00: 86 80 00 00\n".utf8).write(to: path)
            let r = try msictl(["probe", "--dump", path.path])
            #expect(r.status == 2 && r.stderr.contains(reason), "\(r.stderr)")
        }
    }
}
