// msifuzz: the fuzz targets of MSIFuzz, driven two ways. (Not main.swift: the fuzzing build
// compiles it as a library, where libFuzzer supplies main.)
//
// Fuzzing build (scripts/fuzz: -sanitize=fuzzer,address -parse-as-library -DMSISHIM_FUZZ):
// libFuzzer's driver (started from the entry below) calls LLVMFuzzerTestOneInput for the target named by $MSIFUZZ_TARGET;
// a broken property aborts, so libFuzzer saves the input as a crash.
//
// Normal build (@main below): `msifuzz TARGET PATH…` runs every file (or every file in every folder) once
// through the target and reports broken properties; exit 1 if any. `msifuzz --list` names
// the targets with their maximum input length.
#if canImport(Glibc)
import Glibc
#endif
import MSIFuzz
#if MSISHIM_FUZZ
import CMSIShim
#endif

/// One line on stderr.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

#if MSISHIM_FUZZ
/// The target of this process, from $MSIFUZZ_TARGET.
let fuzzTarget: FuzzTarget? = getenv("MSIFUZZ_TARGET").flatMap { FuzzTarget(rawValue: String(cString: $0)) }

/// The executable's entry: SwiftPM links `main` to `<target>_main`, which here hands the
/// command line to libFuzzer's driver.
@_cdecl("msifuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if argc == 2, let arg = argv?[1], String(cString: arg) == "--list" {
        for t in FuzzTarget.allCases { print("\(t.rawValue) \(t.maxLength)") }
        return 0
    }
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = fuzzTarget else {
        printError("msifuzz: set MSIFUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))")
        exit(2)
    }
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let violation = target.run(input) {
        printError("msifuzz: property broken: \(violation)")
        abort()  // allowed: libFuzzer records the input that broke a property by its crash
    }
    return 0
}
#else
/// Every regular file at `path` (a file, or the files directly inside a folder).
func inputFiles(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [path] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if !name.hasPrefix(".") { names.append(path + "/" + name) }
    }
    return names.sorted()
}

func readBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        out += chunk[0..<n]
    }
    return ferror(f) == 0 ? out : nil
}

func writeBytes(_ bytes: [UInt8], to path: String) -> Bool {
    guard let f = fopen(path, "wb") else { return false }
    defer { fclose(f) }
    return fwrite(bytes, 1, bytes.count, f) == bytes.count
}

@main
enum Driver {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--make-seeds", arguments.count == 3 {
            // msifuzz --make-seeds FIXTURE-DUMPS-DIR CORPUS-DIR: (re)writes seed-* and repro-* inputs.
            let dumps = inputFiles(arguments[1]).filter { $0.hasSuffix(".dump") }.compactMap { path in
                readBytes(path).map { (name: String(path.split(separator: "/").last ?? ""), bytes: $0) }
            }
            var written = 0
            for (target, seeds) in seedCorpora(fixtureDumps: dumps) {
                let dir = arguments[2] + "/" + target.rawValue
                mkdir(dir, 0o755)
                for seed in seeds {
                    guard writeBytes(seed.bytes, to: dir + "/" + seed.name) else {
                        printError("msifuzz: cannot write \(dir)/\(seed.name)")
                        exit(1)
                    }
                    written += 1
                }
            }
            print("\(written) seed inputs written under \(arguments[2])")
            exit(0)
        }
        if arguments.first == "--list" {
            for t in FuzzTarget.allCases { print("\(t.rawValue) \(t.maxLength)") }
            exit(0)
        }
        guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[0]) else {
            printError("usage: msifuzz TARGET PATH… | msifuzz --list (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")))")
            exit(2)
        }
        var failures = 0
        var count = 0
        for file in arguments.dropFirst().flatMap(inputFiles) {
            guard let bytes = readBytes(file) else {
                printError("msifuzz: cannot read \(file)")
                failures += 1
                continue
            }
            count += 1
            if let violation = target.run(Array(bytes.prefix(target.maxLength))) {
                print("FAIL \(file): \(violation)")
                failures += 1
            }
        }
        print("\(target.rawValue): \(count) inputs, \(failures) failures")
        exit(failures == 0 ? 0 : 1)
    }
}
#endif
