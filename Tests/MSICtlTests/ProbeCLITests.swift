import TestSupport
import Foundation
import Testing

/// `msictl probe` as a user meets it: exit statuses, one-line errors, JSON shape, and the
/// JSON's MSI/MSI-X fields against lspci.
@Suite(
    "msictl probe (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct ProbeCLITests {
    func msictl(_ args: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try TestEnvironment.run(try #require(TestEnvironment.msictl), args)
    }

    func write(_ text: String, name: String = "t.dump") throws -> String {
        let dir = try TestEnvironment.temporaryDirectory("cli")
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// One device: 82574L-like, MSI at 0x50 looping back to itself via MSI-X at 0x60.
    static let loopedDump = """
        00:01.0 Ethernet controller
        00: 86 80 d3 10 07 00 10 00 03 00 00 02 00 00 00 00
        10: 00 00 a8 fe 41 c0 00 00 00 00 00 00 00 00 00 00
        20: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        30: 00 00 00 00 50 00 00 00 00 00 00 00 00 00 00 00
        40: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        50: 05 60 13 01 04 20 e0 fe 22 00 00 00 02 00 00 00
        60: 11 50 04 80 03 00 00 00 03 20 00 00 00 00 00 00
        70: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00

        """

    func expectOneLine(_ stderr: String, contains word: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(stderr)", sourceLocation: sourceLocation)
        #expect(stderr.hasPrefix("msictl"), "stderr: \(stderr)", sourceLocation: sourceLocation)
        #expect(stderr.contains(word), "stderr: \(stderr)", sourceLocation: sourceLocation)
    }

    @Test("usage errors: one line on stderr, exit status 2", arguments: [
        (["probe", "--bogus"], "--bogus"),
        (["probe", "-s"], "-s"),
        (["probe", "--dump-reader", "fast"], "fast"),
        (["probe", "extra-argument"], "extra-argument"),
    ])
    func usage(args: [String], word: String) throws {
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), args)
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        expectOneLine(r.stderr, contains: word)
    }

    @Test("bad selectors: lspci's reason on one line, exit status 2", arguments: [
        ("-s", "1:2:3:4", "Too many fields"), ("-s", "20", "Invalid slot number"), ("-d", "8086", "At least two fields"),
        ("-d", "::1xxxx", "Invalid class code"),
    ])
    func badSelectors(option: String, text: String, reason: String) throws {
        let path = try write(Self.loopedDump)
        let r = try msictl("probe", "--dump", path, option, text)
        #expect(r.status == 2)
        expectOneLine(r.stderr, contains: "\(option) '\(text)': \(reason)")
    }

    @Test("a selector that matches nothing: exit status 1, like grep")
    func noMatch() throws {
        let path = try write(Self.loopedDump)
        let r = try msictl("probe", "--dump", path, "-s", "1f.7")
        #expect(r.status == 1 && r.stdout.isEmpty)
        expectOneLine(r.stderr, contains: "no device matches -s 1f.7")
        #expect(try msictl("probe", "--dump", path, "-d", "1af4:").status == 1)
    }

    @Test("unreadable, empty and malformed dumps: the line and the reason, exit status 2")
    func badDumps() throws {
        var r = try msictl("probe", "--dump", "/nonexistent.dump")
        #expect(r.status == 2)
        expectOneLine(r.stderr, contains: "cannot open dump /nonexistent.dump: ENOENT (no such file or directory)")

        let empty = try write("")
        r = try msictl("probe", "--dump", empty)
        #expect(r.status == 2)
        expectOneLine(r.stderr, contains: "no devices: the file is empty")

        let malformed = try write("00:01.0 D\n00: 86 80 d3 10\n10: 00 0\n")
        r = try msictl("probe", "--json", "--dump", malformed)
        #expect(r.status == 2 && r.stdout.isEmpty)
        expectOneLine(r.stderr, contains: "\(malformed):3: malformed data at column 8")

        let crash = try write("00:01.0 D\n00: 86 80 d3 10\n80000000: 00\n")  // libpci 3.9 would segfault
        r = try msictl("probe", "--dump", crash, "--dump-reader", "libpci")
        #expect(r.status == 2)
        expectOneLine(r.stderr, contains: ":3: offset 80000000 is outside config space")

        let bare = try write("00:03.0\n00: 86 80 d3 10\n")
        r = try msictl("probe", "--dump", bare)
        #expect(r.status == 2)
        expectOneLine(r.stderr, contains: "line 1: a device line needs text after the address")
    }

    @Test("a looped capability chain is reported like lspci and is not an error")
    func loopedChain() throws {
        let path = try write(Self.loopedDump)
        let r = try msictl("probe", "--dump", path)
        #expect(r.status == 0 && r.stderr.isEmpty)
        #expect(r.stdout.contains("<chain looped at [50]>"))
        #expect(r.stdout.contains("MSI           [50] Enable+ Count=2/2 Maskable+ 64bit-"))
        #expect(r.stdout.contains("Address: fee02004  Data: 0022"))
        #expect(r.stdout.contains("MSI-X         [60] Enable+ Count=5 Masked-"))
        let j = try msictl("probe", "--json", "--dump", path)
        let device = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: Any]]).first
        let chain = device?["capabilityChain"] as? [String: Any]
        #expect((chain?["standard"] as? [String: Any])?["status"] as? String == "looped")
        #expect((chain?["standard"] as? [String: Any])?["at"] as? Int == 0x50)
    }

    @Test("a gone (all-ones) device and a truncated one: listed, one stderr line each, exit status 2")
    func goneDevice() throws {
        var text = Self.loopedDump + "00:04.0 Gone\n"
        for row in stride(from: 0, to: 256, by: 16) {
            text += String(row, radix: 16).leftPadded(2) + ":" + String(repeating: " ff", count: 16) + "\n"
        }
        text += "\n00:05.0 Short\n00: 86 80 d3 10\n\n"
        let path = try write(text)
        let r = try msictl("probe", "--dump", path)
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.contains("0000:00:04.0: device not responding") == true)
        let goneLine = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("00:04.0") }! + 1
        #expect(lines.first?.contains("(dump line \(goneLine))") == true)
        #expect(lines.last?.contains("0000:00:05.0: cannot read the standard configuration header") == true)
        #expect(r.stdout.contains("0000:00:01.0 ") && r.stdout.contains("0000:00:04.0 ") && r.stdout.contains("0000:00:05.0 "))
    }

    @Test(
        "JSON: an array with every key, numbers as numbers, null for what a dump cannot know",
        arguments: TestEnvironment.fixtureDumps)
    func jsonShape(path: String) throws {
        let r = try msictl("probe", "--json", "--dump", path)
        #expect(r.status == 0, "\(r.stderr)")
        let devices = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(!devices.isEmpty)
        let keys = [
            "slot", "vendorId", "deviceId", "classId", "revision", "vendorName", "deviceName", "pcieType", "driver",
            "iommuGroup", "bars", "capabilities", "msi", "msix", "irqs",
        ]
        for d in devices {
            for k in keys { #expect(d.keys.contains(k), "missing \(k)") }
            #expect(d["vendorId"] is Int && d["deviceId"] is Int && d["classId"] is Int && d["revision"] is Int)
            #expect(d["driver"] is NSNull && d["iommuGroup"] is NSNull && d["irqs"] is NSNull)
            for bar in d["bars"] as? [[String: Any]] ?? [] {
                for k in ["index", "base", "size", "is64Bit", "prefetchable", "isIO"] { #expect(bar.keys.contains(k)) }
                #expect(bar["size"] is NSNull)
            }
            for cap in d["capabilities"] as? [[String: Any]] ?? [] {
                for k in ["id", "offset", "name", "extended"] { #expect(cap.keys.contains(k)) }
            }
            if let msi = d["msi"] as? [String: Any] {
                for k in ["capOffset", "enabled", "countCapable", "countEnabled", "maskable", "is64Bit", "address", "data", "mask", "pending"] {
                    #expect(msi.keys.contains(k))
                }
            } else {
                #expect(d["msi"] is NSNull)
            }
            if let msix = d["msix"] as? [String: Any] {
                for k in ["capOffset", "enabled", "functionMasked", "tableSize", "tableBAR", "tableOffset", "pbaBAR", "pbaOffset"] {
                    #expect(msix.keys.contains(k))
                }
            } else {
                #expect(d["msix"] is NSNull)
            }
        }
        // The native reader prints byte-identical JSON.
        #expect(try msictl("probe", "--json", "--dump", path, "--dump-reader", "native").stdout == r.stdout)
    }

    @Test(
        "JSON MSI/MSI-X fields and capability offsets agree with lspci, dumps and live",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"))
    func jsonAgreesWithLspci() throws {
        let lspci = try #require(TestEnvironment.lspci)
        var sources: [([String], [String])] = TestEnvironment.fixtureDumps.map { (["--dump", $0], ["-F", $0]) }
        if TestEnvironment.hasLivePCI { sources.append(([], [])) }
        #expect(!sources.isEmpty)
        for (ours, theirs) in sources {
            let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["probe", "--json"] + ours)
            let devices = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
            let l = LSPCIOutput.parse(try TestEnvironment.run(lspci, theirs + ["-D", "-vvv"]).stdout)
            #expect(devices.map { $0["slot"] as? String ?? "" } == l.map(\.slot))
            for (d, ld) in zip(devices, l) {
                let at = "\(ours) \(ld.slot)"
                let caps = (d["capabilities"] as? [[String: Any]] ?? []).map { $0["offset"] as? Int ?? -1 }
                #expect(caps == ld.capabilities.map(\.offset), "\(at)")
                if let msi = d["msi"] as? [String: Any], let lm = ld.msi {
                    #expect(msi["enabled"] as? Bool == lm.enabled && msi["maskable"] as? Bool == lm.maskable, "\(at)")
                    #expect(msi["countEnabled"] as? Int == lm.countEnabled && msi["countCapable"] as? Int == lm.countCapable, "\(at)")
                    #expect(msi["is64Bit"] as? Bool == lm.is64Bit, "\(at)")
                    let address = (msi["address"] as? NSNumber)?.uint64Value ?? 0
                    #expect(String(address, radix: 16).leftPadded(lm.is64Bit ? 16 : 8) == lm.address, "\(at)")
                    #expect((msi["data"] as? Int).map { String($0, radix: 16).leftPadded(4) } == lm.data, "\(at)")
                    #expect((msi["mask"] as? Int).map { String($0, radix: 16).leftPadded(8) } == lm.mask, "\(at)")
                    #expect((msi["pending"] as? Int).map { String($0, radix: 16).leftPadded(8) } == lm.pending, "\(at)")
                } else {
                    #expect(d["msi"] is NSNull && ld.msi == nil, "\(at)")
                }
                if let x = d["msix"] as? [String: Any], let lx = ld.msix {
                    #expect(x["enabled"] as? Bool == lx.enabled && x["functionMasked"] as? Bool == lx.masked, "\(at)")
                    #expect(x["tableSize"] as? Int == lx.count, "\(at)")
                    #expect(x["tableBAR"] as? Int == lx.tableBAR && x["pbaBAR"] as? Int == lx.pbaBAR, "\(at)")
                    #expect((x["tableOffset"] as? Int).map(UInt32.init) == lx.tableOffset, "\(at)")
                    #expect((x["pbaOffset"] as? Int).map(UInt32.init) == lx.pbaOffset, "\(at)")
                } else {
                    #expect(d["msix"] is NSNull && ld.msix == nil, "\(at)")
                }
            }
        }
    }

    @Test(
        "live JSON: drivers, IOMMU groups and IRQ counts per CPU",
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func live() throws {
        let r = try msictl("probe", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let devices = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        for d in devices {
            let slot = d["slot"] as? String ?? ""
            let irqs = try #require(d["irqs"] as? [[String: Any]], "\(slot): irqs must be an array on the live system")
            let sysfsIRQs = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices/\(slot)/msi_irqs")) ?? []
            #expect(irqs.count == sysfsIRQs.count, "\(slot)")
            for irq in irqs {
                #expect(["msi", "msix"].contains(irq["kind"] as? String ?? ""))
                if let counts = irq["counts"] as? [Int] { #expect(counts.count == (irq["cpus"] as? [Int])?.count) }
            }
        }
        // Text output: one block per device, in the same order.
        let text = try msictl("probe")
        let headers = text.stdout.split(separator: "\n").filter { !$0.hasPrefix(" ") }.map { String($0.prefix(12)) }
        #expect(headers == devices.map { $0["slot"] as? String ?? "" })
        // A selector that picks one device.
        if let first = devices.first?["slot"] as? String {
            let one = try msictl("probe", "--json", "-s", first)
            #expect(one.status == 0 && one.stdout.components(separatedBy: "\"slot\"").count == 2)
        }
    }

    @Test(
        "the everyday fast parse and ArgumentParser give the same results")
    func fastParseMatchesArgumentParser() throws {
        let path = try #require(TestEnvironment.fixtureDumps.last)
        // "--dump=FILE" is left to ArgumentParser; "--dump FILE" takes the fast path.
        for extra in [[], ["-s", "0a"], ["-d", "::0c03"], ["--dump-reader", "native"], ["-s", "1f.7"]] {
            let fast = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["probe", "--json", "--dump", path] + extra)
            let slow = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["probe", "--json", "--dump=\(path)"] + extra)
            #expect(fast.status == slow.status && fast.stdout == slow.stdout && fast.stderr == slow.stderr, "\(extra)")
        }
        // Repeated options are left to ArgumentParser too (the last one wins there).
        #expect(try msictl("probe", "--dump", path, "-s", "1f.7", "-s", "0a").status == 0)
    }

    @Test(
        "as an unprivileged user: 64 bytes of config space, capabilities need root, not an error",
        .enabled(if: TestEnvironment.isRoot, "dropping privileges needs root"),
        .enabled(if: TestEnvironment.which("setpriv") != nil, "setpriv (util-linux) is not installed"),
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func unprivileged() throws {
        let setpriv = try #require(TestEnvironment.which("setpriv"))
        let binary = try #require(TestEnvironment.msictl)
        let drop = ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "probe"]
        let r = try TestEnvironment.run(setpriv, drop + ["--json"])
        #expect(r.status == 0)
        expectOneLine(r.stderr, contains: "capabilities need root")
        let devices = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        for d in devices {
            #expect(d["configSize"] as? Int == 64)
            let status = ((d["capabilityChain"] as? [String: Any])?["standard"] as? [String: Any])?["status"] as? String
            let hasCaps = (d["capabilities"] as? [Any])?.isEmpty == false
            #expect(!hasCaps && (status == "accessDenied" || status == "complete"))
        }
        let text = try TestEnvironment.run(setpriv, drop)
        #expect(text.stdout.contains("unknown (capability list not readable)") || devices.allSatisfy {
            ((($0["capabilityChain"] as? [String: Any])?["standard"] as? [String: Any])?["status"] as? String) == "complete"
        })
    }

    @Test("--help exits 0 and documents the exit statuses")
    func help() throws {
        let r = try msictl("probe", "--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("--dump") && r.stdout.contains("Exit status"))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
