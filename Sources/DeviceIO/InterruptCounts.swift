// Per-IRQ totals from /proc/interrupts, for "is the device in use?" before a rebind.
//
// The PCIAccess layer is growing a full /proc/interrupts parser (per-CPU columns, chip
// names, hwirq). Binding needs only totals per Linux IRQ, so it uses this small reader behind
// `InterruptCountSource`; swap the source for the PCIAccess parser once it lands.
#if canImport(Glibc)
import Glibc
#endif
import PCIAccess

/// One row of /proc/interrupts reduced to what binding needs.
public struct InterruptTotal: Hashable, Sendable {
    /// Linux IRQ number.
    public var irq: Int
    /// Sum over CPUs.
    public var total: UInt64
    /// The rest of the row (chip, hwirq, action names), trimmed.
    public var label: String
}

/// Where binding gets interrupt totals from (swappable; tests inject fixed rows).
public struct InterruptCountSource: Sendable {
    /// Returns totals keyed by IRQ number.
    public let read: @Sendable () -> [Int: InterruptTotal]

    /// Wraps a reader.
    public init(_ read: @escaping @Sendable () -> [Int: InterruptTotal]) {
        self.read = read
    }

    /// `<procRoot>/interrupts`.
    public static func proc(root: String) -> InterruptCountSource {
        InterruptCountSource { parseProcInterrupts(readText(root + "/interrupts") ?? "") }
    }
}

/// Parses /proc/interrupts: the header names the online CPUs; numeric rows carry one count
/// per CPU, then the chip and action names. Non-numeric rows (NMI, LOC, …) are skipped.
public func parseProcInterrupts(_ text: String) -> [Int: InterruptTotal] {
    var lines = text.split(separator: "\n")
    guard !lines.isEmpty else { return [:] }
    let cpus = lines.removeFirst().split(separator: " ").filter { $0.hasPrefix("CPU") }.count
    var result: [Int: InterruptTotal] = [:]
    for line in lines {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = fields.first, first.hasSuffix(":"), let irq = Int(first.dropLast()) else { continue }
        var total: UInt64 = 0
        var used = 1
        while used < fields.count, used <= cpus, let n = UInt64(fields[used]) {
            total &+= n
            used += 1
        }
        result[irq] = InterruptTotal(irq: irq, total: total, label: fields[used...].joined(separator: " "))
    }
    return result
}
