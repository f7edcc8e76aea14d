// The output protocol of the lab guest, one line each on the serial console, parsed by
// scripts/lab on the host:
//   @@CHECK PASS|FAIL|SKIP name detail
//   @@INFO text
// Check names have no spaces; details are free text on the same line.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore

/// Collects the outcome of a scenario's checks and prints each as it happens.
final class Report: Sendable {
    private let failures = PackageMutex(0)
    private let passes = PackageMutex(0)

    init() {}

    var failed: Bool { failures.withLock { $0 } > 0 }
    var passed: Int { passes.withLock { $0 } }

    func pass(_ name: String, _ detail: String = "") {
        passes.withLock { $0 += 1 }
        emit("@@CHECK PASS \(name) \(detail)")
    }

    func fail(_ name: String, _ detail: String) {
        failures.withLock { $0 += 1 }
        emit("@@CHECK FAIL \(name) \(detail)")
    }

    func skip(_ name: String, _ reason: String) {
        emit("@@CHECK SKIP \(name) \(reason)")
    }

    /// A request to the host-side helper (scripts/lab-host/SCENARIO), which watches the console.
    func host(_ request: String) {
        emit("@@HOST \(request)")
    }

    func info(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) { emit("@@INFO \(line)") }
    }

    /// PASS when `ok`, else FAIL; the detail is printed either way.
    @discardableResult
    func check(_ ok: Bool, _ name: String, _ detail: @autoclosure () -> String = "") -> Bool {
        if ok { pass(name, detail()) } else { fail(name, detail()) }
        return ok
    }

    /// PASS when `actual == expected`.
    @discardableResult
    func expect<T: Equatable>(_ name: String, _ actual: T, _ expected: T, _ note: String = "") -> Bool {
        let suffix = note.isEmpty ? "" : " (\(note))"
        if actual == expected {
            pass(name, "= \(actual)\(suffix)")
            return true
        }
        fail(name, "expected \(expected), got \(actual)\(suffix)")
        return false
    }

    /// Runs `body`; a thrown error is a FAIL of `name` (and nil is returned).
    func attempt<T>(_ name: String, _ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch {
            fail(name, "threw: \(error)")
            return nil
        }
    }

    /// One unbuffered write per line: the console is a serial port and a crash must lose nothing.
    private func emit(_ line: String) {
        var bytes = Array((line.replacingNewlines() + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { b -> Int in
                guard let base = b.baseAddress else { return -1 }
                return write(1, base + done, b.count - done)
            }
            if n <= 0 { break }
            done += n
        }
    }
}

extension String {
    /// One console line: newlines inside details become " | ".
    func replacingNewlines() -> String {
        guard contains("\n") else { return self }
        return split(separator: "\n").joined(separator: " | ")
    }
}

/// `0x` + lowercase hex.
func hx<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

/// Monotonic milliseconds.
func nowMs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

func sleepMs(_ ms: Int) {
    var request = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    var left = timespec()
    while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
}

/// Waits until any of `fds` is readable or `timeoutMs` passes; returns the readable ones.
func pollReadable(_ fds: [Int32], timeoutMs: Int) -> Set<Int32> {
    var pfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let deadline = nowMs() + timeoutMs
    while true {
        let left = max(0, deadline - nowMs())
        let n = pfds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), Int32(left)) }
        if n > 0 {
            return Set(pfds.filter { $0.revents & Int16(POLLIN) != 0 }.map(\.fd))
        }
        if n == 0 || (n < 0 && errno != EINTR) || left == 0 { return [] }
    }
}


/// Entries of a directory (no . and ..); empty when it does not exist.
func listDir(_ path: String) -> [String] {
    listDirectory(path).sorted()
}

/// The kernel release (uname -r) as (major, minor).
func kernelVersion() -> (major: Int, minor: Int) {
    var u = utsname()
    uname(&u)
    let release = withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    let parts = release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    return (parts.first ?? 0, parts.dropFirst().first ?? 0)
}

func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
    let v = kernelVersion()
    return v.major > major || (v.major == major && v.minor >= minor)
}
