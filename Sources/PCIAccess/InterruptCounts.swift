// Per-IRQ totals from /proc/interrupts, for "is the device in use?" before a rebind.
//
// Binding joins a device's IRQs (sysfs msi_irqs, the legacy line) with the rows of
// ``ProcInterrupts``; ``InterruptCountSource`` lets tests replace the file with fixed rows.

/// Where binding gets interrupt counts from (swappable; tests inject fixed rows).
public struct InterruptCountSource: Sendable {
    /// Returns the current rows of /proc/interrupts.
    public let read: @Sendable () -> ProcInterrupts

    /// Wraps a reader.
    public init(_ read: @escaping @Sendable () -> ProcInterrupts) {
        self.read = read
    }

    /// `<procRoot>/interrupts`; no rows when it cannot be read.
    public static func proc(root: String) -> InterruptCountSource {
        InterruptCountSource { ProcInterrupts.read(path: root + "/interrupts") ?? ProcInterrupts(parsing: "") }
    }
}

extension InterruptRow {
    /// The row after its counts, as /proc/interrupts shows it: chip, `hwirq-handler`, actions
    /// (e.g. `IO-APIC 2-edge timer`).
    public var label: String {
        let trigger = [hwirq.map { "\($0)" }, handler].compactMap { $0 }.joined(separator: "-")
        return [chip, trigger, actions].filter { !$0.isEmpty }.joined(separator: " ")
    }
}
