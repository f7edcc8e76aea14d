// Small file helpers every layer may use: whole-file reads, directory listings, symlink
// targets, whitespace trimming. Plain POSIX calls on paths, no device I/O and no Foundation (probe
// must start fast). They live here, not in PCIAccess, so that a layer reading a script, a
// state file or a fuzz input needs no libpci.
#if canImport(Glibc)
import Glibc
#endif

/// A failed file operation: the step, the path and the errno. Whole-file reads, sysfs
/// attribute writes and atomic file replacement report their failures with it; the message tells `EACCES`
/// (not root) from `EPERM` (refused even to root).
public struct FileError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// What was being done: `open`, `read`, `create`, `write`, `sync`, `chmod` or `rename`.
    public var operation: String
    /// The file the step worked on.
    public var path: String
    /// The errno value.
    public var code: Int32

    /// An error of `operation` on `path` with errno `code`.
    public init(operation: String, path: String, errno code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    /// The errno's kernel name, where this package knows it.
    public var errno: KernelErrno? { KernelErrno(code: code) }

    /// `cannot <operation> <path>: <errno and reason>` (`KernelErrno.describeWithReason`).
    public var description: String {
        "cannot \(operation) \(path): " + KernelErrno.describeWithReason(code)
    }
}

/// Reads a whole (small) file as text; nil if it cannot be opened or a read fails (a
/// directory, EIO from a sysfs attribute). Callers that must say why use ``readTextFile(_:)``.
public func readText(_ path: String) -> String? {
    try? readTextFile(path)
}

/// Reads a whole (small) file as text, or throws the step that failed with its errno: `open`
/// (ENOENT, EACCES) or `read` (EISDIR for a directory, EIO from a sysfs attribute). A failed
/// read is never an empty file. The errno travels in the error, so no caller has to read the
/// global `errno` after the fact, when other calls may already have changed it.
public func readTextFile(_ path: String) throws(FileError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            let failure = errno
            if failure == EINTR { continue }
            throw FileError(operation: "read", path: path, errno: failure)
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Names in a directory, without `.` and `..`; empty if it cannot be opened.
public func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// The target of a symlink as text, or nil if `path` is not a readable link.
public func readLinkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The last path component a symlink points to, or nil if `path` is not a readable link.
public func readLinkBasename(_ path: String) -> String? {
    readLinkTarget(path)?.split(separator: "/").last.map(String.init)
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
