// msibench io: MMIO accessor overhead against a raw C loop over the same mapping, and config
// reads per second through the sysfs `config` file and through libpci.
#if canImport(Glibc)
import Glibc
#endif
import BenchBaseline
import CMSIShim
import DeviceIO
import MSIShimCore
import PCIAccess

private func ioNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}

/// Best of `repeats` runs of `body`, in nanoseconds per operation.
private func ioMeasure(_ operations: Int, repeats: Int = 5, _ body: () throws -> UInt64) rethrows -> (ns: Double, sink: UInt64) {
    var best = Double.infinity
    var sink: UInt64 = 0
    for _ in 0..<repeats {
        let t0 = ioNow()
        sink &+= try body()
        best = min(best, (ioNow() - t0) / Double(operations))
    }
    return (best, sink)
}

@inline(never)
private func ioConcreteRead32(_ r: MappedRegion, mask: Int, n: Int) throws -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<n { sum &+= UInt64(try r.read32((i &* 4) & mask)) }
    return sum
}

@inline(never)
private func ioExistentialRead32(_ r: any MMIORegion, mask: Int, n: Int) throws -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<n { sum &+= UInt64(try r.read32((i &* 4) & mask)) }
    return sum
}

@inline(never)
private func ioConcreteRead64(_ r: MappedRegion, mask: Int, n: Int) throws -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<n { sum &+= try r.read64((i &* 8) & mask) }
    return sum
}

@inline(never)
private func ioExistentialRead64(_ r: any MMIORegion, mask: Int, n: Int) throws -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<n { sum &+= try r.read64((i &* 8) & mask) }
    return sum
}

@inline(never)
private func ioConcreteWrite32(_ r: MappedRegion, mask: Int, n: Int) throws -> UInt64 {
    for i in 0..<n { try r.write32((i &* 4) & mask, UInt32(truncatingIfNeeded: i)) }
    return UInt64(n)
}

@inline(never)
private func ioExistentialWrite32(_ r: any MMIORegion, mask: Int, n: Int) throws -> UInt64 {
    for i in 0..<n { try r.write32((i &* 4) & mask, UInt32(truncatingIfNeeded: i)) }
    return UInt64(n)
}

@inline(never)
private func ioConfigRead32(_ c: some ConfigSpaceAccess, mask: Int, n: Int) throws -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<n { sum &+= UInt64(try c.read32((i &* 4) & mask)) }
    return sum
}

private func ioRow(_ name: String, _ ns: Double, baseline: Double?) {
    let ratio = baseline.map { ioFixed($0 > 0 ? ns / $0 : 0, 2) + "x" } ?? ""
    let rate = ns > 0 ? ioFixed(1e9 / ns, 0) : "-"
    print("  " + ioPad(name, 44, left: true) + ioPad(ioFixed(ns, 2), 10) + " ns/op" + ioPad(rate, 13) + " ops/s"
        + ioPad(ratio, 9))
}

private func ioPad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let pad = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + pad : pad + text
}

/// `v` with `precision` decimals.
private func ioFixed(_ v: Double, _ precision: Int) -> String {
    guard v.isFinite else { return "inf" }
    var scale: Int64 = 1
    for _ in 0..<precision { scale *= 10 }
    let scaled = Int64((abs(v) * Double(scale)).rounded())
    let sign = v < 0 ? "-" : ""
    guard precision > 0 else { return sign + String(scaled) }
    var frac = String(scaled % scale)
    while frac.count < precision { frac = "0" + frac }
    return sign + "\(scaled / scale).\(frac)"
}

