// A fixed-size CPU set (struct cpumask) without heap allocation.

/// A set of CPU numbers 0…255, the model's `struct cpumask`.
///
/// Stored inline in four words so affinity masks, vector searches and matrix operations never
/// allocate. ``MSIPlatformConfiguration`` limits the machine to ``CPUMask/capacity`` CPUs.
public struct CPUMask: Hashable, Sendable, Sequence, CustomStringConvertible {
    /// The largest number of CPUs a mask can hold.
    public static let capacity = 256

    @usableFromInline var w0: UInt64 = 0
    @usableFromInline var w1: UInt64 = 0
    @usableFromInline var w2: UInt64 = 0
    @usableFromInline var w3: UInt64 = 0

    /// The empty mask.
    public init() {}

    /// A mask holding `cpus` (numbers outside 0…255 are ignored).
    public init(_ cpus: some Sequence<Int>) {
        for cpu in cpus { insert(cpu) }
    }

    /// The mask of CPUs `0..<count` (cpumask_setall on a `count`-CPU machine).
    public static func first(_ count: Int) -> CPUMask {
        // Whole words at once: this runs for every interrupt allocated.
        let n = Swift.min(Swift.max(count, 0), capacity)
        var m = CPUMask()
        for i in 0..<4 {
            let bits = Swift.min(Swift.max(n - 64 * i, 0), 64)
            m.setWord(i, bits == 64 ? ~0 : (1 << UInt64(bits)) - 1)
        }
        return m
    }

    /// A mask with exactly one CPU (cpumask_of).
    public static func of(_ cpu: Int) -> CPUMask { CPUMask([cpu]) }

    @inlinable func word(_ i: Int) -> UInt64 {
        switch i {
        case 0: w0
        case 1: w1
        case 2: w2
        default: w3
        }
    }

    @inlinable mutating func setWord(_ i: Int, _ v: UInt64) {
        switch i {
        case 0: w0 = v
        case 1: w1 = v
        case 2: w2 = v
        default: w3 = v
        }
    }

    /// Whether `cpu` is in the mask (cpumask_test_cpu).
    @inlinable @inline(__always) public func contains(_ cpu: Int) -> Bool {
        guard cpu >= 0, cpu < Self.capacity else { return false }
        return word(cpu >> 6) & (1 << UInt64(cpu & 63)) != 0
    }

    /// Adds `cpu` (cpumask_set_cpu); ignored outside 0…255.
    @inlinable public mutating func insert(_ cpu: Int) {
        guard cpu >= 0, cpu < Self.capacity else { return }
        setWord(cpu >> 6, word(cpu >> 6) | 1 << UInt64(cpu & 63))
    }

    /// Removes `cpu` (cpumask_clear_cpu).
    @inlinable public mutating func remove(_ cpu: Int) {
        guard cpu >= 0, cpu < Self.capacity else { return }
        setWord(cpu >> 6, word(cpu >> 6) & ~(1 << UInt64(cpu & 63)))
    }

    /// True when no CPU is set (cpumask_empty).
    public var isEmpty: Bool { w0 | w1 | w2 | w3 == 0 }

    /// Number of CPUs set (cpumask_weight).
    public var count: Int { w0.nonzeroBitCount + w1.nonzeroBitCount + w2.nonzeroBitCount + w3.nonzeroBitCount }

    /// The lowest CPU in the mask (cpumask_first), or nil when empty.
    public var first: Int? { next(from: 0) }

    /// The lowest CPU ≥ `start` in the mask.
    public func next(from start: Int) -> Int? {
        var i = Swift.max(start, 0)
        while i < Self.capacity {
            let w = word(i >> 6) & (~0 << UInt64(i & 63))
            if w != 0 { return (i & ~63) + w.trailingZeroBitCount }
            i = (i & ~63) + 64
        }
        return nil
    }

    /// cpumask_and.
    public func intersection(_ o: CPUMask) -> CPUMask {
        var r = CPUMask()
        r.w0 = w0 & o.w0; r.w1 = w1 & o.w1; r.w2 = w2 & o.w2; r.w3 = w3 & o.w3
        return r
    }

    /// cpumask_or.
    public func union(_ o: CPUMask) -> CPUMask {
        var r = CPUMask()
        r.w0 = w0 | o.w0; r.w1 = w1 | o.w1; r.w2 = w2 | o.w2; r.w3 = w3 | o.w3
        return r
    }

    /// cpumask_andnot.
    public func subtracting(_ o: CPUMask) -> CPUMask {
        var r = CPUMask()
        r.w0 = w0 & ~o.w0; r.w1 = w1 & ~o.w1; r.w2 = w2 & ~o.w2; r.w3 = w3 & ~o.w3
        return r
    }

    /// cpumask_intersects.
    public func intersects(_ o: CPUMask) -> Bool { !intersection(o).isEmpty }

    /// cpumask_subset.
    public func isSubset(of o: CPUMask) -> Bool { subtracting(o).isEmpty }

    /// Iterates the CPUs of a mask in ascending order.
    public struct Iterator: IteratorProtocol {
        let mask: CPUMask
        var at = 0
        /// The next CPU, or nil at the end.
        public mutating func next() -> Int? {
            guard let cpu = mask.next(from: at) else { return nil }
            at = cpu + 1
            return cpu
        }
    }

    /// Iterates the CPUs in ascending order (for_each_cpu).
    public func makeIterator() -> Iterator { Iterator(mask: self) }

    /// The kernel's cpulist format, e.g. `0-3,8`.
    public var description: String {
        var parts: [String] = []
        var cpu = first
        while let start = cpu {
            var end = start
            while contains(end + 1) { end += 1 }
            parts.append(start == end ? "\(start)" : "\(start)-\(end)")
            cpu = next(from: end + 1)
        }
        return parts.isEmpty ? "(none)" : parts.joined(separator: ",")
    }
}
