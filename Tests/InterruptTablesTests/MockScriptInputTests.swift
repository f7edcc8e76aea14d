// Hostile and odd input to the mock script language, and the freed-entry rule end to end.
import Testing
import MSIShimCore
import MSIModel
import InterruptTables
@testable import MockDevice
import MockHarness

@Suite("mock scripts: line ends, numbers, echoed input")
struct MockScriptInputTests {
    @Test("CRLF line ends split like LF: two commands, both parse")
    func crlf() throws {
        let lines = parseMockScript("enable msix 1 4\r\nshow\r\n# c\r\n\r\nvector 0\r\n")
        #expect(lines.map(\.number) == [1, 2, 5])
        #expect(lines.map(\.text) == ["enable msix 1 4", "show", "vector 0"])
        for line in lines { #expect(throws: Never.self) { try line.command.get() } }
    }

    @Test("a lone CR is not a line end: the word carrying it is an error, echoed escaped")
    func loneCR() throws {
        let lines = parseMockScript("show\rshow\n")
        #expect(lines.count == 1)
        guard case .failure(let e) = lines[0].command else { Issue.record("accepted"); return }
        #expect(e.message.contains("\\r") && !e.message.contains("\r"))
    }

    @Test("numbers: decimal or 0x-hex, never signed; 0x-1 is refused like -1", arguments: [
        "vector -1", "vector 0x-1", "vector 0x+1", "vector +1", "vector 0x", "vector 1_0", "free msix 0X-2",
        "ims create -4", "alloc ims cookie=-1", "alloc ims cookie=+ff", "alloc ims cookie=0x-ff",
        "vector 99999999999999999999", "affinity msix +1 0", "affinity msix 1 0x-1", "cpu +1 online",
        "ntb free -1", "ntb trigger +0", "ntb setup align=+10", "ntb setup max=0x-1", "queue free kernel +1",
        "queue create kernel pasid=+1", "queue create kernel pasid=0x-1",
    ])
    func signedNumbersRefused(_ text: String) {
        guard case .failure = parseMockCommand(text, line: 1) else {
            Issue.record("'\(text)' was accepted")
            return
        }
    }

    @Test("numbers that are fine still parse")
    func goodNumbers() throws {
        #expect(try parseMockCommand("vector 0x1f", line: 1).get() == .vector(31))
        #expect(try parseMockCommand("vector 0X1F", line: 1).get() == .vector(31))
        #expect(try parseMockCommand("vector 007", line: 1).get() == .vector(7))
        #expect(try parseMockCommand("alloc ims cookie=0xdeadBEEF", line: 1).get() == .allocIMS(cookie: 0xDEAD_BEEF))
        #expect(parseScriptNumber("-0") == nil && parseScriptNumber("0") == 0)
    }

    @Test("an error echoing a huge or control-laden word stays one short line")
    func echoBounded() throws {
        let huge = String(repeating: "x", count: 131_000)
        for text in ["frobnicate\u{1B}[31m", huge, "request \u{7}msi 1", "fire msix \(huge)"] {
            guard case .failure(let e) = parseMockCommand(text, line: 1) else { Issue.record("accepted"); continue }
            #expect(!e.message.contains { $0.isNewline || $0 == "\u{1B}" || $0 == "\u{7}" }, "\(e.message.prefix(80))")
            #expect(e.message.utf8.count < 300, "\(e.message.utf8.count) bytes")
        }
    }
}

@Suite("freed MSI-X entries stay masked (enable_irq without request_irq is refused)")
struct FreedEntryTests {
    @Test("the reproducer: unmask of a never-requested vector fails, free leaves it masked, a fire goes pending")
    func reproducer() throws {
        let s = try MockSession(device: try MockPCIDevice.builtIn())
        _ = try s.run(.enable(.msix, min: 1, max: 4, affinity: false))
        #expect(throws: MockCommandError.self) { try s.run(.unmask(.msix, index: 1)) }
        _ = try s.run(.freeMSIX(index: 1))
        let fire = try s.run(.fire(.msix, index: 1))
        #expect(fire["pending"] == .bool(true), "\(fire)")
        #expect(fire["delivered"] == nil && fire["dropped"] == nil)
        let table = try MSIXTable(config: s.device.config, capOffset: 0xA0) { i in try #require(s.device.bar(i)) }
        #expect(try table.readEntry(1).masked)
        #expect(s.model.warnings.contains { $0.function == "__irq_startup" })
    }

    @Test("after request, mask, free_irq and free: the entry is masked and nothing reaches the platform")
    func requestedThenFreed() throws {
        let s = try MockSession(device: try MockPCIDevice.builtIn())
        _ = try s.run(.enable(.msix, min: 2, max: 2, affinity: false))
        _ = try s.run(.request(.msix, index: 1))
        _ = try s.run(.mask(.msix, index: 1))
        _ = try s.run(.release(.msix, index: 1))
        #expect(throws: MockCommandError.self) { try s.run(.unmask(.msix, index: 1)) }
        _ = try s.run(.freeMSIX(index: 1))
        #expect(try s.run(.fire(.msix, index: 1))["pending"] == .bool(true))
    }
}

@Test("free_irq of an unmasked device IMS slot masks it before clearing its message (no rule-10 violation)")
func imsShutdownMasksFirst() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, """
        ims create 4096 device
        alloc ims
        request ims 0
        release ims 0
        free ims 0
        alloc ims
        request ims 0
        """)
    #expect(s.device.violations.isEmpty, "\(s.device.violations)")
}