private func ioArgument(_ arguments: [String], _ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

/// `msibench io [--iterations N] [--config-reads N] [--device BDF]`.
func runIOBench(_ arguments: [String]) throws {
    let n = ioArgument(arguments, "--iterations").flatMap { Int($0) } ?? 20_000_000
    let configReads = ioArgument(arguments, "--config-reads").flatMap { Int($0) } ?? 2_000
    let size = 64 * 1024
    let mask = size - 1

    print("== MMIO accessors over one anonymous \(size / 1024) KiB mapping (\(n) accesses, best of 9)")
    let region = try MappedRegion.anonymous(name: "bench", size: size)
    let base = region.unsafeBaseAddress
    let existential: any MMIORegion = region
    let c32 = ioMeasure(n, repeats: 9) { io_baseline_read32_loop(base, mask, n) }
    let s32 = try ioMeasure(n, repeats: 9) { try ioConcreteRead32(region, mask: mask, n: n) }
    let e32 = try ioMeasure(n, repeats: 9) { try ioExistentialRead32(existential, mask: mask, n: n) }
    let k32 = ioMeasure(n, repeats: 9) { io_baseline_checked_read32_loop(base, size, mask, n) }
    ioRow("read32  raw C loop (baseline)", c32.ns, baseline: nil)
    ioRow("read32  C loop with the same checks", k32.ns, baseline: c32.ns)
    ioRow("read32  MappedRegion (concrete)", s32.ns, baseline: c32.ns)
    ioRow("read32  MappedRegion vs the checked C loop", s32.ns, baseline: k32.ns)
    ioRow("read32  any MMIORegion (existential)", e32.ns, baseline: c32.ns)
    // Bulk: the whole 64 KiB as dwords, checked once per block (how a table dump reads).
    let dwords = size / 4
    let blocks = max(1, n / dwords)
    let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: dwords)
    defer { out.deallocate() }
    let cb = ioMeasure(blocks * dwords, repeats: 9) { () -> UInt64 in
        for _ in 0..<blocks { io_baseline_read32_block(base, 0, out.baseAddress, dwords) }
        return UInt64(out[dwords - 1])
    }
    let sb = try ioMeasure(blocks * dwords, repeats: 9) { () throws -> UInt64 in
        for _ in 0..<blocks { try region.readDwords(0, into: out) }
        return UInt64(out[dwords - 1])
    }
    ioRow("read32 block (64 KiB) raw C copy", cb.ns, baseline: nil)
    ioRow("read32 block MappedRegion.readDwords", sb.ns, baseline: cb.ns)
    let c64 = ioMeasure(n, repeats: 9) { io_baseline_read64_loop(base, mask, n) }
    let s64 = try ioMeasure(n, repeats: 9) { try ioConcreteRead64(region, mask: mask, n: n) }
    let e64 = try ioMeasure(n, repeats: 9) { try ioExistentialRead64(existential, mask: mask, n: n) }
    ioRow("read64  raw C loop (baseline)", c64.ns, baseline: nil)
    ioRow("read64  MappedRegion (concrete)", s64.ns, baseline: c64.ns)
    ioRow("read64  any MMIORegion (existential)", e64.ns, baseline: c64.ns)
    let cw = ioMeasure(n, repeats: 9) { io_baseline_write32_loop(base, mask, n); return UInt64(n) }
    let sw = try ioMeasure(n, repeats: 9) { try ioConcreteWrite32(region, mask: mask, n: n) }
    let ew = try ioMeasure(n, repeats: 9) { try ioExistentialWrite32(existential, mask: mask, n: n) }
    ioRow("write32 raw C loop (baseline)", cw.ns, baseline: nil)
    ioRow("write32 MappedRegion (concrete)", sw.ns, baseline: cw.ns)
    ioRow("write32 any MMIORegion (existential)", ew.ns, baseline: cw.ns)

    // A plain-file mapping pays an fstat per access (the truncation guard).
    var template = Array("/tmp/msibench-io-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { b in b.baseAddress.map { mkstemp($0) } ?? -1 }
    if fd >= 0 {
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        _ = ftruncate(fd, off_t(size))
        close(fd)
        let file = try MappedRegion.file(path: path, writable: true)
        let fileN = max(1, n / 100)
        let cf = ioMeasure(fileN) { io_baseline_read32_loop(file.unsafeBaseAddress, mask, fileN) }
        let sf = try ioMeasure(fileN) { try ioConcreteRead32(file, mask: mask, n: fileN) }
        ioRow("read32  file mapping, raw C loop", cf.ns, baseline: nil)
        ioRow("read32  file MappedRegion (fstat guard)", sf.ns, baseline: cf.ns)
    }

    let sysfs = DeviceIOEnvironment.live.sysfs
    let address = ioArgument(arguments, "--device").flatMap { try? PCIAddress(parsing: $0) } ?? sysfs.addresses().first
    guard let address else {
        print("== config reads: no PCI device in \(sysfs.root); skipped")
        return
    }
    print("== config reads of \(address), first 64 bytes (\(configReads) reads, best of 3)")
    let configPath = sysfs.devicePath(address) + "/config"
    let cfd = open(configPath, O_RDONLY | O_CLOEXEC)
    guard cfd >= 0 else {
        print("  cannot open \(configPath): errno \(errno); skipped")
        return
    }
    defer { close(cfd) }
    let cp = ioMeasure(configReads, repeats: 3) { io_baseline_pread32_loop(cfd, 0x3F, configReads) }
    let config = try SysfsConfigSpace(address: address)
    let sp = try ioMeasure(configReads, repeats: 3) { try ioConfigRead32(config, mask: 0x3F, n: configReads) }
    ioRow("sysfs config: raw C pread loop (baseline)", cp.ns, baseline: nil)
    ioRow("sysfs config: SysfsConfigSpace.read32", sp.ns, baseline: cp.ns)

    // libpci directly (pci_read_long, linux_sysfs method), then through PCIAccess's
    // LibPCIConfigSpace with its per-dword cache dropped before every read (an uncached read,
    // as a device-programming path would need).
    if let acc = pci_alloc() {
        msishim_pci_install_handlers(acc)
        var err = [CChar](repeating: 0, count: 256)
        if msishim_pci_init(acc, &err, err.count) == 0,
           let dev = pci_get_dev(acc, Int32(address.domain), Int32(address.bus), Int32(address.device),
                                 Int32(address.function)) {
            let lp = ioMeasure(configReads, repeats: 3) { () -> UInt64 in
                var sum: UInt64 = 0
                for i in 0..<configReads { sum &+= UInt64(pci_read_long(dev, Int32((i &* 4) & 0x3C))) }
                return sum
            }
            ioRow("libpci pci_read_long (uncached)", lp.ns, baseline: cp.ns)
            pci_free_dev(dev)
        } else {
            print("  libpci: init failed: \(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)); skipped")
        }
        pci_cleanup(acc)
    }
    let session = try LibPCISession(method: .live())
    let libpciConfig = try LibPCIConfigSpace(session: session, address: address)
    let lc = try ioMeasure(configReads, repeats: 3) { () throws -> UInt64 in
        var sum: UInt64 = 0
        for i in 0..<configReads {
            libpciConfig.invalidate()
            sum &+= UInt64(try libpciConfig.read32((i &* 4) & 0x3C))
        }
        return sum
    }
    ioRow("LibPCIConfigSpace.read32 (uncached)", lc.ns, baseline: cp.ns)
}
