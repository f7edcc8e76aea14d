import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("lspci selectors (-s, -d)")
struct SelectorTests {
    @Test("slot syntax: every part optional, hex, * for any")
    func slotParsing() throws {
        func f(_ s: String) throws -> [Int?] {
            let x = try PCISlotFilter(parsing: s)
            return [x.domain.map(Int.init), x.bus.map(Int.init), x.slot.map(Int.init), x.function.map(Int.init)]
        }
        #expect(try f("") == [nil, nil, nil, nil])
        #expect(try f("3") == [nil, nil, 3, nil])
        #expect(try f("1f.7") == [nil, nil, 0x1F, 7])
        #expect(try f(".1") == [nil, nil, nil, 1])
        #expect(try f("00:") == [nil, 0, nil, nil])
        #expect(try f("02:03") == [nil, 2, 3, nil])
        #expect(try f("0000:00:03.0") == [0, 0, 3, 0])
        #expect(try f("*:*:3.*") == [nil, nil, 3, nil])
        #expect(try f("1::") == [1, nil, nil, nil])
        #expect(try f("0000000000ff:") == [nil, 0xFF, nil, nil])  // leading zeros are fine
        #expect(try f("7fffffff:0:0.0") == [0x7FFF_FFFF, 0, 0, 0])
    }

    @Test("slot errors carry lspci's reasons", arguments: [
        ("1:2:3:4", "Too many fields"),
        ("3.1.2", "Invalid slot/function number"),
        ("20", "Invalid slot number"),
        ("3.8", "Invalid function number"),
        ("100:3", "Invalid bus number"),
        ("80000000:0:0", "Invalid domain number"),
        ("g", "Invalid slot number"),
        (String(repeating: "0", count: 64), "Expression too long"),
    ])
    func slotErrors(text: String, reason: String) {
        #expect(throws: PCISelectorError(option: "-s", text: text, reason: reason)) {
            _ = try PCISlotFilter(parsing: text)
        }
    }

    @Test("ID syntax: vendor:device[:class[:progif]], class digits may be x")
    func idParsing() throws {
        let a = try PCIIDFilter(parsing: "8086:")
        #expect(a.vendor == 0x8086 && a.device == nil && a.classCode == nil)
        let b = try PCIIDFilter(parsing: ":10d3")
        #expect(b.vendor == nil && b.device == 0x10D3)
        let c = try PCIIDFilter(parsing: "::02xx")
        #expect(c.classCode == 0x0200 && c.classMask == 0xFFFF_FF00)
        #expect(c.matches(vendor: 1, device: 2, classCode: 0x0280, programmingInterface: 0))
        #expect(!c.matches(vendor: 1, device: 2, classCode: 0x0380, programmingInterface: 0))
        let d = try PCIIDFilter(parsing: "*:*:0c03:30")
        #expect(d.classCode == 0x0C03 && d.programmingInterface == 0x30)
        #expect(d.matches(vendor: 1, device: 2, classCode: 0x0C03, programmingInterface: 0x30))
        #expect(!d.matches(vendor: 1, device: 2, classCode: 0x0C03, programmingInterface: 0x20))
    }

    @Test("ID errors carry lspci's reasons", arguments: [
        ("8086", "At least two fields must be given"),
        ("1:2:3:4:5", "Too many fields"),
        ("10000:", "Invalid vendor ID"),
        (":xyz", "Invalid device ID"),
        ("::1xxxx", "Invalid class code"),
        ("::0200:100", "Invalid programming interface code"),
    ])
    func idErrors(text: String, reason: String) {
        #expect(throws: PCISelectorError(option: "-d", text: text, reason: reason)) {
            _ = try PCIIDFilter(parsing: text)
        }
    }

    static let selectors: [(String?, String?)] = [
        ("3", nil), ("00:", nil), ("1f.", nil), (".0", nil), ("*:*:1f.2", nil), ("0000:00:12.0", nil),
        (nil, "8086:"), (nil, ":1000"), (nil, "::06xx"), (nil, "1af4::0200"), (nil, "*:*:0c03:30"),
        ("0a", "1033:"), ("1e", nil), (nil, "dead:beef"),
    ]

    @Test(
        "the same devices as lspci -F DUMP -s/-d select",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"),
        arguments: selectors)
    func sameSelectionAsLspci(slot: String?, ids: String?) throws {
        let lspci = try #require(TestEnvironment.lspci)
        for path in TestEnvironment.fixtureDumps {
            var options = ProbeOptions(lookupNames: false)
            var args = ["-F", path, "-n", "-D"]
            if let slot {
                options.slots = try PCISlotFilter(parsing: slot)
                args += ["-s", slot]
            }
            if let ids {
                options.ids = try PCIIDFilter(parsing: ids)
                args += ["-d", ids]
            }
            let ours = try PCIProbe.run(.dump(path: path), options: options).devices.map(\.address.description)
            let theirs = try TestEnvironment.run(lspci, args).stdout.split(separator: "\n").map { String($0.prefix(12)) }
            #expect(ours == theirs, "\(args)")
        }
    }

    @Test(
        "lspci rejects the same selectors with the same reasons",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"),
        arguments: [("-s", "1:2:3:4"), ("-s", "20"), ("-s", "3.8"), ("-d", "8086"), ("-d", "::1xxxx")])
    func sameErrorsAsLspci(option: String, text: String) throws {
        let lspci = try #require(TestEnvironment.lspci)
        let result = try TestEnvironment.run(lspci, ["-F", "/dev/null", option, text])
        let ours: PCISelectorError
        do throws(PCISelectorError) {
            if option == "-s" { _ = try PCISlotFilter(parsing: text) } else { _ = try PCIIDFilter(parsing: text) }
            Issue.record("accepted \(text)")
            return
        } catch { ours = error }
        #expect(result.stderr.contains("\(option): \(ours.reason)"), "lspci said: \(result.stderr)")
    }
}
