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
    case msi
    case msix

    public var description: String { rawValue }
}

/// The PCI vector a /proc/interrupts row belongs to.
public struct MSIVectorSource: Hashable, Sendable {
    public var address: PCIAddress
    /// nil for the older global PCI-MSI domain, whose rows do not tell MSI from MSI-X.
    public var kind: MSIKind?
    /// MSI-X table entry or MSI vector number.
    public var index: Int

    public init(address: PCIAddress, kind: MSIKind?, index: Int) {
        self.address = address
        self.kind = kind
        self.index = index
    }
}

/// One numbered row of /proc/interrupts.
public struct InterruptRow: Hashable, Sendable {
    public var irq: Int
    /// Per-CPU counts, in the order of ``ProcInterrupts/cpus``.
    public var counts: [UInt64]
    public var chip: String
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
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if !sawHeader {
                let names = line.split(separator: " ", omittingEmptySubsequences: true)
                if !names.isEmpty && names.allSatisfy({ $0.hasPrefix("CPU") }) {
                    cpus = names.compactMap { Int($0.dropFirst(3)) }
                    sawHeader = true
                }
                continue
            }
            if let row = Self.parseRow(line, cpuCount: cpus.count) { rows.append(row) }
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

    static func parseRow(_ line: Substring, cpuCount: Int) -> InterruptRow? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        guard let irq = Int(line[..<colon].trimmingSpaces()) else { return nil }  // NMI, LOC, ...
        var tokens = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true)[...]
        var counts: [UInt64] = []
        counts.reserveCapacity(cpuCount)
        while counts.count < cpuCount, let first = tokens.first, let n = UInt64(first) {
            counts.append(n)
            tokens = tokens.dropFirst()
        }
        guard counts.count == cpuCount else { return nil }
        // The chip name runs up to the "<hwirq>-<handler>" token (chip names may hold spaces).
        var chipParts: [Substring] = []
        var hwirq: UInt64? = nil
        var handler: String? = nil
        while let t = tokens.first {
            tokens = tokens.dropFirst()
            if let dash = t.firstIndex(of: "-"), let n = UInt64(t[..<dash]) {
                hwirq = n
                handler = String(t[t.index(after: dash)...])
                break
            }
            chipParts.append(t)
        }
        let chip = chipParts.joined(separator: " ")
        let actions = tokens.joined(separator: " ")
        let source = hwirq.flatMap { msiSource(chip: chip, hwirq: $0) }
        return InterruptRow(irq: irq, counts: counts, chip: chip, hwirq: hwirq, handler: handler, actions: actions, source: source)
    }

    /// Maps a chip name and hwirq to the PCI vector (see the file comment).
    public static func msiSource(chip: String, hwirq: UInt64) -> MSIVectorSource? {
        for (marker, kind) in [("PCI-MSIX-", MSIKind.msix), ("PCI-MSI-", MSIKind.msi)] {
            if let range = chip.firstRange(of: marker), let address = try? PCIAddress(parsing: String(chip[range.upperBound...])) {
                return MSIVectorSource(address: address, kind: kind, index: Int(hwirq))
            }
        }
        if chip == "PCI-MSI" || chip.hasSuffix("-PCI-MSI") {
            return legacySource(hwirq: hwirq)
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

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
