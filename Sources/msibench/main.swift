// msibench: the in-process benchmarks behind scripts/bench (release build only).
#if canImport(Glibc)
import Glibc
#endif
// Each mode lives in its own file and prints a table of figures with ratios to a C baseline.

let arguments = Array(CommandLine.arguments.dropFirst())
let modes: [String: ([String]) throws -> Void] = [
    "model": runModelBench,
    "io": runIOBench,
    "tables": runTablesBench,
]
guard let mode = arguments.first, let run = modes[mode] else {
    FileHandleOutput.standardError("usage: msibench \(modes.keys.sorted().joined(separator: "|")) [options]\n")
    exit(2)
}
do {
    try run(Array(arguments.dropFirst()))
} catch {
    FileHandleOutput.standardError("msibench \(mode): \(error)\n")
    exit(1)
}
