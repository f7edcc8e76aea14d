// msilab: the guest side of scripts/lab. Runs one scenario against real devices inside the
// QEMU guest and prints `@@CHECK PASS|FAIL|SKIP name detail` lines the host parses.
// Usage: msilab SCENARIO [ARGS...]; exit status 1 when any check failed.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore

let report = Report()
let args = Array(CommandLine.arguments.dropFirst())

func address(_ i: Int) -> PCIAddress? {
    guard i < args.count, let a = try? PCIAddress(parsing: args[i]) else {
        report.fail("msilab-usage", "argument \(i + 1) must be a PCI address (got \(i < args.count ? args[i] : "nothing"))")
        return nil
    }
    return a
}

switch args.first {
case "vfio-e1000e":
    if let a = address(1) { VFIOScenario(address: a, report: report).run() }
case "uio":
    if let a = address(1) { UIOScenario(address: a, report: report).run() }
case "differential":
    if let a = address(1) { DifferentialScenario(address: a, report: report).run() }
case "probe-agrees":  // probe-agrees PROBE.json IRQ-BEFORE IRQ-AFTER
    if args.count > 3 { ProbeInspectScenario(report: report).probeAgrees(json: args[1], before: args[2], after: args[3]) }
case "inspect-agrees":  // inspect-agrees INSPECT.json BDF IRQ-BEFORE IRQ-AFTER
    if args.count > 4, let a = address(2) {
        ProbeInspectScenario(report: report).inspectAgrees(json: args[1], address: a, before: args[3], after: args[4])
    }
case "unplug":  // unplug BDF QEMU-ID
    if let a = address(1), args.count > 2 { FaultScenarios(report: report).unplug(a, qemuID: args[2]) }
case "group-not-viable":  // group-not-viable BDF BLOCKER-BDF
    if let a = address(1), let b = address(2) { FaultScenarios(report: report).groupNotViable(a, blocker: b) }
case "write-refused":
    if let a = address(1) { FaultScenarios(report: report).writeRefused(a) }
case "uio-unplug":  // uio-unplug BDF QEMU-ID
    if let a = address(1), args.count > 2 { FaultScenarios(report: report).uioUnplug(a, qemuID: args[2]) }
case "uio-unbound":
    if let a = address(1) { FaultScenarios(report: report).uioUnbound(a) }
default:
    report.fail(
        "msilab-usage",
        "unknown scenario '\(args.first ?? "")' (vfio-e1000e, uio, differential, probe-agrees, inspect-agrees, unplug, uio-unplug, group-not-viable, write-refused, uio-unbound)")
}
exit(report.failed ? 1 : 0)
