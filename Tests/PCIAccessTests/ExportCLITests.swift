import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

/// `msictl export` (the binary): Prometheus' text format read back by the Python client's
/// parser (Debian's python3-prometheus-client), values equal to the fake /proc/interrupts and,
/// live, between two snapshots of the real one; atomic replacement of --output.
@Suite(
    "msictl export (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct ExportCLITests {
    /// Debian's interpreter, where python3-prometheus-client installs (scripts/bootstrap).
    static let python: String? = {
        let path = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: path),
              let r = try? TestEnvironment.run(path, ["-c", "from prometheus_client import parser"]), r.status == 0
        else { return nil }
        return path
    }()

    /// One parsed sample: metric name, labels, value.
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Parses exposition text with prometheus_client's parser; also returns each family's type.
    static func parse(_ text: String) throws -> (samples: [Sample], types: [String: String]) {
        let dir = try TestEnvironment.temporaryDirectory("prom")
        let file = dir.appendingPathComponent("in.prom")
        try Data(text.utf8).write(to: file)
        let script = """
            from json import dumps
            from sys import argv
            from prometheus_client.parser import text_string_to_metric_families
            out = {"samples": [], "types": {}}
            for f in text_string_to_metric_families(open(argv[1]).read()):
                out["types"][f.name] = f.type
                for s in f.samples:
                    out["samples"].append([s.name, s.labels, s.value])
            print(dumps(out))
            """
        let r = try TestEnvironment.run(try #require(python), ["-c", script, file.path])
        try #require(r.status == 0, "the parser refused the output: \(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let samples = try #require(object["samples"] as? [[Any]]).map { s in
            Sample(name: s[0] as? String ?? "", labels: s[1] as? [String: String] ?? [:], value: (s[2] as? NSNumber)?.doubleValue ?? .nan)
        }
        return (samples, object["types"] as? [String: String] ?? [:])
    }

    /// A fake machine: an MSI-X NIC whose driver name needs escaping, an MSI device, a
    /// device without either; /proc/interrupts and /proc/irq for the NIC's vectors.
    static func fakeMachine() throws -> (env: [String: String], tree: Fixtures.FakeSysfs) {
        let tree = try Fixtures.FakeSysfs()
        var nic = Fixtures.config(capPointer: 0x50)
        Fixtures.msi32Maskable(&nic, at: 0x50, next: 0x60)
        Fixtures.msix(&nic, at: 0x60, next: 0)
        nic[0x52] &= 0xFE  // MSI off, MSI-X on
        try tree.add("0000:00:02.0", config: nic, driver: "we\"ird\\drv", msi: [(41, "msix"), (42, "msix")])
        var msi = Fixtures.config(capPointer: 0x50)
        Fixtures.msi32Maskable(&msi, at: 0x50, next: 0)
        try tree.add("0000:00:03.0", config: msi, driver: "ahci", msi: [(50, "msi")])
        try tree.add("0000:00:04.0", config: Fixtures.config())
        _ = try tree.interrupts("""
                       CPU0       CPU2
             41:          3          4  PCI-MSIX-0000:00:02.0   0-edge      eth0-rx
             42:          0 4294967295  PCI-MSIX-0000:00:02.0   1-edge      eth0-tx
             50:         17          0  PCI-MSI-0000:00:03.0   0-edge      ahci

            """)
        for (irq, cpu) in [(41, "2"), (50, "0")] {
            let dir = tree.root.appendingPathComponent("irq/\(irq)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data("\(cpu)\n".utf8).write(to: dir.appendingPathComponent("effective_affinity_list"))
        }
        return (["MSICTL_SYSFS_ROOT": tree.root.path, "MSICTL_PROC_ROOT": tree.root.path], tree)
    }

    @Test("Prometheus output on a fake machine: parsed by prometheus_client, escaped labels, exact counts",
          .enabled(if: python != nil, "Debian's python3-prometheus-client is not installed (scripts/bootstrap installs it)"))
    func fake() throws {
        let (env, _) = try Self.fakeMachine()
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["export"], environment: env)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(r.stdout.contains(#"driver="we\"ird\\drv""#), "label value escaped per the format")
        let (samples, types) = try Self.parse(r.stdout)
        #expect(types["msictl_interrupts"] == "counter" && types["msictl_msix_enabled"] == "gauge")
        #expect(types["msictl_vector_effective_cpu"] == "gauge" && types["msictl_msi_vectors"] == "gauge")
        let nic: [String: String] = ["slot": "0000:00:02.0", "driver": "we\"ird\\drv"]
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        #expect(value("msictl_msix_enabled", nic) == 1 && value("msictl_msix_table_size", nic) == 5)
        #expect(value("msictl_msi_enabled", nic) == 0 && value("msictl_msi_vectors", nic) == 0)
        let ahci = ["slot": "0000:00:03.0", "driver": "ahci"]
        #expect(value("msictl_msi_enabled", ahci) == 1 && value("msictl_msi_vectors", ahci) == 2)
        #expect(value("msictl_msix_enabled", ahci) == nil)
        #expect(!samples.contains { $0.labels["slot"] == "0000:00:04.0" }, "no MSI/MSI-X: no series")
        // Every count of /proc/interrupts, per vector and CPU, and nothing else.
        let counts = samples.filter { $0.name == "msictl_interrupts_total" }
        let expected: [([String: String], Double)] = [
            (nic.merging(["kind": "msix", "index": "0", "cpu": "0"]) { $1 }, 3),
            (nic.merging(["kind": "msix", "index": "0", "cpu": "2"]) { $1 }, 4),
            (nic.merging(["kind": "msix", "index": "1", "cpu": "0"]) { $1 }, 0),
            (nic.merging(["kind": "msix", "index": "1", "cpu": "2"]) { $1 }, 4_294_967_295),
            (ahci.merging(["kind": "msi", "index": "0", "cpu": "0"]) { $1 }, 17),
            (ahci.merging(["kind": "msi", "index": "0", "cpu": "2"]) { $1 }, 0),
        ]
        #expect(counts.count == expected.count)
        for (labels, v) in expected { #expect(value("msictl_interrupts_total", labels) == v, "\(labels)") }
        #expect(value("msictl_vector_effective_cpu", nic.merging(["kind": "msix", "index": "0"]) { $1 }) == 2)
        #expect(value("msictl_vector_effective_cpu", nic.merging(["kind": "msix", "index": "1"]) { $1 }) == nil)
        #expect(value("msictl_vector_effective_cpu", ahci.merging(["kind": "msi", "index": "0"]) { $1 }) == 0)
    }

    @Test("a non-root view (64 config bytes): counts still exported, capability gauges not, one warning line, exit 0")
    func unprivileged() throws {
        let tree = try Fixtures.FakeSysfs()
        try tree.add("0000:00:02.0", config: Fixtures.config(capPointer: 0x50, size: 64), driver: "e1000e", msi: [(41, "msix")])
        _ = try tree.interrupts("""
                       CPU0       CPU1
             41:          3          4  PCI-MSIX-0000:00:02.0   0-edge      eth0-rx

            """)
        let env = ["MSICTL_SYSFS_ROOT": tree.root.path, "MSICTL_PROC_ROOT": tree.root.path]
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["export"], environment: env)
        #expect(r.status == 0)
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("capabilities need root"), "\(r.stderr)")
        #expect(r.stdout.contains(#"msictl_interrupts_total{slot="0000:00:02.0",driver="e1000e",kind="msix",index="0",cpu="1"} 4"#))
        #expect(!r.stdout.contains("msictl_msix_enabled{"), "capabilities unknown: no guess")
    }

    @Test("--format json holds the same values")
    func json() throws {
        let (env, _) = try Self.fakeMachine()
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["export", "--format", "json"], environment: env)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        #expect(devices.map { $0["slot"] as? String } == ["0000:00:02.0", "0000:00:03.0"])
        let vectors = try #require(devices[0]["vectors"] as? [[String: Any]])
        #expect(vectors.map { $0["counts"] as? [Int] } == [[3, 4], [0, 4_294_967_295]])
        #expect(vectors[0]["effectiveAffinity"] as? String == "2" && vectors[1]["effectiveAffinity"] is NSNull)
        #expect(devices[1]["msiVectors"] as? Int == 2 && devices[1]["msixEnabled"] is NSNull)
    }

    @Test("--output replaces the file atomically; an unwritable path is one line, exit 2, and leaves nothing behind")
    func output() throws {
        let (env, _) = try Self.fakeMachine()
        let msictl = try #require(TestEnvironment.msictl)
        let dir = try TestEnvironment.temporaryDirectory("export")
        let target = dir.appendingPathComponent("msictl.prom").path
        try Data("old\n".utf8).write(to: URL(fileURLWithPath: target))
        let ok = try TestEnvironment.run(msictl, ["export", "--output", target], environment: env)
        #expect(ok.status == 0 && ok.stdout.isEmpty && ok.stderr.isEmpty)
        let written = try String(contentsOfFile: target, encoding: .utf8)
        #expect(written.hasPrefix("# HELP msictl_") && written.hasSuffix("\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["msictl.prom"], "no temporary file left")
        let attributes = try FileManager.default.attributesOfItem(atPath: target)
        #expect((attributes[.posixPermissions] as? Int) == 0o644, "readable by node exporter")

        for bad in [dir.appendingPathComponent("missing/x.prom").path, dir.path, "/proc/version"] {
            let r = try TestEnvironment.run(msictl, ["export", "--output", bad], environment: env)
            #expect(r.status == 2, "\(bad)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("msictl: cannot "), "\(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["msictl.prom"])
        #expect(try String(contentsOfFile: target, encoding: .utf8) == written, "a failed export leaves the old file alone")
    }

    @Test("live: every MSI count of this machine, parsed back, lies between two /proc/interrupts snapshots",
          .enabled(if: python != nil && TestEnvironment.hasLivePCI, "no python3-prometheus-client or no PCI devices"))
    func live() throws {
        let before = ProcInterrupts.read() ?? ProcInterrupts(parsing: "")
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["export"])
        let after = ProcInterrupts.read() ?? ProcInterrupts(parsing: "")
        #expect(r.status == 0, "\(r.stderr)")
        let counts = try Self.parse(r.stdout).samples.filter { $0.name == "msictl_interrupts_total" }
        var rows = 0
        for row in after.rows {
            guard let source = row.source, let old = before.row(irq: row.irq), old.chip == row.chip else { continue }
            for (i, cpu) in after.cpus.enumerated() {
                let sample = counts.first {
                    $0.labels["slot"] == source.address.description && $0.labels["index"] == String(source.index)
                        && $0.labels["cpu"] == String(cpu)
                }
                guard let sample else { Issue.record("no sample for irq \(row.irq) cpu \(cpu)"); continue }
                #expect(sample.value >= Double(old.counts[i]) && sample.value <= Double(row.counts[i]), "irq \(row.irq) cpu \(cpu)")
                rows += 1
            }
        }
        #expect(counts.count == rows)
    }

    @Test("promtool (Debian's prometheus package, where installed) lints the output clean and runs README's queries",
          .enabled(if: TestEnvironment.which("promtool") != nil, "promtool is not installed (apt-get install prometheus)"))
    func promtool() throws {
        let promtool = try #require(TestEnvironment.which("promtool"))
        let (env, _) = try Self.fakeMachine()
        let dir = try TestEnvironment.temporaryDirectory("promtool")
        let file = dir.appendingPathComponent("msictl.prom").path
        #expect(try TestEnvironment.run(try #require(TestEnvironment.msictl), ["export", "--output", file], environment: env).status == 0)
        let shell = try #require(TestEnvironment.which("sh"))
        let lint = try TestEnvironment.run(shell, ["-c", "\"$0\" check metrics < \"$1\"", promtool, file])
        #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "\(lint)")
        let queries = TestEnvironment.packageRoot.appendingPathComponent("Tests/Fixtures/promql/readme-queries.test.yml").path
        let rules = try TestEnvironment.run(promtool, ["test", "rules", queries])
        #expect(rules.status == 0, "\(rules.stdout)\(rules.stderr)")
    }
}
