// Interrupt rates from successive /proc/interrupts snapshots: per vector, per CPU and in
// total, with the cases a live system produces between two reads — a vector appearing
// (driver bound, queue added), disappearing (device removed, driver unbound), an irq number
// reused by another device, a counter restarting (freed and requested again) and a 32-bit
// counter wrapping (the kernel's per-CPU counts are `unsigned int`). A rate is never negative.
public import MSIShimCore

/// Identifies one vector across snapshots: the irq number with its chip and hwirq, so an irq
/// number freed by one device and allocated to another counts as a new vector.
public struct InterruptVectorKey: Hashable, Sendable, Comparable {
    /// The Linux irq number.
    public var irq: Int
    /// The chip name of its row (`PCI-MSIX-0000:00:03.0`, `IR-PCI-MSI`).
    public var chip: String
    /// The hwirq number of its row, nil when the row has none.
    public var hwirq: UInt64?

    /// The key of a row.
    public init(_ row: InterruptRow) {
        irq = row.irq
        chip = row.chip
        hwirq = row.hwirq
    }

    /// Keys order by irq number.
    public static func < (a: Self, b: Self) -> Bool { a.irq < b.irq }
}

/// How a vector fared between the two snapshots of a frame.
public enum VectorChange: String, Hashable, Sendable {
    /// In both snapshots, counts moved forward (or wrapped): the rate is exact.
    case steady
    /// Only in the newer snapshot: no rate yet (shown as new).
    case appeared
    /// Only in the older snapshot: gone (shown once as gone, then dropped).
    case disappeared
    /// In both, but a count went backwards without wrapping: the vector was freed and
    /// requested again in between; the rate counts what the new counter holds (a lower bound).
    case restarted
}

/// One vector's rates over a frame.
public struct VectorRate: Hashable, Sendable {
    /// Which vector.
    public var key: InterruptVectorKey
    /// The PCI vector, for MSI/MSI-X rows.
    public var source: MSIVectorSource?
    /// The driver's names for it.
    public var actions: String
    /// How it fared between the two snapshots.
    public var change: VectorChange
    /// Interrupts per second on each CPU of ``RateFrame/cpus``; nil when the vector appeared
    /// or disappeared (no two counts to compare).
    public var perCPU: [Double]?
    /// Interrupts per second on all CPUs; nil as for ``perCPU``.
    public var rate: Double?
    /// Interrupts counted over the frame (after wrap handling); nil as for ``perCPU``.
    public var delta: UInt64?
    /// The newest count summed over CPUs (the older one for a disappeared vector).
    public var total: UInt64
}

/// The rates of one interval.
public struct RateFrame: Hashable, Sendable {
    /// Seconds between the two snapshots (monotonic clock).
    public var interval: Double
    /// CPU ids of ``VectorRate/perCPU`` (the newer snapshot's online CPUs).
    public var cpus: [Int]
    /// Every vector of either snapshot, in irq order.
    public var vectors: [VectorRate]
}

/// Turns successive /proc/interrupts snapshots into ``RateFrame``s.
///
/// Feed snapshots in time order with ``advance(to:at:)``; the first one only sets the
/// baseline. A CPU present in only one snapshot (hotplug) contributes no rate for that frame.
public struct InterruptRateMeter: Sendable {
    private var previous: ProcInterrupts?
    private var previousTime: Double = 0

    /// A meter with no baseline.
    public init() {}

    /// The largest value a 32-bit per-CPU counter holds before it wraps to 0.
    public static let counterModulus: UInt64 = 1 << 32

    /// The interrupts counted between `old` and `new` on one CPU: `new - old`, or across a
    /// 32-bit wrap when `old` was in the counter's upper half and `new` is small enough that
    /// the wrapped distance is under half the counter; nil otherwise (a restart).
    public static func delta(old: UInt64, new: UInt64) -> UInt64? {
        if new >= old { return new - old }
        guard old < counterModulus, old >= counterModulus / 2 else { return nil }
        let wrapped = counterModulus - old + new
        return wrapped < counterModulus / 2 ? wrapped : nil
    }

