import TestSupport
import Foundation
import Testing

/// `msictl watch` as a user meets it: --once on this machine, bad input, devices that come
/// and go under a running watch (a fake /proc), and the terminal restored after Ctrl-C.
@Suite(
    "msictl watch (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct WatchCLITests {
    static let hasLiveMSI: Bool = {
        let text = (try? String(contentsOfFile: "/proc/interrupts", encoding: .utf8)) ?? ""
        return TestEnvironment.hasLivePCI && text.contains("PCI-MSI")
    }()

    func msictl(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        try TestEnvironment.run(try #require(TestEnvironment.msictl), args, environment: environment)
    }

    /// Per irq: per-CPU counts of the MSI rows of /proc/interrupts.
    static func counts() throws -> [Int: [UInt64]] {
        var out: [Int: [UInt64]] = [:]
        for line in try String(contentsOfFile: "/proc/interrupts", encoding: .utf8).split(separator: "\n").dropFirst()
        where line.contains("PCI-MSI") {
            let fields = line.split(separator: " ")
            guard let irq = Int(fields[0].dropLast()) else { continue }
            out[irq] = fields.dropFirst().prefix { UInt64($0) != nil }.compactMap { UInt64($0) }
        }
        return out
    }

    @Test("--once --json on this machine: every MSI vector, totals and placement as the kernel shows them",
          .enabled(if: hasLiveMSI, "no MSI/MSI-X rows in /proc/interrupts"))
    func onceLive() throws {
        let before = try Self.counts()
        let r = try msictl(["watch", "--once", "--json", "--interval", "0.2"])
        let after = try Self.counts()
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let frame = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let interval = try #require(frame["interval"] as? Double)
        #expect(interval >= 0.2 && interval < 5)
        #expect((frame["timestamp"] as? String)?.hasSuffix("Z") == true)
        let devices = try #require(frame["devices"] as? [[String: Any]])
        var irqs: Set<Int> = []
        var previousRate = Double.infinity
        for d in devices {
            let slot = try #require(d["slot"] as? String)
            let rate = try #require(d["rate"] as? Double)
            #expect(rate <= previousRate + 0.001, "devices sorted by rate")
            previousRate = rate
            #expect(d["driver"] as? String == (try? FileManager.default.destinationOfSymbolicLink(
                atPath: "/sys/bus/pci/devices/\(slot)/driver")).map { URL(fileURLWithPath: $0).lastPathComponent })
            for v in try #require(d["vectors"] as? [[String: Any]]) {
                let irq = try #require(v["irq"] as? Int)
                irqs.insert(irq)
                let total = try #require(v["total"] as? Int)
                let low = before[irq]?.reduce(0, +), high = after[irq]?.reduce(0, +)
                if let low, let high { #expect(UInt64(total) >= low && UInt64(total) <= high, "irq \(irq)") }
                if v["state"] as? String == "steady" {
                    let perCPU = try #require(v["perCPU"] as? [Double])
                    #expect(perCPU.allSatisfy { $0 >= 0 } && (v["rate"] as? Double ?? -1) >= 0)
                }
                let effective = try? String(contentsOfFile: "/proc/irq/\(irq)/effective_affinity_list", encoding: .utf8)
                if let effective {
                    #expect(v["effectiveAffinity"] as? String == effective.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        // Every MSI row present before and after is shown (watch selects every device by default).
        #expect(Set(before.keys).intersection(after.keys).isSubset(of: irqs))
    }

    @Test("--once without a terminal: one plain block, device lines and vector rows",
          .enabled(if: hasLiveMSI, "no MSI/MSI-X rows in /proc/interrupts"))
    func onceText() throws {
        let r = try msictl(["watch", "--once", "--interval", "0.1"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("msictl watch: every 0.1 s") == true)
        #expect(!r.stdout.contains("\u{1B}["), "no terminal control sequences in a pipe")
        #expect(lines.contains { $0.hasPrefix("  MSI") && $0.contains("CPU") })
    }

    @Test("bad input: one line on stderr, exit status 2", arguments: [
        (["--interval", "0"], "--interval"), (["--interval", "-1"], "--interval"), (["--interval", "nan"], "nan"),
        (["--interval", "1e9"], "between 0.05 and 3600"), (["--interval", "x"], "x"), (["zz:zz"], "slot 'zz:zz'"),
        (["ff:1f.7"], "no device matches ff:1f.7"), (["-d", "8086"], "At least two fields"),
        (["-d", "ffff:fffe"], "no device matches -d ffff:fffe"),
    ])
    func badInput(args: [String], word: String) throws {
        let r = try msictl(["watch", "--once"] + args)
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && r.stderr.hasPrefix("msictl") && r.stderr.contains(word), "\(r.stderr)")
    }

    @Test("devices removed, rebound and re-added under a running watch: gone, restarted, new; it keeps running")
    func devicesComeAndGo() throws {
        let fixtures = TestEnvironment.packageRoot.appendingPathComponent("Tests/Fixtures/interrupts")
        let dir = try TestEnvironment.temporaryDirectory("watch")
        let proc = dir.appendingPathComponent("proc")
        try FileManager.default.createDirectory(at: proc, withIntermediateDirectories: true)
        let interrupts = proc.appendingPathComponent("interrupts")
        func install(_ name: String) throws {
            // Replace atomically so watch never reads a half-written file.
            let tmp = proc.appendingPathComponent("interrupts.tmp")
            try Data(contentsOf: fixtures.appendingPathComponent("\(name).txt")).write(to: tmp)
            _ = rename(tmp.path, interrupts.path)
        }
        try install("live-2")
        let out = dir.appendingPathComponent("out.jsonl")
        try Data().write(to: out)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(TestEnvironment.msictl))
        process.arguments = ["watch", "--json", "--interval", "0.1"]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["MSICTL_PROC_ROOT": proc.path, "MSICTL_SYSFS_ROOT": dir.appendingPathComponent("sys").path]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: out)
        let err = Pipe()
        process.standardError = err
        try process.run()
        func frames() -> [[String: Any]] {
            let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        /// Waits (up to 20 s on a loaded machine) until watch has printed `count` frames.
        func waitFor(_ count: Int) {
            let deadline = Date().addingTimeInterval(20)
            while frames().count < count && Date() < deadline && process.isRunning { usleep(20_000) }
        }
        waitFor(1)
        try install("hotplug-1")
        // Three frames after each change, not two: a frame whose sample was read just before the
        // rename can be printed just after it, and the change then shows in the next two.
        let seen1 = frames().count
        waitFor(seen1 + 3)
        try install("hotplug-2")
        let seen2 = frames().count
        waitFor(seen2 + 3)
        #expect(process.isRunning, "watch keeps running while devices come and go")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).isEmpty)

        var states: [Int: Set<String>] = [:]
        for frame in frames() {
            for d in frame["devices"] as? [[String: Any]] ?? [] {
                for v in d["vectors"] as? [[String: Any]] ?? [] {
                    guard let irq = v["irq"] as? Int, let state = v["state"] as? String else { continue }
                    states[irq, default: []].insert(state)
                    if let rate = v["rate"] as? Double { #expect(rate >= 0) }
                    if state == "appeared" || state == "disappeared" { #expect(v["rate"] is NSNull) }
                }
            }
        }
        #expect(states[33]?.contains("disappeared") == true && states[34]?.contains("disappeared") == true)
        #expect(states[41]?.contains("restarted") == true && states[36]?.contains("restarted") == true)
        #expect(states[44]?.contains("appeared") == true && states[45]?.contains("appeared") == true)
        #expect(states[45]?.contains("steady") == true, "a new vector is steady from its second frame")
    }

    @Test("on a terminal: alternate screen while watching, restored after Ctrl-C",
          .enabled(if: TestEnvironment.which("script") != nil, "util-linux script(1) is not installed"))
    func terminalRestored() throws {
        let dir = try TestEnvironment.temporaryDirectory("tty")
        let typescript = dir.appendingPathComponent("typescript").path
        let msictl = try #require(TestEnvironment.msictl)
        // script(1) gives msictl a pseudo-terminal; timeout sends SIGINT (Ctrl-C) after 1.5 s.
        let r = try TestEnvironment.run(
            try #require(TestEnvironment.which("script")),
            ["-q", "-e", "-c", "timeout --preserve-status -s INT 1.5 \(msictl) watch --interval 0.2", typescript])
        let screen = try String(contentsOfFile: typescript, encoding: .utf8)
        #expect(r.status == 0, "\(r)")
        let enter = try #require(screen.range(of: "\u{1B}[?1049h"))
        let leave = try #require(screen.range(of: "\u{1B}[?1049l", options: .backwards))
        #expect(enter.upperBound < leave.lowerBound)
        #expect(screen.contains("msictl watch: every 0.2 s"))
        #expect(screen[leave.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                || !screen[leave.upperBound...].contains("msictl watch:"), "nothing drawn after the restore")
        #expect(screen.contains("\u{1B}[?25h"), "cursor shown again")
    }
}
