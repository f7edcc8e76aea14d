// Every input of the committed fuzz corpora (seeds, and the minimized crashes scripts/fuzz
// adds as regressions) replayed through its target with every property checked, so a
// normal `scripts/test` keeps them true without libFuzzer.
import Foundation
import Testing
import TestSupport
import MSIFuzz

/// `Tests/Fuzz/Corpus/<target>`.
func corpusDirectory(_ target: FuzzTarget) -> URL {
    TestEnvironment.packageRoot.appendingPathComponent("Tests/Fuzz/Corpus/\(target.rawValue)")
}

@Suite("fuzz corpora replayed")
struct FuzzCorpusTests {
    @Test("every corpus input keeps its target's properties", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let dir = corpusDirectory(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(names.count >= 5, "the \(target.rawValue) corpus has \(names.count) inputs")
        for name in names {
            let bytes = try #require(FileManager.default.contents(atPath: dir.appendingPathComponent(name).path)).map { $0 }
            if let violation = target.run(Array(bytes.prefix(target.maxLength))) {
                Issue.record("\(name): \(violation)")
            }
        }
    }

    @Test("the reproducers of the hardening review are in the corpora")
    func reproducersPresent() throws {
        for (target, name) in [(FuzzTarget.mockScript, "repro-crlf"), (.mockScript, "repro-freed-entry"),
                               (.mockScript, "repro-negative-hex"), (.selectors, "repro-signed-slot"),
                               (.selectors, "repro-newline-slot"), (.dumpNative, "repro-device-20")] {
            #expect(FileManager.default.fileExists(atPath: corpusDirectory(target).appendingPathComponent(name).path), "\(name)")
        }
    }
}