    /// Adds a snapshot taken at `time` (seconds, monotonic). Returns the frame since the
    /// previous snapshot, or nil for the first one or a non-increasing time.
    public mutating func advance(to snapshot: ProcInterrupts, at time: Double) -> RateFrame? {
        defer {
            previous = snapshot
            previousTime = time
        }
        guard let old = previous, time > previousTime else { return nil }
        return Self.frame(from: old, to: snapshot, interval: time - previousTime)
    }

    /// The rates between two snapshots `interval` seconds apart (> 0).
    public static func frame(from old: ProcInterrupts, to new: ProcInterrupts, interval: Double) -> RateFrame {
        var oldRows: [InterruptVectorKey: InterruptRow] = [:]
        for row in old.rows { oldRows[InterruptVectorKey(row)] = row }
        var oldColumn: [Int: Int] = [:]
        for (i, cpu) in old.cpus.enumerated() { oldColumn[cpu] = i }

        var vectors: [VectorRate] = []
        vectors.reserveCapacity(new.rows.count)
        var seen = Set<InterruptVectorKey>()
        for row in new.rows {
            let key = InterruptVectorKey(row)
            seen.insert(key)
            guard let before = oldRows[key] else {
                vectors.append(VectorRate(
                    key: key, source: row.source, actions: row.actions, change: .appeared, perCPU: nil, rate: nil,
                    delta: nil, total: row.total))
                continue
            }
            var restarted = false
            var perCPU: [Double] = []
            perCPU.reserveCapacity(new.cpus.count)
            var sum: UInt64 = 0
            for (i, cpu) in new.cpus.enumerated() {
                let now = row.counts[i]
                guard let j = oldColumn[cpu] else {
                    perCPU.append(0)  // a CPU that just came online: no baseline yet
                    continue
                }
                let d: UInt64
                if let exact = delta(old: before.counts[j], new: now) {
                    d = exact
                } else {
                    restarted = true
                    d = now
                }
                sum &+= d
                perCPU.append(Double(d) / interval)
            }
            vectors.append(VectorRate(
                key: key, source: row.source, actions: row.actions, change: restarted ? .restarted : .steady,
                perCPU: perCPU, rate: Double(sum) / interval, delta: sum, total: row.total))
        }
        for row in old.rows where !seen.contains(InterruptVectorKey(row)) {
            vectors.append(VectorRate(
                key: InterruptVectorKey(row), source: row.source, actions: row.actions, change: .disappeared,
                perCPU: nil, rate: nil, delta: nil, total: row.total))
        }
        vectors.sort { $0.key.irq != $1.key.irq ? $0.key.irq < $1.key.irq : $0.change.rawValue < $1.change.rawValue }
        return RateFrame(interval: interval, cpus: new.cpus, vectors: vectors)
    }
}

extension RateFrame {
    /// The frame's MSI/MSI-X vectors grouped by device: devices by their summed rate (highest
    /// first, then by address), vectors within a device by rate (then by entry index);
    /// vectors without a rate (appeared, disappeared) after the rest.
    public func byDevice() -> [(address: PCIAddress, vectors: [VectorRate])] {
        var groups: [PCIAddress: [VectorRate]] = [:]
        for v in vectors {
            guard let address = v.source?.address else { continue }
            groups[address, default: []].append(v)
        }
        func rate(_ v: VectorRate) -> Double { v.rate ?? -1 }
        var out = groups.map { address, list in
            (address: address, vectors: list.sorted {
                rate($0) != rate($1) ? rate($0) > rate($1) : ($0.source?.index ?? 0, $0.key.irq) < ($1.source?.index ?? 0, $1.key.irq)
            })
        }
        func sum(_ list: [VectorRate]) -> Double { list.reduce(0) { $0 + ($1.rate ?? 0) } }
        out.sort { sum($0.vectors) != sum($1.vectors) ? sum($0.vectors) > sum($1.vectors) : $0.address < $1.address }
        return out
    }
}
