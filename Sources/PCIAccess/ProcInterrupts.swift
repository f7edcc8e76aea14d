// /proc/interrupts, parsed, with MSI/MSI-X rows mapped back to (device, vector index).
//
// Row format (kernel/irq/proc.c): "IRQ:" then one count per *online* CPU (the header
// names them; ids may be sparse), the chip name, the hwirq number joined to the flow
// handler name ("3-edge"), then the action names. Two MSI chip conventions exist:
//   per-device domains (Linux 6.2+): chip "PCI-MSIX-0000:00:03.0" or "PCI-MSI-0000:00:03.0",
//     possibly prefixed by the parent ("IR-", "ITS-"); hwirq = the vector index.
//   the older global domain: chip "PCI-MSI" (or "IR-PCI-MSI"), one for MSI and MSI-X alike;
//     hwirq = index | (bus << 8 | devfn) << 11 | domain << 27.
public import MSIShimCore

/// MSI or MSI-X, as the kernel's `msi_irqs/<irq>` files and chip names say.
public enum MSIKind: String, Hashable, Sendable, CustomStringConvertible {
    /// MSI (the `msi` content, `PCI-MSI` chips).
    case msi
    /// MSI-X (the `msix` content, `PCI-MSIX` chips).
    case msix

    public var description: String { rawValue }
}

/// The PCI vector a /proc/interrupts row belongs to.
public struct MSIVectorSource: Hashable, Sendable {
    /// The function the vector belongs to.
    public var address: PCIAddress
    /// nil for the older global PCI-MSI domain, whose rows do not tell MSI from MSI-X.
    public var kind: MSIKind?
    /// MSI-X table entry or MSI vector number.
    public var index: Int

    /// A vector of `address`.
    public init(address: PCIAddress, kind: MSIKind?, index: Int) {
        self.address = address
        self.kind = kind
        self.index = index
    }
}

/// One numbered row of /proc/interrupts.
public struct InterruptRow: Hashable, Sendable {
    /// The Linux interrupt number (the row's label).
    public var irq: Int
    /// Per-CPU counts, in the order of ``ProcInterrupts/cpus``.
    public var counts: [UInt64]
    /// The irq chip's name, e.g. `IR-PCI-MSIX-0000:00:03.0`.
    public var chip: String
    /// The hardware irq number of its domain; nil when the row has none.
    public var hwirq: UInt64?
    /// Flow handler name after the hwirq ("edge", "fasteoi").
    public var handler: String?
    /// Action names (usually the requesting driver's names), space-joined.
    public var actions: String
    /// The PCI vector, for MSI/MSI-X rows.
    public var source: MSIVectorSource?

    /// Sum over all CPUs.
    public var total: UInt64 { counts.reduce(0, &+) }
}

/// A parsed /proc/interrupts.
public struct ProcInterrupts: Hashable, Sendable {
    /// CPU ids from the header (online CPUs only, possibly sparse).
    public var cpus: [Int]
    /// Numbered rows (NMI, LOC and the other named rows are skipped).
    public var rows: [InterruptRow]
    private var byIRQ: [Int: Int]
    private var byVector: [VectorKey: Int]

    private struct VectorKey: Hashable {
        var address: PCIAddress
        var kind: MSIKind?
        var index: Int
    }

