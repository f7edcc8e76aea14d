import TestSupport
import Foundation
import Testing

/// `msictl mock` and `msictl inspect --mock/--dump` as a user meets them.
@Suite(
    "msictl mock and inspect (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct MockInspectCLITests {
    func msictl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try TestEnvironment.run(try #require(TestEnvironment.msictl), args)
    }

    func script(_ text: String) throws -> String {
        let url = try TestEnvironment.temporaryDirectory("mock").appendingPathComponent("s.txt")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func objects(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("mock --json: one object per command, errors carry the errno name, script goes on, exit 1")
    func mockJSON() throws {
        let path = try script("""
            # comment
            enable msix 1 8
            alloc msix 3
            alloc msix 3
            frobnicate
            request msix 0
            fire msix 0
            """)
        let r = try msictl(["mock", "--json", "--script", path])
        #expect(r.status == 1)
        let objs = try objects(r.stdout)
        #expect(objs.count == 6)
        #expect(objs[0]["ok"] as? Bool == true && (objs[0]["result"] as? [String: Any])?["count"] as? Int == 8)
        #expect(objs[1]["ok"] as? Bool == false && objs[1]["errno"] as? String == "EBUSY", "entry 3 is taken by enable")
        #expect(objs[3]["ok"] as? Bool == false && objs[3]["errno"] as? String == "EINVAL")
        #expect((objs[3]["message"] as? String)?.contains("line 5") == true)
        let fire = try #require(objs[5]["result"] as? [String: Any])
        #expect((fire["delivered"] as? [String: Any])?["virq"] != nil)
    }

    @Test("mock --json: ntb and affinity lines; each refusal is one object with the kernel's errno and the script goes on")
    func mockMovesJSON() throws {
        let path = try script("""
            enable msix 1 4
            ntb request
            ntb trigger 0
            affinity msix 0 0
            fire msix 0
            ntb trigger 2
            ntb trigger 0 offset=0x200000
            affinity msix 0 9
            cpu 1 offline
            affinity msix 0 1
            ntb free 0
            """)
        let r = try msictl(["mock", "--json", "--cpus", "4", "--script", path])
        #expect(r.status == 1)
        let objs = try objects(r.stdout)
        #expect(objs.count == 11)
        let request = try #require(objs[1]["result"] as? [String: Any])
        #expect(request["index"] as? Int == 0 && request["offset"] != nil && request["data"] != nil)
        #expect(((objs[2]["result"] as? [String: Any])?["delivered"] as? [String: Any])?["virq"] as? Int == request["virq"] as? Int)
        #expect((objs[3]["result"] as? [String: Any])?["cpu"] as? Int == 0)
        #expect(((objs[4]["result"] as? [String: Any])?["delivered"] as? [String: Any])?["cpu"] as? Int == 0)
        #expect(objs.map { $0["errno"] as? String } == [nil, nil, nil, nil, nil, "EINVAL", "EFAULT", "ERANGE", nil, "EINVAL", nil])
        #expect(objs[10]["ok"] as? Bool == true)
    }

    @Test("mock transcript and exit 0 when every command succeeds")
    func mockTranscript() throws {
        let r = try msictl(["mock", "--script", try script("enable msix 1 2\nrequest msix 1\nmask msix 1\nfire msix 1\nunmask msix 1\n")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("> fire msix 1\n  pending=yes"))
        #expect(r.stdout.contains("sent=[source=msix 1 delivered="))
    }

    @Test("mock from a fixture dump: --dump/--slot; bad slot is an input error (exit 2)")
    func mockFromDump() throws {
        let dump = TestEnvironment.qemuDump
        let ok = try msictl(["mock", "--json", "--dump", dump, "--slot", "00:03.0", "--script", try script("enable msix 65 65\n")])
        #expect(ok.status == 0 && ok.stdout.contains("\"count\":65"))
        let bad = try msictl(["mock", "--dump", dump, "--slot", "00:1e.0", "--script", try script("show\n")])
        #expect(bad.status == 2 && bad.stderr.split(separator: "\n").count == 1 && bad.stderr.contains("no device"))
    }

    @Test("inspect --mock after a script shows decoded entries, irqs and the PBA")
    func inspectMock() throws {
        let s = try script("enable msix 1 2\nrequest msix 0\nmask msix 1\nfire msix 1\n")
        let r = try msictl(["inspect", "--mock", "--json", "--script", s])
        #expect(r.status == 0)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let msix = try #require(o["msix"] as? [String: Any])
        #expect(msix["tableReadable"] as? Bool == true)
        #expect(msix["pending"] as? [Int] == [1])
        let entries = try #require(msix["entries"] as? [[String: Any]])
        let e0 = entries[0]
        #expect((e0["decoded"] as? [String: Any])?["format"] as? String == "compatibility")
        #expect(e0["irq"] as? Int != nil && e0["masked"] as? Bool == false)
        let text = try msictl(["inspect", "--mock", "--script", s])
        #expect(text.stdout.contains("PBA: pending 1"))
    }

    @Test("inspect --dump reports capabilities and says the table is not in a dump")
    func inspectDump() throws {
        let r = try msictl(["inspect", "--dump", TestEnvironment.qemuDump, "00:02.0"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("MSI-X [a0] disabled") && r.stdout.contains("holds no MSI-X table"))
        let missing = try msictl(["inspect", "--dump", TestEnvironment.qemuDump, "00:1e.0"])
        #expect(missing.status == 1)
    }

    /// The same key means the same number in both outputs: an MSI address with bit 63 set is
    /// an unsigned 64-bit number in probe and inspect alike (inspect wrote it as a signed Int).
    @Test("inspect --json and probe --json write the MSI address as the same unsigned number")
    func msiAddressIsUnsignedInBothOutputs() throws {
        var config = [UInt8](repeating: 0, count: 256)
        config[0x00] = 0x34; config[0x01] = 0x12; config[0x02] = 0x78; config[0x03] = 0x56
        config[0x06] = 0x10  // status: capability list
        config[0x34] = 0x40
        // MSI at 0x40: enabled, 64-bit; address 0x80000000_FEE01000, data 0x41.
        config.replaceSubrange(0x40..<0x4E, with: [0x05, 0x00, 0x81, 0x00, 0x00, 0x10, 0xE0, 0xFE, 0x00, 0x00, 0x00, 0x80, 0x41, 0x00])
        let lines = stride(from: 0, to: config.count, by: 16).map { row in
            String(format: "%02x:", row) + config[row..<row + 16].map { String(format: " %02x", $0) }.joined()
        }
        let url = try TestEnvironment.temporaryDirectory("msi64").appendingPathComponent("d.dump")
        try Data((["00:03.0 Device"] + lines + [""]).joined(separator: "\n").utf8).write(to: url)
        let expected: UInt64 = 0x8000_0000_FEE0_1000

        let inspect = try msictl(["inspect", "--json", "--dump", url.path, "00:03.0"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let io = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        #expect((io["msi"] as? [String: Any])?["address"] as? UInt64 == expected)
        #expect(!inspect.stdout.contains("\"address\":-"))

        let probe = try msictl(["probe", "--json", "--dump", url.path])
        #expect(probe.status == 0, "\(probe.stderr)")
        let po = try #require((try JSONSerialization.jsonObject(with: Data(probe.stdout.utf8)) as? [[String: Any]])?.first)
        #expect((po["msi"] as? [String: Any])?["address"] as? UInt64 == expected)
    }
}

extension TestEnvironment {
    /// The QEMU q35 dump among the fixtures.
    static var qemuDump: String { dumpsDirectory.appendingPathComponent("qemu-q35-nodrivers.dump").path }
}
