// The `lspci -x/-xxx/-xxxx` dump format, read exactly as libpci's dump method reads it
// (pciutils lib/dump.c), in one pass over the file.
//
// Why this exists next to libpci's own reader:
//  * libpci reports "dump: Malformed line" without a line number; this scanner names the line.
//  * libpci 3.9 trusts the offset column: an offset of 0x80000000 or more becomes a negative
//    index and it writes before its buffer (a crash on `80000000: 00`). Every dump is scanned
//    here first, and such lines are refused before libpci sees the file.
//  * With `collectBytes`, the same pass yields the config bytes libpci would hold, which is
//    the fast dump reader (`msictl probe --dump-reader native`).
//
// Grammar (what libpci accepts; everything else on a line is ignored):
//   device header  "BB:DD.F text", "DDDD:BB:DD.F text" or "DDDDD:BB:DD.F text" (hex, F decimal);
//                  the text after the address is required
//   data line      2 to 8 hex digits, ": ", then two-digit hex bytes separated by one space,
//                  placed at that offset of the current device
//   empty line     ends the current device
// Lines are at most 253 characters, newline-terminated; config space is at most 4096 bytes.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// One device of a dump, as libpci's dump method would hold it.
public struct DumpRecord: Hashable, Sendable {
    /// The device's address, from its header line.
    public var address: PCIAddress
    /// 1-based line number of the device's header line.
    public var line: Int
    /// Bytes libpci can read: one past the highest offset the dump gives (0 if none).
    public var length: Int
    /// Config bytes, `length` long, 0xFF where the dump skipped offsets (as libpci fills
    /// them); empty unless the scan collected bytes.
    public var bytes: [UInt8]
}

/// Why a dump file was refused. Line numbers are 1-based.
public enum DumpFileError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// The file could not be opened (`errno` from `open`).
    case cannotOpen(path: String, errno: Int32)
    /// The file could not be read (`errno` from `read`).
    case cannotRead(path: String, errno: Int32)
    /// A line does not follow lspci's dump format; `reason` names the column.
    case malformed(path: String, line: Int, reason: String)
    /// The file parsed but holds no device; `reason` says what it looked like.
    case noDevices(path: String, reason: String)

    public var errno: KernelErrno? {
        switch self {
        case .cannotOpen(_, let e), .cannotRead(_, let e): KernelErrno(code: e)
        case .malformed, .noDevices: .EINVAL
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, e): "cannot open dump \(path): \(KernelErrno.describeWithReason(e))"
        case let .cannotRead(path, e): "cannot read dump \(path): \(KernelErrno.describeWithReason(e))"
        case let .malformed(path, line, reason): "\(path):\(line): \(reason)"
        case let .noDevices(path, reason): "\(path): no devices: \(reason)"
        }
    }
}

/// Reads and checks `lspci -x` dumps.
public enum LSPCIDump {
    /// libpci's line buffer: fgets with 255 bytes reads at most 254 characters, newline included.
    public static let maxLineLength = 253
    /// libpci refuses config space beyond this.
    public static let maxConfigSize = 4096

    /// Reads and scans the dump at `path`. With `collectBytes` the records carry the config
    /// bytes; without, only addresses, header lines and lengths (the validation pass run
    /// before libpci reads the same file).
    public static func read(path: String, collectBytes: Bool) throws(DumpFileError) -> [DumpRecord] {
        try read(path: path, collectBytes: collectBytes, chunkSize: 1 << 18)
    }

