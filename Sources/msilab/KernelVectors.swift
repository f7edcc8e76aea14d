// The guest kernel's own x86 vector matrix, rebuilt from its irq_matrix trace events. The lab
// boots with `trace_event=irq_matrix:* trace_clock=global` (trace_init runs before init_IRQ, so
// every system vector, every legacy assignment and every later allocation is recorded; the
// clock is fixed up front because switching it later, as the kernel does on TCG's "unstable"
// TSC, empties the buffer). Replaying the events gives, per CPU, the vectors in use now, every
// vector ever handed out (a freed vector stays VECTOR_SHUTDOWN in vector_irq and swallows its
// next interrupt silently) and the kernel's own count of available vectors, to cross-check.
#if canImport(Glibc)
import Glibc
#endif
import MSIModel
import PCIAccess
import MSIShimCore

struct KernelVectors {
    /// Vectors allocated now, per CPU.
    var allocated: [Int: Set<Int>] = [:]
    /// Vectors ever allocated, per CPU (allocated now or freed since).
    var everUsed: [Int: Set<Int>] = [:]
    /// Managed reservations now, per CPU.
    var managed: [Int: Set<Int>] = [:]
    /// System vectors (`irq_matrix_assign_system`).
    var system: Set<Int> = []
    /// The last `avl=` the kernel reported for each CPU.
    var available: [Int: Int] = [:]
    /// CPUs brought online (`irq_matrix_online` events seen).
    var onlineEvents = 0
    var events = 0

    static let tracePath = "/sys/kernel/tracing/trace"

    /// Parses the trace (nil when tracefs is not mounted or the trace is empty).
    static func read(_ path: String = tracePath) -> KernelVectors? {
        guard let text = readText(path) else { return nil }
        var k = KernelVectors()
        for line in text.split(separator: "\n") {
            guard let at = line.firstRange(of: ": irq_matrix_") else { continue }
            let rest = line[at.upperBound...]
            guard let colon = rest.firstIndex(of: ":") else { continue }
            let event = String(rest[..<colon])
            var fields: [String: Int] = [:]
            for token in rest[colon...].split(separator: " ") {
                let kv = token.split(separator: "=", maxSplits: 1)
                if kv.count == 2, let v = Int(kv[1].trimmingCharacters(",")) { fields[String(kv[0])] = v }
            }
            k.apply(event, fields)
        }
        return k.events > 0 ? k : nil
    }

    mutating func apply(_ event: String, _ f: [String: Int]) {
        events += 1
        if event == "online" { onlineEvents += 1 }
        if event == "assign_system", let bit = f["bit"] { system.insert(bit); return }
        guard let bit = f["bit"], let cpu = f["cpu"] else { return }
        if let avl = f["avl"] { available[cpu] = avl }
        switch event {
        case "assign", "alloc", "alloc_managed", "alloc_reserved":
            allocated[cpu, default: []].insert(bit)
            everUsed[cpu, default: []].insert(bit)
        case "free":
            allocated[cpu, default: []].remove(bit)
        case "reserve_managed":
            managed[cpu, default: []].insert(bit)
        case "remove_managed":
            managed[cpu, default: []].remove(bit)
        default:
            break
        }
    }

    /// Whether `vector` on `cpu` is free and was never used (its vector_irq slot is VECTOR_UNUSED).
    func isPristine(cpu: Int, vector: Int) -> Bool {
        !system.contains(vector) && !(everUsed[cpu]?.contains(vector) ?? false) && !(managed[cpu]?.contains(vector) ?? false)
    }

    /// One line per CPU: vectors in use, freed ones, available count.
    func summary(cpus: Int) -> String {
        (0..<cpus).map { cpu in
            let now = (allocated[cpu] ?? []).sorted().map { hx($0) }.joined(separator: ",")
            let freed = (everUsed[cpu] ?? []).subtracting(allocated[cpu] ?? []).sorted().map { hx($0) }.joined(separator: ",")
            return "CPU\(cpu): in use [\(now)] freed [\(freed)] avl \(available[cpu].map(String.init) ?? "?")"
        }.joined(separator: "; ")
    }

    /// Copies the kernel's use into `platform`'s matrix: every vector the kernel holds or ever
    /// held, and its system vectors the model does not have, become taken on that CPU. With
    /// `everUsed` false only the vectors held now are copied (the matrix then matches the
    /// kernel's available counts).
    func seed(_ platform: MSIPlatform, everUsed includeFreed: Bool) {
        let matrix = platform.vectorMatrix
        for cpu in 0..<platform.cpuCount {
            var taken = includeFreed ? (everUsed[cpu] ?? []) : (allocated[cpu] ?? [])
            taken.formUnion(system)
            for v in taken.sorted() where !matrix.isSystemVector(v) && v >= X86Vectors.firstExternal
                && v < platform.configuration.firstSystemVector {
                platform.assignVector(v, onCPU: cpu)
            }
        }
    }
}

extension Substring {
    func trimmingCharacters(_ c: Character) -> Substring {
        var s = self
        while s.last == c { s = s.dropLast() }
        return s
    }
}

/// The online CPU count (from /sys/devices/system/cpu/online, e.g. "0-5").
func onlineCPUCount() -> Int {
    let text = readText("/sys/devices/system/cpu/online")?.trimmingWhitespace() ?? "0"
    return CPUList.parse(text).count
}

/// The kernel's cpulist format ("0-3,8") as a set.
enum CPUList {
    static func parse(_ text: String) -> Set<Int> {
        var out: Set<Int> = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-").compactMap { Int(String($0).trimmingWhitespace()) }
            if ends.count == 2, ends[0] <= ends[1] { out.formUnion(ends[0]...ends[1]) } else if let v = ends.first { out.insert(v) }
        }
        return out
    }

    static func format(_ cpus: Set<Int>) -> String {
        CPUMask(cpus).description
    }
}
