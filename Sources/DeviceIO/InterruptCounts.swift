// Per-IRQ totals from /proc/interrupts, for "is the device in use?" before a rebind.
//
// Binding needs only totals per Linux IRQ; they come from PCIAccess's /proc/interrupts
// parser behind `InterruptCountSource`, which tests replace with fixed rows.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore
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

/// Totals per Linux IRQ from /proc/interrupts text (parsed by `ProcInterrupts`).
public func parseProcInterrupts(_ text: String) -> [Int: InterruptTotal] {
    var result: [Int: InterruptTotal] = [:]
    for row in ProcInterrupts(parsing: text).rows {
        let trigger = [row.hwirq.map { "\($0)" }, row.handler].compactMap { $0 }.joined(separator: "-")
        let label = [row.chip, trigger, row.actions].filter { !$0.isEmpty }.joined(separator: " ")
        result[row.irq] = InterruptTotal(irq: row.irq, total: row.total, label: label)
    }
    return result
}
