// msilab: the guest side of scripts/lab. Runs one scenario against real devices inside the
// QEMU guest and prints `@@CHECK PASS|FAIL|SKIP name detail` lines the host parses.
// Usage: msilab SCENARIO ARGS...; exit status 1 when any check failed (or nothing was checked).
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore

let report = Report()
let args = Array(CommandLine.arguments.dropFirst())

/// The scenarios: arguments (for the usage line) and what runs them.
let scenarios: [(name: String, usage: String, run: ([String]) throws -> Void)] = [
    ("vfio-e1000e", "BDF", { a in VFIOScenario(address: try PCIAddress(parsing: a[0]), report: report).run() }),
    ("uio", "BDF", { a in UIOScenario(address: try PCIAddress(parsing: a[0]), report: report).run() }),
    ("delivery", "BDF", { a in try DeliveryScenario(address: try PCIAddress(parsing: a[0]), report: report).run() }),
    ("remapped-compat", "BDF", { a in RemappingScenario(address: try PCIAddress(parsing: a[0]), report: report).run() }),
    ("model-vs-kernel", "TRACE DRIVER/LIMIT@BDF,...", { a in ModelVsKernelScenario(report: report).run(trace: a[0], devices: a[1]) }),
    ("differential", "BDF", { a in DifferentialScenario(address: try PCIAddress(parsing: a[0]), report: report).run() }),
    ("probe-agrees", "PROBE.json IRQS-BEFORE IRQS-AFTER", { a in
        ProbeInspectScenario(report: report).probeAgrees(json: a[0], before: a[1], after: a[2])
    }),
    ("inspect-agrees", "INSPECT.json BDF IRQS-BEFORE IRQS-AFTER", { a in
        ProbeInspectScenario(report: report).inspectAgrees(
            json: a[0], address: try PCIAddress(parsing: a[1]), before: a[2], after: a[3])
    }),
    ("unplug", "BDF QEMU-ID", { a in FaultScenarios(report: report).unplug(try PCIAddress(parsing: a[0]), qemuID: a[1]) }),
    ("uio-unplug", "BDF QEMU-ID", { a in
        FaultScenarios(report: report).uioUnplug(try PCIAddress(parsing: a[0]), qemuID: a[1])
    }),
    ("group-not-viable", "BDF BLOCKER-BDF", { a in
        FaultScenarios(report: report).groupNotViable(try PCIAddress(parsing: a[0]), blocker: try PCIAddress(parsing: a[1]))
    }),
    ("write-refused", "BDF", { a in FaultScenarios(report: report).writeRefused(try PCIAddress(parsing: a[0])) }),
    ("uio-unbound", "BDF", { a in FaultScenarios(report: report).uioUnbound(try PCIAddress(parsing: a[0])) }),
]

if let s = scenarios.first(where: { $0.name == args.first }) {
    let rest = Array(args.dropFirst())
    let wanted = s.usage.split(separator: " ").count
    if rest.count != wanted {
        report.fail("msilab-usage", "usage: msilab \(s.name) \(s.usage)")
    } else {
        do {
            try s.run(rest)
        } catch {
            report.fail("msilab-usage", "\(error) (usage: msilab \(s.name) \(s.usage))")
        }
    }
} else {
    report.fail(
        "msilab-usage",
        "unknown scenario '\(args.first ?? "")'; one of: " + scenarios.map { "\($0.name) \($0.usage)" }.joined(separator: "; "))
}
if !report.failed && report.passed == 0 { report.fail("msilab-nothing-checked", "the scenario made no check") }
exit(report.failed ? 1 : 0)
