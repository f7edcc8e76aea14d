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
default:
    report.fail("msilab-usage", "unknown scenario '\(args.first ?? "")' (vfio-e1000e)")
}
exit(report.failed ? 1 : 0)
