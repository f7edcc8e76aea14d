// Which Linux CPU an x86 APIC ID belongs to (/proc/cpuinfo's "processor" and "apicid"
// lines), and whether an MSI message's decoded destination agrees with where the kernel says
// the irq goes (its effective affinity).
//
// An MSI-X entry in compatibility format names a local APIC (physical destination mode, as
// Linux programs it); the kernel's effective_affinity_list names CPUs. They can disagree when
// the entry is stale (programmed before a migration the device has not seen yet), when
// something other than the kernel wrote it, or when a hypervisor remaps it. Remappable
// entries name an IRTE, whose destination only the IOMMU knows: not compared.
import MSIShimCore

/// APIC ID → Linux CPU number, from /proc/cpuinfo (x86 only; empty elsewhere).
public struct APICMap: Hashable, Sendable {
    /// CPU number by APIC ID.
    public var cpuByAPIC: [Int: Int]

    /// A map from its pairs.
    public init(cpuByAPIC: [Int: Int]) {
        self.cpuByAPIC = cpuByAPIC
    }

    /// Parses /proc/cpuinfo text: each `processor : N` block's `apicid : A` line.
    public init(cpuinfo text: String) {
        var map: [Int: Int] = [:]
        var processor: Int? = nil
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon]).trimmingWhitespace()
            let value = Int(String(line[line.index(after: colon)...]).trimmingWhitespace())
            switch key {
            case "processor": processor = value
            case "apicid": if let processor, let value { map[value] = processor }
            default: break
            }
        }
        cpuByAPIC = map
    }

    /// Reads `path` (default /proc/cpuinfo); an empty map when unreadable.
    public static func read(path: String = "/proc/cpuinfo") -> APICMap {
        readText(path).map { APICMap(cpuinfo: $0) } ?? APICMap(cpuByAPIC: [:])
    }

    /// The CPU with APIC ID `apic`, if known.
    public func cpu(apic: Int) -> Int? { cpuByAPIC[apic] }
}

/// How an entry's decoded destination compares with the kernel's effective affinity.
public enum PlacementCheck: Hashable, Sendable {
    /// The entry targets a CPU of the effective affinity.
    case agrees(cpu: Int)
    /// The entry targets `tableCPU` (nil: an APIC ID no CPU has), which is not in the
    /// effective affinity.
    case differs(tableCPU: Int?, apic: Int)
    /// Nothing to compare: no effective affinity, a remapped or logical-mode entry, or no
    /// APIC map.
    case notCompared

    /// Compares a physical-mode destination APIC ID with the effective affinity.
    public static func compare(destinationAPIC apic: Int, effective: CPUList?, map: APICMap) -> PlacementCheck {
        guard let effective, !effective.cpus.isEmpty, !map.cpuByAPIC.isEmpty else { return .notCompared }
        guard let cpu = map.cpu(apic: apic) else { return .differs(tableCPU: nil, apic: apic) }
        return effective.cpus.contains(cpu) ? .agrees(cpu: cpu) : .differs(tableCPU: cpu, apic: apic)
    }
}
