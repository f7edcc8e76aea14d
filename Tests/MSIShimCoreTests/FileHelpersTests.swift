// The file helpers every layer shares, and the one error their failures carry.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import MSIShimCore

@Suite("file helpers and FileError")
struct FileHelpersTests {
    /// A fresh folder under the system's temporary directory.
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "/msishim-files-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("read, list, follow a link, replace atomically; absence is nil or empty, not an error")
    func helpers() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically(dir + "/a", Array("one\n".utf8))
        try writeFileAtomically(dir + "/a", Array(" two \n".utf8))
        #expect(readText(dir + "/a") == " two \n")
        #expect(readText(dir + "/a")?.trimmingWhitespace() == "two")
        #expect(symlink(dir + "/a", dir + "/link") == 0)
        #expect(readLinkTarget(dir + "/link") == dir + "/a")
        #expect(readLinkBasename(dir + "/link") == "a")
        #expect(listDirectory(dir).sorted() == ["a", "link"])  // no temporary file left behind
        #expect(readText(dir + "/missing") == nil)
        #expect(readText(dir) == nil)  // a directory is not an empty file
        #expect(listDirectory(dir + "/missing").isEmpty)
        #expect(readLinkTarget(dir + "/a") == nil)
    }

    @Test("a failed whole-file read says which step failed and carries its errno")
    func readFailures() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: FileError(operation: "open", path: dir + "/missing", errno: ENOENT)) {
            try readTextFile(dir + "/missing")
        }
        // A directory opens but cannot be read: EISDIR from read(2), not an empty text.
        #expect(throws: FileError(operation: "read", path: dir, errno: EISDIR)) { try readTextFile(dir) }
        try writeFileAtomically(dir + "/a", Array("x".utf8))
        #expect(try readTextFile(dir + "/a") == "x")
    }

    @Test("a failed write names the step, the path and the errno the package's one way")
    func failures() throws {
        #expect(throws: FileError(operation: "create", path: "/nonexistent-dir/x", errno: ENOENT)) {
            try writeFileAtomically("/nonexistent-dir/x", [1])
        }
        let denied = FileError(operation: "open", path: "/sys/f", errno: EACCES)
        #expect(denied.errno == .EACCES)
        #expect(denied.description == "cannot open /sys/f: " + KernelErrno.describeWithReason(EACCES))
        #expect(denied.description.contains("run as root"))
        let refused = FileError(operation: "write", path: "/sys/f", errno: EPERM)
        #expect(refused.description.contains("even to root"))
        // An errno the package does not name is shown by number, never by a second text table.
        #expect(FileError(operation: "write", path: "p", errno: 4095).description == "cannot write p: errno 4095")
    }
}