    /// ``read(path:collectBytes:)`` through a buffer of `chunkSize` bytes (tests use small
    /// ones to put lines across chunk boundaries). The file is scanned a chunk at a time, so a
    /// 19 MB dump never sits in memory whole: on a VM the page faults of such a buffer cost
    /// more than the scan itself. Endless inputs (`/dev/zero`, a pipe) stop at the first line
    /// that is too long or holds a NUL, as libpci would.
    static func read(path: String, collectBytes: Bool, chunkSize: Int) throws(DumpFileError) -> [DumpRecord] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotRead(path: path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .cannotRead(path: path, errno: EISDIR) }
        // Room for a chunk plus the unfinished line carried over from the previous one.
        let capacity = max(chunkSize, 2 * (maxLineLength + 2))
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        let scanner = DumpScanner(name: path, collectBytes: collectBytes)
        var filled = 0
        while true {
            let got = Glibc.read(fd, buffer + filled, capacity - filled)
            if got < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path: path, errno: errno)
            }
            filled += got
            let used = try scanner.feed(UnsafeBufferPointer(start: buffer, count: filled), atEnd: got == 0)
            if got == 0 { break }
            if used > 0 {
                if filled > used { buffer.update(from: buffer + used, count: filled - used) }
                filled -= used
            }
        }
        return try scanner.finish()
    }

    /// Scans dump text already in memory; `name` is used in errors.
    public static func parse(_ text: String, name: String, collectBytes: Bool = true) throws(DumpFileError) -> [DumpRecord] {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer throws(DumpFileError) in
            let scanner = DumpScanner(name: name, collectBytes: collectBytes)
            _ = try scanner.feed(buffer, atEnd: true)
            return try scanner.finish()
        }
    }

    /// Scans dump bytes already in memory, exactly as ``read(path:collectBytes:)`` scans a
    /// file's bytes (no UTF-8 decoding in between); `name` is used in errors.
    public static func parse(bytes: [UInt8], name: String, collectBytes: Bool = true) throws(DumpFileError) -> [DumpRecord] {
        try bytes.withUnsafeBufferPointer { buffer throws(DumpFileError) in
            let scanner = DumpScanner(name: name, collectBytes: collectBytes)
            _ = try scanner.feed(buffer, atEnd: true)
            return try scanner.finish()
        }
    }

    /// The `hh hh …` bytes of a data line (`count` characters from `line`), as libpci's loop
    /// reads them: each two hex digits followed by a space or the line's end. Stores them at
    /// `offset…` of `out` when given; stops at the first pair that does not fit that shape
    /// (`consumed` is then where it starts), or with `overflow` at a valid pair at `limit` or
    /// beyond. Its own function with wrapping arithmetic so the compiler keeps the loop in
    /// registers: it runs once per config byte of a dump.
    @inline(never)
    static func readPairs(
        _ line: UnsafePointer<UInt8>, count: Int, nibbles: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<UInt8>?,
        offset: Int, limit: Int
    ) -> (consumed: Int, offset: Int, overflow: Bool) {
        // The common line: 16 pairs (47 characters) that fit. Checked without a branch per pair;
        // if anything is off, the general loop below reads it again and stops where it must.
        if count == 47, offset &+ 16 <= limit, let out {
            var digits: UInt8 = 0
            var separators: UInt8 = 0
            for k in 0..<16 {
                let p = 3 &* k
                let high = nibbles[Int(line[p])], low = nibbles[Int(line[p &+ 1])]
                digits |= high | low
                if k < 15 { separators |= line[p &+ 2] ^ 0x20 }
                out[offset &+ k] = high << 4 | low
            }
            if digits < 16 && separators == 0 { return (47, offset &+ 16, false) }
        }
        var z = 0
        var o = offset
        while z &+ 1 < count {
            let high = nibbles[Int(line[z])], low = nibbles[Int(line[z &+ 1])]
            if high | low > 15 { break }
            if z &+ 2 < count && line[z &+ 2] != 0x20 { break }
            if o >= limit { return (z, o, true) }
            out?[o] = high << 4 | low
            o &+= 1
            z &+= 3  // the pair and its space (one past the end after the last pair)
        }
        return (min(z, count), o, false)
    }

    // MARK: Line classification (dump_validate + sscanf in lib/dump.c)

    struct Header { var domain: UInt32; var bus: UInt32; var device: UInt32; var function: UInt32 }

    /// `BB:DD.F `, `DDDD:BB:DD.F ` or `DDDDD:BB:DD.F ` at the start of the line (F must be a
    /// decimal digit, as sscanf's %d needs); nil otherwise.
    @inline(__always)
    static func deviceHeader(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Header? {
        let length = end - start
        guard length >= 8 else { return nil }
        @inline(__always) func hx(_ i: Int) -> Bool { isHexDigit(b[start + i]) }
        @inline(__always) func at(_ i: Int, _ c: UInt8) -> Bool { b[start + i] == c }
        let colon = UInt8(ascii: ":"), dot = UInt8(ascii: "."), space = UInt8(ascii: " ")
        // "##:##.# " with the bus first, or after a 4- or 5-digit domain and a colon.
        var p: Int
        var domain: UInt32 = 0
        if at(2, colon) && at(5, dot) && at(7, space) && hx(0) && hx(1) && hx(3) && hx(4) && hx(6) {
            p = 0
        } else if length >= 13 && at(4, colon) && at(7, colon) && at(10, dot) && at(12, space)
            && hx(0) && hx(1) && hx(2) && hx(3) && hx(5) && hx(6) && hx(8) && hx(9) && hx(11) {
            for k in 0..<4 { domain = domain << 4 | UInt32(hexValue(b[start + k])) }
            p = 5
        } else if length >= 14 && at(5, colon) && at(8, colon) && at(11, dot) && at(13, space)
            && hx(0) && hx(1) && hx(2) && hx(3) && hx(4) && hx(6) && hx(7) && hx(9) && hx(10) && hx(12) {
            for k in 0..<5 { domain = domain << 4 | UInt32(hexValue(b[start + k])) }
            p = 6
        } else {
            return nil
        }
        p += start
        let bus = UInt32(hexValue(b[p])) << 4 | UInt32(hexValue(b[p + 1]))
        let device = UInt32(hexValue(b[p + 3])) << 4 | UInt32(hexValue(b[p + 4]))
        let f = b[p + 6]
        guard f >= UInt8(ascii: "0") && f <= UInt8(ascii: "9") else { return nil }
        return Header(domain: domain, bus: bus, device: device, function: UInt32(f - UInt8(ascii: "0")))
    }

    /// An address with nothing after it ("00:03.0"): libpci ignores such a line (and with it
    /// the device's data), a common mistake worth naming when a dump yields no devices.
    static func isBareAddress(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        let shapes: [[Bool]] = [
            [true, true, false, true, true, false, true],
            [true, true, true, true, false, true, true, false, true, true, false, true],
        ]
        var trimmedEnd = end
        while trimmedEnd > start && (b[trimmedEnd - 1] == 0x20 || b[trimmedEnd - 1] == 0x09) { trimmedEnd -= 1 }
        for shape in shapes where trimmedEnd - start == shape.count {
            var ok = true
            for (k, wantHex) in shape.enumerated() {
                let c = b[start + k]
                if wantHex ? !isHexDigit(c) : !(c == UInt8(ascii: ":") || c == UInt8(ascii: ".")) { ok = false; break }
            }
            if ok { return true }
        }
        return false
    }

    /// `##: ` … `########: `: the offset and the index where the bytes start.
    static func dataLineOffset(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (UInt32, Int)? {
        var k = start
        var value: UInt32 = 0
        while k < end && k - start < 8 && isHexDigit(b[k]) {
            value = value << 4 | UInt32(hexValue(b[k]))
            k += 1
        }
        let digits = k - start
        guard digits >= 2, k + 1 < end, b[k] == UInt8(ascii: ":"), b[k + 1] == 0x20 else { return nil }
        return (value, k + 2)
    }
}

/// The scanner of ``LSPCIDump``, fed the input a chunk at a time. Mirrors lib/dump.c line by
/// line; see the file comment for the grammar.
final class DumpScanner {
    let name: String
    let collectBytes: Bool
    private var records: [DumpRecord] = []
    private var firstLine: [PCIAddress: Int] = [:]
    private var bareAddressLine: Int? = nil
    /// The device lines currently go to (libpci's `dev`), and its bytes so far.
    private var current: Int? = nil
    private var length = 0
    /// Lines read so far.
    private var line = 0
    private var sawBytes = false
    /// The current device's bytes (0xFF where the dump skips offsets, as libpci fills them);
    /// raw memory, since the inner loop writes one byte per hex pair of a 19 MB dump.
    private let scratch: UnsafeMutablePointer<UInt8>
    /// Hex digit values by byte (0xFF: not a hex digit): one load per character.
    private let nibbles: UnsafeMutablePointer<UInt8>

    init(name: String, collectBytes: Bool) {
        self.name = name
        self.collectBytes = collectBytes
        scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: LSPCIDump.maxConfigSize)
        scratch.initialize(repeating: 0xFF, count: LSPCIDump.maxConfigSize)
        nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for c in 0..<256 { nibbles[c] = nibble(UInt8(c)) }
    }

    deinit {
        scratch.deallocate()
        nibbles.deallocate()
    }

    private func fail(_ reason: String) -> DumpFileError { .malformed(path: name, line: line, reason: reason) }

    private func finishDevice() {
        guard let i = current else { return }
        records[i].length = length
        if collectBytes {
            records[i].bytes = Array(UnsafeBufferPointer(start: scratch, count: length))
            scratch.update(repeating: 0xFF, count: length)
        }
        current = nil
        length = 0
    }

    /// Scans the complete lines of `b`; returns how many bytes they took. Without `atEnd`, an
    /// unfinished last line is left for the next call (with more bytes after it); at the end
    /// of the input it is an error, as for libpci.
    func feed(_ b: UnsafeBufferPointer<UInt8>, atEnd: Bool) throws(DumpFileError) -> Int {
        guard let base = b.baseAddress, b.count > 0 else { return 0 }
        sawBytes = true
        let maxLineLength = LSPCIDump.maxLineLength
        var pos = 0
        let n = b.count
        while pos < n {
            line += 1
            // fgets with libpci's buffer: at most 253 characters and the newline.
            let limit = min(n, pos + maxLineLength + 1)
            guard let nl = memchr(base + pos, 0x0A, limit - pos) else {
                if !atEnd && n - pos <= maxLineLength {
                    line -= 1  // unfinished: the rest of the line comes with the next chunk
                    return pos
                }
                if memchr(base + pos, 0, limit - pos) != nil {
                    throw fail("contains a NUL byte (libpci: line too long or unterminated)")
                }
                if limit == n && n - pos <= maxLineLength {
                    throw fail("last line has no newline (libpci: line too long or unterminated)")
                }
                throw fail("line longer than \(maxLineLength) characters (libpci: line too long or unterminated)")
            }
            let e = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
            if memchr(base + pos, 0, e - pos) != nil {
                throw fail("contains a NUL byte (libpci: line too long or unterminated)")
            }
            var end = e
            if end > pos && b[end - 1] == 0x0D { end -= 1 }
            let start = pos
            pos = e + 1

            if let header = LSPCIDump.deviceHeader(b, start, end) {
                guard header.device < 32 else {
                    throw fail("device number \(hex(header.device, width: 2)) is out of range (00-1f)")
                }
                guard header.function < 8 else { throw fail("function number \(header.function) is out of range (0-7)") }
                guard let address = PCIAddress(
                    domain: header.domain, bus: UInt8(header.bus), device: UInt8(header.device),
                    function: UInt8(header.function))
                else { throw fail("invalid device address") }  // unreachable after the guards above
                if let earlier = firstLine[address] {
                    throw fail("device \(address) appears twice (first at line \(earlier))")
                }
                firstLine[address] = line
                finishDevice()
                records.append(DumpRecord(address: address, line: line, length: 0, bytes: []))
                current = records.count - 1
                continue
            }
            if end == start {
                finishDevice()
                continue
            }
            if current == nil {
                if bareAddressLine == nil && LSPCIDump.isBareAddress(b, start, end) { bareAddressLine = line }
                continue
            }
            guard let (offsetValue, dataStart) = LSPCIDump.dataLineOffset(b, start, end) else { continue }

            let pairs = LSPCIDump.readPairs(
                base + dataStart, count: end - dataStart, nibbles: nibbles, into: collectBytes ? scratch : nil,
                offset: Int(offsetValue), limit: LSPCIDump.maxConfigSize)
            if pairs.overflow {
                if offsetValue >= 0x8000_0000 {
                    // libpci would index its buffer with a negative int here.
                    throw fail("offset \(hex(offsetValue, width: 1)) is outside config space (at most 4096 bytes)")
                }
                throw fail("at most 4096 bytes of config space are supported (libpci: dump: At most 4096 bytes of config space are supported)")
            }
            let offset = pairs.offset
            let z = dataStart + pairs.consumed
            if offset > Int(offsetValue) && offset > length { length = offset }  // only when a byte was read
            if z < end {
                throw fail("malformed data at column \(z - start + 1): expected two-digit hex bytes separated by single spaces (libpci: dump: Malformed line)")
            }
        }
        return n
    }

    /// The records, once the whole input was fed.
    func finish() throws(DumpFileError) -> [DumpRecord] {
        guard sawBytes else { throw .noDevices(path: name, reason: "the file is empty") }
        finishDevice()
        if records.isEmpty {
            if let bare = bareAddressLine {
                throw .noDevices(
                    path: name,
                    reason: "line \(bare): a device line needs text after the address (e.g. '00:03.0 Device'), as lspci -x prints it")
            }
            throw .noDevices(path: name, reason: "no device lines such as '00:03.0 Device'; is this an lspci -x dump?")
        }
        return records
    }
}

@inline(__always)
func isHexDigit(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

/// The value of a hex digit, or 0xFF for any other byte (branch-light: the dump scan calls it
/// twice per config byte).
@inline(__always)
func nibble(_ c: UInt8) -> UInt8 {
    let digit = c &- 0x30
    if digit < 10 { return digit }
    let letter = (c | 0x20) &- 0x61
    return letter < 6 ? letter + 10 : 0xFF
}

@inline(__always)
func hexValue(_ c: UInt8) -> UInt8 {
    c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10
}
