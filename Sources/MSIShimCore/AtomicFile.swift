// Replacing a file so that a reader sees the old contents or the new, never a part: write a
// temporary file in the same directory, flush it to disk, then rename(2) it over the target
// (atomic within one filesystem). A failure at any step removes the temporary file. This is
// what Prometheus' node exporter textfile collector needs: it reads *.prom files whenever it
// is scraped.
#if canImport(Glibc)
import Glibc
#endif

/// Replaces `path` with `bytes` atomically (temporary file `.<name>.XXXXXX` beside it, fsync,
/// mode `mode`, rename). The target's directory must exist and be writable.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(FileError) {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !name.isEmpty else { throw FileError(operation: "create", path: path, errno: EISDIR) }
    var template = Array(((directory.isEmpty ? "" : directory) + "/." + name + ".XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
        guard let base = buffer.baseAddress else { return -1 }
        return mkstemp(base)
    }
    guard fd >= 0 else { throw FileError(operation: "create", path: path, errno: Glibc.errno) }
    let temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var done = false
    defer {
        if !done { unlink(temporary) }
    }
    var failure: FileError? = nil
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count, let base = raw.baseAddress {
            let n = write(fd, base + offset, raw.count - offset)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                failure = FileError(operation: "write", path: temporary, errno: Glibc.errno)
                return
            }
            offset += n
        }
    }
    if failure == nil && fchmod(fd, mode) != 0 { failure = FileError(operation: "chmod", path: temporary, errno: Glibc.errno) }
    if failure == nil && fsync(fd) != 0 { failure = FileError(operation: "sync", path: temporary, errno: Glibc.errno) }
    if close(fd) != 0 && failure == nil { failure = FileError(operation: "write", path: temporary, errno: Glibc.errno) }
    if let failure { throw failure }
    guard rename(temporary, path) == 0 else { throw FileError(operation: "rename", path: path, errno: Glibc.errno) }
    done = true
}
