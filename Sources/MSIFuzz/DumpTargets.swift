// The two dump readers. libpci's dump method reads files, so the libpci target writes each
// input to one scratch file (in /dev/shm when it exists) and reads it back through both.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore
import PCIAccess

enum DumpNativeTarget {
    static func check(_ input: [UInt8]) -> String? {
        let records: [DumpRecord]
        do {
            records = try LSPCIDump.parse(bytes: input, name: "fuzz.dump")
        } catch {
            return isOneBoundedLine(error.description, limit: 512) ? nil : "refusal is not one short line: \(echoed(error.description))"
        }
        guard !records.isEmpty else { return "accepted a dump with no device" }
        guard Set(records.map(\.address)).count == records.count else { return "a device appears twice" }
        for r in records {
            guard r.length <= LSPCIDump.maxConfigSize, r.bytes.count == r.length else {
                return "\(r.address): length \(r.length), \(r.bytes.count) bytes"
            }
        }
        // What was read, rendered canonically, reads back identically.
        let canonical = render(records)
        let again: [DumpRecord]
        do { again = try LSPCIDump.parse(bytes: canonical, name: "canonical.dump") } catch {
            return "the canonical rendering is refused: \(error)"
        }
        let strip = { (rs: [DumpRecord]) in rs.map { "\($0.address) \($0.length) \($0.bytes)" } }
        guard strip(again) == strip(records) else { return "round trip differs: \(strip(records)) vs \(strip(again))" }
        return nil
    }

    /// `lspci -xxxx` text for `records`: a header per device, 16 bytes a line, the last line
    /// as long as the device's length.
    static func render(_ records: [DumpRecord]) -> [UInt8] {
        var out: [UInt8] = []
        for r in records {
            out += Array("\(r.address) Device\n".utf8)
            var offset = 0
            while offset < r.length {
                let end = min(offset + 16, r.length)
                out += Array((hex(offset, width: 2) + ":").utf8)
                for b in r.bytes[offset..<end] { out += Array((" " + hex(b, width: 2)).utf8) }
                out.append(0x0A)
                offset = end
            }
            out.append(0x0A)
        }
        return out
    }
}

enum DumpLibPCITarget {
    /// One scratch file per process, rewritten for every input.
    static let scratchPath: String = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(dir)/msifuzz-\(getpid()).dump"
    }()

    static func check(_ input: [UInt8]) -> String? {
        let path = scratchPath
        guard write(input, to: path) else { return nil }  // no scratch space: nothing to compare
        let native = Result { () throws(ProbeError) in
            try PCIProbe.run(.dump(path: path, reader: .native), options: ProbeOptions(lookupNames: false))
        }
        let libpci = Result { () throws(ProbeError) in
            try PCIProbe.run(.dump(path: path, reader: .libpci), options: ProbeOptions(lookupNames: false))
        }
        switch (native, libpci) {
        case (.failure(let a), .failure(let b)):
            guard isOneBoundedLine(a.description, limit: 512), isOneBoundedLine(b.description, limit: 512) else {
                return "refusal is not one short line: \(echoed(a.description)) / \(echoed(b.description))"
            }
            return nil
        case (.success(let a), .success(let b)):
            guard a.devices == b.devices else {
                let diff = zip(a.devices, b.devices).first { $0 != $1 }
                return "readers decode differently (\(a.devices.count) vs \(b.devices.count) devices): \(String(describing: diff))"
            }
        case (.success, .failure(let e)): return "native accepts, libpci refuses: \(e)"
        case (.failure(let e), .success): return "libpci accepts, native refuses: \(e)"
        }
        // Byte for byte: what libpci holds is what the native reader holds.
        do {
            let records = try LSPCIDump.read(path: path, collectBytes: true)
            let session = try LibPCISession(method: .dump(path: path))
            for r in records where r.length > 0 {
                guard try session.readConfig(r.address, offset: 0, count: r.length) == r.bytes else {
                    return "\(r.address): libpci holds other bytes than the native reader"
                }
            }
        } catch {
            return "second read failed: \(error)"
        }
        return nil
    }

    static func write(_ bytes: [UInt8], to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return true }  // empty input: the file is empty
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, base + done, raw.count - done)
                if n <= 0 { return false }
                done += n
            }
            return true
        }
    }
}
