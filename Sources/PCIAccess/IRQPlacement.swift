// Where the kernel placed an irq: /proc/irq/<N>/smp_affinity_list (the CPUs it may go to),
// effective_affinity_list (the CPU(s) the chip actually targets, Linux 4.15+ with
// CONFIG_GENERIC_IRQ_EFFECTIVE_AFF_MASK) and node (the NUMA node of the irq descriptor, -1
// for none). The files are absent on older kernels and unreadable to non-root users for
// some irqs: absence is information (nil), never an error.
import MSIShimCore

/// A CPU list as the kernel prints it (`0-3,8,10-11`), parsed.
public struct CPUList: Hashable, Sendable, CustomStringConvertible {
    /// The kernel's text, unchanged (what JSON and the text view show).
    public var text: String
    /// The CPUs, ascending, without duplicates.
    public var cpus: [Int]

    /// Parses the kernel's list format (`bitmap_print_to_pagebuf` with a list): comma-separated
    /// numbers and ranges `a-b`; an empty text is the empty list. Nil for anything else
    /// (a reversed range, a non-number, more than `limit` CPUs).
    public init?(parsing text: String, limit: Int = 1 << 16) {
        let trimmed = text.trimmingWhitespace()
        var cpus: [Int] = []
        if !trimmed.isEmpty {
            for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                let ends = part.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(ends.count), let low = Int(ends[0]), low >= 0,
                      let high = ends.count == 2 ? Int(ends[1]) : low, high >= low, high < limit
                else { return nil }
                cpus.append(contentsOf: low...high)
            }
        }
        self.text = trimmed
        self.cpus = Array(Set(cpus)).sorted()
    }

    /// The list for `cpus`, printed the kernel's way (`%*pbl`: every run of consecutive
    /// CPUs, pairs too, becomes `a-b`).
    public init(_ cpus: [Int]) {
        let sorted = Array(Set(cpus.filter { $0 >= 0 })).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(j > i ? "\(sorted[i])-\(sorted[j])" : "\(sorted[i])")
            i = j + 1
        }
        self.text = parts.joined(separator: ",")
        self.cpus = sorted
    }

    /// The kernel's text.
    public var description: String { text }
}

/// The kernel's placement of one irq, from `/proc/irq/<N>/`.
public struct IRQPlacement: Hashable, Sendable {
    /// `smp_affinity_list`: the CPUs the irq may be delivered to; nil when unreadable.
    public var smpAffinity: CPUList?
    /// `effective_affinity_list`: the CPU(s) the chip is programmed to target; nil when
    /// absent (older kernels, some chips) or unreadable.
    public var effectiveAffinity: CPUList?
    /// `node`: the NUMA node of the descriptor (-1 = none, as the kernel prints it); nil
    /// when absent.
    public var node: Int?

    /// A placement from its parts.
    public init(smpAffinity: CPUList? = nil, effectiveAffinity: CPUList? = nil, node: Int? = nil) {
        self.smpAffinity = smpAffinity
        self.effectiveAffinity = effectiveAffinity
        self.node = node
    }

    /// Whether nothing could be read.
    public var isEmpty: Bool { smpAffinity == nil && effectiveAffinity == nil && node == nil }

    /// Reads `<root>/<irq>/{smp_affinity_list,effective_affinity_list,node}`; `root` is
    /// `/proc/irq` on a live system. Missing or malformed files leave their field nil.
    public static func read(irq: Int, root: String = "/proc/irq") -> IRQPlacement {
        let dir = root + "/\(irq)/"
        return IRQPlacement(
            smpAffinity: readText(dir + "smp_affinity_list").flatMap { CPUList(parsing: $0) },
            effectiveAffinity: readText(dir + "effective_affinity_list").flatMap { CPUList(parsing: $0) },
            node: readText(dir + "node").flatMap { Int($0.trimmingWhitespace()) })
    }

    /// The `/proc/irq` directory that belongs with a `/proc/interrupts` path (its sibling
    /// `irq`), so a fake proc tree in tests carries both.
    public static func root(besideInterrupts path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "irq" }
        return String(path[..<slash]) + "/irq"
    }
}