    /// Parses the text of /proc/interrupts. Lines that do not look like rows are skipped;
    /// the result is empty (no CPUs) if there is no header.
    public init(parsing text: String) {
        var cpus: [Int] = []
        var rows: [InterruptRow] = []
        var sawHeader = false
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                defer { start = end + 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if !sawHeader {
                    let names = Self.tokens(line)
                    if !names.isEmpty && names.allSatisfy({ $0.count > 3 && $0.starts(with: Self.cpuPrefix) }) {
                        cpus = names.compactMap { Self.decimal($0.dropFirst(3)) }.map { Int($0) }
                        sawHeader = true
                    }
                    continue
                }
                if let row = Self.parseRow(line, cpuCount: cpus.count) { rows.append(row) }
            }
        }
        self.cpus = cpus
        self.rows = rows
        byIRQ = [:]
        byVector = [:]
        for (i, row) in rows.enumerated() {
            byIRQ[row.irq] = i
            if let s = row.source { byVector[VectorKey(address: s.address, kind: s.kind, index: s.index)] = i }
        }
    }

    /// Reads and parses a file (default /proc/interrupts); nil when it cannot be read.
    public static func read(path: String = "/proc/interrupts") -> ProcInterrupts? {
        readText(path).map { ProcInterrupts(parsing: $0) }
    }

    /// The row of a Linux IRQ number.
    public func row(irq: Int) -> InterruptRow? {
        byIRQ[irq].map { rows[$0] }
    }

    /// The row of MSI-X table entry / MSI vector `index` of `address`. Rows of the older
    /// global domain (kind unknown) match either kind.
    public func row(device address: PCIAddress, kind: MSIKind, index: Int) -> InterruptRow? {
        if let i = byVector[VectorKey(address: address, kind: kind, index: index)] { return rows[i] }
        return byVector[VectorKey(address: address, kind: nil, index: index)].map { rows[$0] }
    }

    /// Every MSI/MSI-X row of `address`, by vector index.
    public func rows(device address: PCIAddress) -> [InterruptRow] {
        rows.filter { $0.source?.address == address }.sorted { ($0.source?.index ?? 0) < ($1.source?.index ?? 0) }
    }

    // MARK: Row parsing

    private static let cpuPrefix = Array("CPU".utf8)

    /// Space-separated tokens of a line.
    static func tokens(_ line: UnsafeBufferPointer<UInt8>) -> [Slice<UnsafeBufferPointer<UInt8>>] {
        var out: [Slice<UnsafeBufferPointer<UInt8>>] = []
        var i = 0
        while i < line.count {
            while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
            let s = i
            while i < line.count && line[i] != 0x20 && line[i] != 0x09 { i += 1 }
            if i > s { out.append(line[s..<i]) }
        }
        return out
    }

    /// A run of decimal digits as a number; nil if empty, not all digits, or too long.
    static func decimal(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var v: UInt64 = 0
        for c in digits {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            v = v * 10 + UInt64(c - 0x30)
        }
        return v
    }

    static func parseRow(_ line: UnsafeBufferPointer<UInt8>, cpuCount: Int) -> InterruptRow? {
        var tokens = tokens(line)[...]
        guard let first = tokens.first, first.last == UInt8(ascii: ":"),
              let irq = decimal(first.dropLast()) else { return nil }  // NMI:, LOC:, ...
        tokens = tokens.dropFirst()
        var counts: [UInt64] = []
        counts.reserveCapacity(cpuCount)
        while counts.count < cpuCount, let t = tokens.first, let n = decimal(t) {
            counts.append(n)
            tokens = tokens.dropFirst()
        }
        guard counts.count == cpuCount else { return nil }
        // The chip name runs up to the "<hwirq>-<handler>" token (chip names may hold spaces).
        var chipParts: [String] = []
        var hwirq: UInt64? = nil
        var handler: String? = nil
        while let t = tokens.first {
            tokens = tokens.dropFirst()
            if let dash = t.firstIndex(of: UInt8(ascii: "-")), let n = decimal(t[t.startIndex..<dash]) {
                hwirq = n
                handler = String(decoding: t[(dash + 1)...], as: UTF8.self)
                break
            }
            chipParts.append(String(decoding: t, as: UTF8.self))
        }
        let chip = chipParts.joined(separator: " ")
        let actions = tokens.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        let source = hwirq.flatMap { msiSource(chip: chip, hwirq: $0) }
        return InterruptRow(
            irq: Int(irq), counts: counts, chip: chip, hwirq: hwirq, handler: handler, actions: actions, source: source)
    }

    /// Maps a chip name and hwirq to the PCI vector (see the file comment).
    public static func msiSource(chip: String, hwirq: UInt64) -> MSIVectorSource? {
        let bytes = Array(chip.utf8)
        for (marker, kind) in [(msixMarker, MSIKind.msix), (msiMarker, MSIKind.msi)] {
            if let at = find(marker, in: bytes),
               let address = try? PCIAddress(parsing: String(decoding: bytes[(at + marker.count)...], as: UTF8.self)) {
                return MSIVectorSource(address: address, kind: kind, index: Int(hwirq))
            }
        }
        if chip == "PCI-MSI" || chip.hasSuffix("-PCI-MSI") {
            return legacySource(hwirq: hwirq)
        }
        return nil
    }

    private static let msixMarker = Array("PCI-MSIX-".utf8)
    private static let msiMarker = Array("PCI-MSI-".utf8)

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }

    /// Decodes the older global PCI-MSI domain's hwirq:
    /// `index | (bus << 8 | devfn) << 11 | domain << 27`.
    public static func legacySource(hwirq: UInt64) -> MSIVectorSource? {
        let index = Int(hwirq & 0x7FF)
        let devid = (hwirq >> 11) & 0xFFFF
        let domain = UInt32(truncatingIfNeeded: hwirq >> 27)
        guard let address = PCIAddress(
            domain: domain, bus: UInt8(devid >> 8), device: UInt8((devid >> 3) & 0x1F), function: UInt8(devid & 7))
        else { return nil }
        return MSIVectorSource(address: address, kind: nil, index: index)
    }

    /// The hwirq the older global PCI-MSI domain gives vector `index` of `address`.
    public static func legacyHWIRQ(address: PCIAddress, index: Int) -> UInt64 {
        UInt64(index) | UInt64(address.requesterID) << 11 | UInt64(address.domain) << 27
    }
}
