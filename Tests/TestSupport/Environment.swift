import Foundation

/// Paths and tools the tests need, found relative to this package. Shared by the test targets
/// through this TestSupport target.
package enum TestEnvironment {
    /// The msictl binary next to this test bundle (scripts/test builds it first).
    package static let msictl: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let me = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: me).deletingLastPathComponent()
        // Inside a bundle directory (…/X.xctest/…), step out of it.
        while dir.path.contains(".xctest") { dir = dir.deletingLastPathComponent() }
        let candidate = dir.appendingPathComponent("msictl").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    package static var hasMsictl: Bool { msictl != nil }

    /// The package root (this file is Tests/TestSupport/Environment.swift).
    package static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/dumps`: real config-space dumps kept in the repository
    /// (see `Tests/Fixtures/README.md` for where each came from).
    package static let dumpsDirectory: URL = packageRoot.appendingPathComponent("Tests/Fixtures/dumps")

    /// Every `*.dump` there, sorted; empty when the folder is absent.
    package static let fixtureDumps: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dumpsDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".dump") }.sorted().map { dumpsDirectory.appendingPathComponent($0).path }
    }()

    package static var hasFixtureDumps: Bool { !fixtureDumps.isEmpty }

    /// lspci's path, or nil when pciutils is not installed.
    package static let lspci: String? = which("lspci")

    package static var hasLspci: Bool { lspci != nil }

    /// Whether this machine exposes PCI devices in sysfs.
    package static let hasLivePCI: Bool = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        return !names.isEmpty
    }()

    package static var isRoot: Bool { geteuid() == 0 }

    package static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            + ["/usr/bin", "/usr/sbin", "/sbin", "/bin"] {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a program (with `environment` added to this process's); returns exit status,
    /// stdout and stderr.
    @discardableResult
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // stdout to the end first (it can be large); stderr stays far below a pipe's buffer.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// A fresh temporary directory.
    package static func temporaryDirectory(_ tag: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("msishim-\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
