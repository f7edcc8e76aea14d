// The guest kernel's log, read live through /dev/kmsg, and the x86 report of an interrupt that
// arrived on a vector without a handler. common_interrupt() (arch/x86/kernel/irq.c) looks the
// vector up in the CPU's vector_irq table; on VECTOR_UNUSED it prints, with
// pr_emerg_ratelimited, "__common_interrupt: CPU.VECTOR No irq handler for vector" (newer
// kernels: "No irq handler for CPU.VECTOR"). No counter in /proc/interrupts moves for it: ERR
// counts APIC errors and SPU the spurious vector 0xff only. The printk rate limit is the
// default one of its call site: 10 messages per 5 s, the rest dropped and counted in a later
// "callbacks suppressed" line — so raises are paced (``UnhandledVectorPacer``).
#if canImport(Glibc)
import Glibc
import MSIShimCore
#endif

/// One record of /dev/kmsg.
struct KernelLogRecord {
    var sequence: UInt64
    var text: String
}

/// /dev/kmsg opened at its end: each read returns the next record, EAGAIN when none.
final class KernelLog {
    private let fd: Int32

    /// `fromStart`: from the oldest record the kernel still holds, else from now on.
    init(fromStart: Bool = false) throws {
        fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw LabError("open /dev/kmsg: " + KernelErrno.describe(errno)) }
        if !fromStart { lseek(fd, 0, SEEK_END) }
    }

    deinit { close(fd) }

    /// Every record written since the last call, without waiting.
    func drain() -> [KernelLogRecord] {
        var out: [KernelLogRecord] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EPIPE { continue }  // records overwritten: the next read resumes
            guard n > 0 else { break }
            let line = String(decoding: buf[0..<n], as: UTF8.self)
            guard let semi = line.firstIndex(of: ";") else { continue }
            let head = line[..<semi].split(separator: ",")
            let text = line[line.index(after: semi)...].split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
            out.append(KernelLogRecord(sequence: head.count > 1 ? UInt64(head[1]) ?? 0 : 0, text: String(text)))
        }
        return out
    }

    /// Waits up to `timeoutMs` until `enough(records so far)` holds, then `settleMs` more for
    /// stragglers; returns every record seen.
    func collect(timeoutMs: Int, settleMs: Int, until enough: ([KernelLogRecord]) -> Bool) -> [KernelLogRecord] {
        var seen: [KernelLogRecord] = []
        let deadline = nowMs() + timeoutMs
        while true {
            seen += drain()
            if enough(seen) || nowMs() >= deadline { break }
            _ = pollReadable([fd], timeoutMs: max(1, min(50, deadline - nowMs())))
        }
        sleepMs(settleMs)
        return seen + drain()
    }
}

/// A CPU and a vector: where an interrupt arrived.
struct CPUVector: Hashable, Comparable, CustomStringConvertible {
    var cpu: Int
    var vector: Int
    var description: String { "CPU\(cpu).\(hx(vector))" }
    static func < (a: CPUVector, b: CPUVector) -> Bool { (a.cpu, a.vector) < (b.cpu, b.vector) }

    /// The CPU and vector of a "No irq handler" report, nil for any other line.
    init?(unhandledReport text: String) {
        // "__common_interrupt: 1.34 No irq handler for vector" or "No irq handler for 1.34".
        let pair: Substring
        if let r = text.firstRange(of: " No irq handler for vector") {
            pair = text[..<r.lowerBound].split(separator: " ").last ?? ""
        } else if let r = text.firstRange(of: "No irq handler for ") {
            pair = text[r.upperBound...].split(separator: " ").first ?? ""
        } else {
            return nil
        }
        let parts = pair.split(separator: ".")
        guard parts.count == 2, let c = Int(parts[0]), let v = Int(parts[1]) else { return nil }
        cpu = c
        vector = v
    }

    init(cpu: Int, vector: Int) {
        self.cpu = cpu
        self.vector = vector
    }
}

/// Keeps the "No irq handler" reports under the kernel's rate limit (10 per 5 s per call site,
/// `DEFAULT_RATELIMIT_BURST` / `DEFAULT_RATELIMIT_INTERVAL`): before a raise that may print `k`
/// lines, waits until the current window has room. The window is counted from the first line
/// this side saw, which is no earlier than the kernel's own start of it, and is taken as over
/// only 200 ms after the kernel's would be: every report of a kernel window falls in ours.
final class UnhandledVectorPacer {
    static let burst = 10
    static let intervalMs = 5000
    private var windowStart: Int?
    private var printed = 0
    private(set) var waitedMs = 0

    func beforeRaise(expecting k: Int) {
        guard let start = windowStart else { return }
        let now = nowMs()
        if now - start > Self.intervalMs + 200 {
            windowStart = nil
            printed = 0
            return
        }
        if printed + k > Self.burst {
            let wait = start + Self.intervalMs + 200 - now
            if wait > 0 { sleepMs(wait); waitedMs += wait }
            windowStart = nil
            printed = 0
        }
    }

    func saw(_ lines: Int) {
        guard lines > 0 else { return }
        if windowStart == nil { windowStart = nowMs() }
        printed += lines
    }
}

/// An error msilab raises itself.
struct LabError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
