// Package.swift against the code. Two checks:
//  1. every Swift target declares exactly the modules its files import (nothing declared and
//     unused, nothing used and undeclared);
//  2. each library depends only on the layers below it that it is meant to use (CONTRIBUTING.md,
//     "Layers").
// The declared graph comes from `swift package dump-package`, the imports from the sources.
import Foundation
import Testing
import TestSupport

/// What each library may depend on (CONTRIBUTING.md, "Layers"). A dependency outside its row fails.
let allowedLayerDependencies: [String: Set<String>] = [
    "MSIShimCore": [],
    "MSIModel": ["MSIShimCore"],
    "PCIAccess": ["MSIShimCore", "CPCI", "CUdev", "CMSIShim"],
    "DeviceIO": ["MSIShimCore", "PCIAccess", "CMSIShim"],
    "InterruptTables": ["MSIShimCore", "MSIModel"],
    "WorkQueues": ["MSIShimCore", "MSIModel"],
    "MockDevice": ["MSIShimCore"],
    "MockHarness": ["MSIShimCore", "MSIModel", "InterruptTables", "WorkQueues", "MockDevice"],
]

/// Library targets outside the layering: tools' support code, checked only against their imports.
let unlayeredTargets: Set<String> = ["MSIFuzz", "BenchBaseline", "TestSupport", "CMSIShim"]

/// Modules of the toolchain: never declared in Package.swift.
let toolchainModules: Set<String> = [
    "Swift", "_Concurrency", "Foundation", "FoundationEssentials", "Glibc", "Musl", "Darwin", "Dispatch",
    "Synchronization", "Testing", "XCTest",
]

struct DeclaredTarget {
    var name: String
    var type: String
    var directory: URL
    var dependencies: Set<String>
}

enum PackageGraph {
    static let root = TestEnvironment.packageRoot

    /// The targets as `swift package dump-package` describes them.
    static func declaredTargets() throws -> [DeclaredTarget] {
        let scratch = try TestEnvironment.temporaryDirectory("graph")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Through env: the toolchain's `swift` is whichever one PATH names, as for a user.
        let r = try TestEnvironment.run(
            "/usr/bin/env", ["swift", "package", "--package-path", root.path, "--scratch-path", scratch.path, "dump-package"])
        try #require(r.status == 0, "swift package dump-package failed: \(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let targets = try #require(json["targets"] as? [[String: Any]])
        return try targets.map { t in
            let name = try #require(t["name"] as? String)
            let type = try #require(t["type"] as? String)
            let path = (t["path"] as? String) ?? ((type == "test" ? "Tests/" : "Sources/") + name)
            var deps = Set<String>()
            for dependency in (t["dependencies"] as? [[String: Any]]) ?? [] {
                // {"byName": [name, condition]}, {"target": [...]}, {"product": [name, package, ...]}
                if let entry = dependency.values.first as? [Any], let depName = entry.first as? String {
                    deps.insert(depName)
                }
            }
            return DeclaredTarget(name: name, type: type, directory: root.appendingPathComponent(path), dependencies: deps)
        }
    }

    /// Modules imported by the Swift files under `directory` (any access level, `@testable` too).
    static func imports(under directory: URL) -> Set<String> {
        var modules = Set<String>()
        guard let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return [] }
        for case let url as URL in files where url.pathExtension == "swift" {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                if let module = importedModule(String(line)) { modules.insert(module) }
            }
        }
        return modules.subtracting(toolchainModules)
    }

    /// The module an `import` line names, or nil for any other line.
    static func importedModule(_ line: String) -> String? {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let accessLevels: Set<String> = ["public", "package", "internal", "private", "fileprivate"]
        // Leading attributes (`@testable`, `@_implementationOnly`, `@preconcurrency`) and access levels.
        while let first = words.first,
              accessLevels.contains(first) || (first.hasPrefix("@") && first.dropFirst().allSatisfy { $0.isLetter || $0 == "_" }) {
            words.removeFirst()
        }
        guard words.first == "import", words.count >= 2 else { return nil }
        let kinds: Set<String> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
        let path = kinds.contains(words[1]) && words.count >= 3 ? words[2] : words[1]
        return path.split(separator: ".").first.map(String.init)
    }

    /// Targets whose sources are Swift (C and system-library targets have no imports to read).
    static func swiftTargets(_ targets: [DeclaredTarget]) -> [DeclaredTarget] {
        targets.filter { t in
            guard t.type != "system" else { return false }
            let files = FileManager.default.enumerator(at: t.directory, includingPropertiesForKeys: nil)?.allObjects
            return (files as? [URL] ?? []).contains { $0.pathExtension == "swift" }
        }
    }
}

@Suite("Package.swift agrees with the code")
struct PackageGraphTests {
    @Test("every Swift target declares exactly what it imports")
    func declaredIsImported() throws {
        let targets = try PackageGraph.declaredTargets()
        let checked = PackageGraph.swiftTargets(targets)
        #expect(checked.count >= 15, "found only \(checked.map(\.name))")
        for target in checked {
            let imported = PackageGraph.imports(under: target.directory)
            let unused = target.dependencies.subtracting(imported)
            let undeclared = imported.subtracting(target.dependencies)
            #expect(unused.isEmpty, "\(target.name) declares but never imports \(unused.sorted())")
            #expect(undeclared.isEmpty, "\(target.name) imports but does not declare \(undeclared.sorted())")
        }
    }

    @Test("each library depends only on the layers below it")
    func layering() throws {
        let targets = Dictionary(uniqueKeysWithValues: try PackageGraph.declaredTargets().map { ($0.name, $0) })
        let libraries = Set(targets.values.filter { $0.type == "regular" && $0.directory.path.contains("/Sources/") }.map(\.name))
        // A new library needs its row in the map: nothing escapes the check by being new.
        let unmapped = libraries.subtracting(allowedLayerDependencies.keys).subtracting(unlayeredTargets)
        #expect(unmapped.isEmpty, "libraries without an allowed-layer entry: \(unmapped.sorted())")
        for (library, allowed) in allowedLayerDependencies {
            let target = try #require(targets[library], "no target \(library)")
            let extra = target.dependencies.subtracting(allowed)
            #expect(extra.isEmpty, "\(library) depends on \(extra.sorted()) outside its layer")
        }
    }

    @Test("the import scanner reads every form of import line")
    func importLines() {
        #expect(PackageGraph.importedModule("import MSIShimCore") == "MSIShimCore")
        #expect(PackageGraph.importedModule("public import PCIAccess") == "PCIAccess")
        #expect(PackageGraph.importedModule("@testable import DeviceIO") == "DeviceIO")
        #expect(PackageGraph.importedModule("@_implementationOnly import CPCI") == "CPCI")
        #expect(PackageGraph.importedModule("import struct MSIModel.MSIMessage") == "MSIModel")
        #expect(PackageGraph.importedModule("    import Glibc") == "Glibc")
        #expect(PackageGraph.importedModule("// import Nothing") == nil)
        #expect(PackageGraph.importedModule("let imported = 1") == nil)
        #expect(PackageGraph.importedModule("@Test(\"the import scanner\") func f() {}") == nil)
    }
}
