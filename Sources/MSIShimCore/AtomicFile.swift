// Replacing a file so that a reader sees the old contents or the new, never a part: write a
// temporary file in the same directory, flush it to disk, then rename(2) it over the target
// (atomic within one filesystem). A failure at any step removes the temporary file. This is
// what Prometheus' node exporter textfile collector needs: it reads *.prom files whenever it
// is scraped.
#if canImport(Glibc)
import Glibc
#endif

/// A failed atomic write: the step, the path and the errno.
public struct FileWriteError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// `create`, `write`, `sync`, `chmod` or `rename`.
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

    /// `cannot <operation> <path>: <reason>`: the package's errno text where it names the
    /// errno (`KernelErrno.describeWithReason`), the C library's otherwise.
    public var description: String {
        let reason = KernelErrno(code: code) != nil ? KernelErrno.describeWithReason(code) : String(cString: strerror(code))
        return "cannot \(operation) \(path): " + reason
    }
}

/// Replaces `path` with `bytes` atomically (temporary file `.<name>.XXXXXX` beside it, fsync,
/// mode `mode`, rename). The target's directory must exist and be writable.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(FileWriteError) {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !name.isEmpty else { throw FileWriteError(operation: "create", path: path, errno: EISDIR) }
    var template = Array(((directory.isEmpty ? "" : directory) + "/." + name + ".XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
        guard let base = buffer.baseAddress else { return -1 }
        return mkstemp(base)
    }
    guard fd >= 0 else { throw FileWriteError(operation: "create", path: path, errno: Glibc.errno) }
    let temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var done = false
    defer {
        if !done { unlink(temporary) }
    }
    var failure: FileWriteError? = nil
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count, let base = raw.baseAddress {
            let n = write(fd, base + offset, raw.count - offset)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                failure = FileWriteError(operation: "write", path: temporary, errno: Glibc.errno)
                return
            }
            offset += n
        }
    }
    if failure == nil && fchmod(fd, mode) != 0 { failure = FileWriteError(operation: "chmod", path: temporary, errno: Glibc.errno) }
    if failure == nil && fsync(fd) != 0 { failure = FileWriteError(operation: "sync", path: temporary, errno: Glibc.errno) }
    if close(fd) != 0 && failure == nil { failure = FileWriteError(operation: "write", path: temporary, errno: Glibc.errno) }
    if let failure { throw failure }
    guard rename(temporary, path) == 0 else { throw FileWriteError(operation: "rename", path: path, errno: Glibc.errno) }
    done = true
}
