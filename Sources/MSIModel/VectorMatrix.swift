// The per-CPU interrupt vector allocator (kernel/irq/matrix.c), as x86 sets it up
// (arch/x86/kernel/apic/vector.c: irq_alloc_matrix(NR_VECTORS, FIRST_EXTERNAL_VECTOR,
// FIRST_SYSTEM_VECTOR) and lapic_assign_system_vectors()).

/// 256 bits without heap allocation: one per-CPU vector bitmap.
struct Bitmap256: Hashable, Sendable {
    var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    static func == (a: Bitmap256, b: Bitmap256) -> Bool { a.w == b.w }
    func hash(into h: inout Hasher) { h.combine(w.0); h.combine(w.1); h.combine(w.2); h.combine(w.3) }

    @inline(__always) func word(_ i: Int) -> UInt64 {
        switch i { case 0: w.0; case 1: w.1; case 2: w.2; default: w.3 }
    }
    @inline(__always) mutating func setWord(_ i: Int, _ v: UInt64) {
        switch i { case 0: w.0 = v; case 1: w.1 = v; case 2: w.2 = v; default: w.3 = v }
    }
    func test(_ bit: Int) -> Bool { word(bit >> 6) & (1 << UInt64(bit & 63)) != 0 }
    mutating func set(_ bit: Int) { setWord(bit >> 6, word(bit >> 6) | 1 << UInt64(bit & 63)) }
    mutating func clear(_ bit: Int) { setWord(bit >> 6, word(bit >> 6) & ~(1 << UInt64(bit & 63))) }
    static func | (a: Bitmap256, b: Bitmap256) -> Bitmap256 {
        Bitmap256(w: (a.w.0 | b.w.0, a.w.1 | b.w.1, a.w.2 | b.w.2, a.w.3 | b.w.3))
    }
    /// a & ~b (bitmap_andnot).
    func subtracting(_ b: Bitmap256) -> Bitmap256 {
        Bitmap256(w: (w.0 & ~b.w.0, w.1 & ~b.w.1, w.2 & ~b.w.2, w.3 & ~b.w.3))
    }
    /// First set bit in [start, end), or `end`.
    func firstSet(from start: Int, end: Int) -> Int {
        var i = start
        while i < end {
            let v = word(i >> 6) & (~0 << UInt64(i & 63))
            if v != 0 {
                let bit = (i & ~63) + v.trailingZeroBitCount
                return bit < end ? bit : end
            }
            i = (i & ~63) + 64
        }
        return end
    }
    /// First clear bit in [start, end), or `end` (bitmap_find_next_zero_area with one bit).
    func firstClear(from start: Int, end: Int) -> Int {
        var i = start
        while i < end {
            let v = ~word(i >> 6) & (~0 << UInt64(i & 63))
            if v != 0 {
                let bit = (i & ~63) + v.trailingZeroBitCount
                return bit < end ? bit : end
            }
            i = (i & ~63) + 64
        }
        return end
    }
    var setBits: [Int] {
        var r: [Int] = []
        var i = firstSet(from: 0, end: 256)
        while i < 256 { r.append(i); i = firstSet(from: i + 1, end: 256) }
        return r
    }
}

/// One CPU's counters in the vector matrix (`struct cpumap`).
public struct CPUVectorCounters: Hashable, Sendable {
    /// Vectors still allocatable on this CPU (not system, not managed, not allocated).
    public var available: Int
    /// Vectors in use (managed or not).
    public var allocated: Int
    /// Vectors reserved for managed interrupts.
    public var managed: Int
    /// Managed vectors actually in use.
    public var managedAllocated: Int
    /// The CPU is online.
    public var online: Bool
}

/// `struct irq_matrix`: per-CPU vector bitmaps with the kernel's accounting.
///
/// A value type: the platform keeps one under its lock; tests can build their own. Every
/// operation mirrors the matrix.c function named in its documentation, including the corner
/// cases (best-CPU choice, managed reservation rollback, what is and is not counted while a CPU
/// is offline). Where matrix.c would `BUG()`, the model throws.
public struct VectorMatrix: Hashable, Sendable {
    struct CPUMap: Hashable, Sendable {
        var available = 0
        var allocated = 0
        var managed = 0
        var managedAllocated = 0
        var initialized = false
        var online = false
        var managedMap = Bitmap256()
        var allocMap = Bitmap256()
    }

    /// `matrix_bits`: 256 on x86.
    public let matrixBits: Int
    /// `alloc_start`: `FIRST_EXTERNAL_VECTOR` (0x20) on x86.
    public let allocStart: Int
    /// `alloc_end`: `FIRST_SYSTEM_VECTOR` (0xEC, or 0xEB with posted MSI) on x86.
    public let allocEnd: Int
    /// `global_available`: allocatable vectors over all online CPUs.
    public private(set) var globalAvailable = 0
    /// `global_reserved`: interrupts holding a global reservation (no vector yet).
    public private(set) var globalReserved = 0
    /// `systembits_inalloc`: system vectors inside [allocStart, allocEnd).
    public private(set) var systemBitsInAlloc = 0
    /// `total_allocated`.
    public private(set) var totalAllocated = 0
    /// `online_maps`.
    public private(set) var onlineMaps = 0
    /// The online CPUs as a mask (always within `0..<cpuCount`), so a search intersects it
    /// once instead of testing each CPU.
    var onlineMask = CPUMask()
    /// The most vectors an online CPU has available (`Int.min` with no CPU online) and the
    /// online CPUs with that many: an `irq_matrix_alloc()` whose mask holds every online CPU
    /// (the usual case) takes the first of them instead of scanning them all. Derived from
    /// ``maps``: kept in step by every change of an available count (``availableChanged(_:from:)``)
    /// and rebuilt when the set empties or a CPU goes on- or offline, so it always equals what
    /// a scan would find.
    var maxAvailable = Int.min
    var atMaxAvailable = CPUMask()
    var systemMap = Bitmap256()
    var maps: [CPUMap]
    /// The warnings matrix.c prints (pr_warn / WARN_ON_ONCE), oldest first.
    public private(set) var warnings: [String] = []

    /// `irq_alloc_matrix(matrixBits, allocStart, allocEnd)` for `cpus` possible CPUs, all offline.
    public init(cpus: Int, matrixBits: Int = 256, allocStart: Int = X86Vectors.firstExternal,
                allocEnd: Int = X86Vectors.localTimer) {
        self.matrixBits = min(max(matrixBits, 1), 256)
        self.allocStart = min(max(allocStart, 0), self.matrixBits)
        self.allocEnd = min(max(allocEnd, self.allocStart), self.matrixBits)
        maps = Array(repeating: CPUMap(), count: min(max(cpus, 1), CPUMask.capacity))
    }

    /// The x86 matrix after boot: system vectors (`systemVectors` plus the PIC cascade vector)
    /// assigned, CPU 0 online with the legacy ISA vectors 0x30…0x3F (minus the cascade) on it,
    /// then every CPU of `online` brought up (`lapic_assign_system_vectors`, `lapic_online`).
    public static func x86(cpus: Int, online: CPUMask? = nil, firstSystemVector: Int = X86Vectors.localTimer,
                           systemVectors: [Int] = [X86Vectors.syscall], legacyIRQs: Int = 16) -> VectorMatrix {
        var m = VectorMatrix(cpus: cpus, allocEnd: firstSystemVector)
        for v in systemVectors { try? m.assignSystem(v, replace: false, on: 0) }
        if legacyIRQs > 1 { try? m.assignSystem(X86Vectors.isaBase + X86Vectors.picCascadeIRQ, replace: false, on: 0) }
        try? m.online(0)
        for irq in 0..<max(0, min(legacyIRQs, 16)) where irq != X86Vectors.picCascadeIRQ {
            m.assign(X86Vectors.isaBase + irq, on: 0)
        }
        let wanted = online ?? .first(m.maps.count)
        for cpu in wanted where cpu > 0 && cpu < m.maps.count { try? m.online(cpu) }
        return m
    }

    /// Number of possible CPUs.
    public var cpuCount: Int { maps.count }

    /// The counters of one CPU.
    public func counters(cpu: Int) -> CPUVectorCounters? {
        guard cpu >= 0, cpu < maps.count else { return nil }
        let m = maps[cpu]
        return CPUVectorCounters(available: m.available, allocated: m.allocated, managed: m.managed,
                                 managedAllocated: m.managedAllocated, online: m.online)
    }

    /// The online CPUs.
    public var onlineCPUs: CPUMask {
        CPUMask(maps.indices.filter { maps[$0].online })
    }

    /// Vectors allocated (in `alloc_map`) on `cpu`.
    public func allocatedVectors(cpu: Int) -> [Int] {
        guard cpu >= 0, cpu < maps.count else { return [] }
        return maps[cpu].allocMap.setBits
    }

    /// Vectors reserved for managed interrupts (in `managed_map`) on `cpu`.
    public func managedVectors(cpu: Int) -> [Int] {
        guard cpu >= 0, cpu < maps.count else { return [] }
        return maps[cpu].managedMap.setBits
    }

    /// Whether `vector` is a system vector.
    public func isSystemVector(_ vector: Int) -> Bool { vector >= 0 && vector < 256 && systemMap.test(vector) }

    mutating func warn(_ s: String) {
        if warnings.count < 256 { warnings.append(s) }
    }

    func checkCPU(_ cpu: Int, _ fn: String) throws(MSIError) {
        guard cpu >= 0, cpu < maps.count else {
            throw MSIError(.EINVAL, fn, "CPU \(cpu) does not exist (\(maps.count) possible)")
        }
    }

    /// `irq_matrix_online()`: brings `cpu`'s map online; the first time, its available count is
    /// the allocation range minus its managed and the system vectors.
    /// - Throws: EBUSY if already online (the kernel BUGs).
    public mutating func online(_ cpu: Int) throws(MSIError) {
        try checkCPU(cpu, "irq_matrix_online")
        guard !maps[cpu].online else { throw MSIError(.EBUSY, "irq_matrix_online", "CPU \(cpu) is already online") }
        if !maps[cpu].initialized {
            maps[cpu].available = (allocEnd - allocStart) - maps[cpu].managed - systemBitsInAlloc
            maps[cpu].initialized = true
        }
        globalAvailable += maps[cpu].available
        maps[cpu].online = true
        onlineMask.insert(cpu)
        onlineMaps += 1
        rebuildMaxAvailable()
    }

    /// `irq_matrix_offline()`: takes `cpu`'s available vectors out of the global pool.
    public mutating func offline(_ cpu: Int) throws(MSIError) {
        try checkCPU(cpu, "irq_matrix_offline")
        guard maps[cpu].online else { throw MSIError(.EINVAL, "irq_matrix_offline", "CPU \(cpu) is not online") }
        globalAvailable -= maps[cpu].available
        maps[cpu].online = false
        onlineMask.remove(cpu)
        onlineMaps -= 1
        rebuildMaxAvailable()
    }

    /// Recomputes ``maxAvailable`` and ``atMaxAvailable`` from the online CPUs.
    mutating func rebuildMaxAvailable() {
        maxAvailable = Int.min
        atMaxAvailable = CPUMask()
        for cpu in onlineMask {
            let a = maps[cpu].available
            if a > maxAvailable {
                maxAvailable = a
                atMaxAvailable = CPUMask()
            }
            if a == maxAvailable { atMaxAvailable.insert(cpu) }
        }
    }

    /// Keeps ``maxAvailable`` and ``atMaxAvailable`` in step after `cpu`'s available count
    /// changed from `old`.
    @inline(__always)
    mutating func availableChanged(_ cpu: Int, from old: Int) {
        guard onlineMask.contains(cpu) else { return }
        let new = maps[cpu].available
        if new > maxAvailable {
            maxAvailable = new
            atMaxAvailable = CPUMask()
            atMaxAvailable.insert(cpu)
        } else if new == maxAvailable {
            atMaxAvailable.insert(cpu)
        } else if old == maxAvailable {
            atMaxAvailable.remove(cpu)
            if atMaxAvailable.isEmpty { rebuildMaxAvailable() }
        }
    }

    /// `irq_matrix_assign_system()`: marks `bit` as a system vector, excluded from every search.
    /// Only allowed while at most one CPU (`on`, the boot CPU) is online.
    /// - Throws: EBUSY when more than one CPU is online, or one is and `replace` is false; EINVAL
    ///   for a bit past `matrixBits` or a `replace` of a bit not allocated (all BUGs in the kernel).
    public mutating func assignSystem(_ bit: Int, replace: Bool, on cpu: Int = 0) throws(MSIError) {
        guard bit >= 0, bit < matrixBits else { throw MSIError(.EINVAL, "irq_matrix_assign_system", "bit \(bit) out of range") }
        guard onlineMaps <= 1, onlineMaps == 0 || replace else {
            throw MSIError(.EBUSY, "irq_matrix_assign_system", "system vectors can only be assigned while at most one CPU is online")
        }
        try checkCPU(cpu, "irq_matrix_assign_system")
        if replace {
            guard maps[cpu].allocMap.test(bit) else {
                throw MSIError(.EINVAL, "irq_matrix_assign_system", "vector 0x\(hexString(bit, 2)) is not allocated on CPU \(cpu)")
            }
            maps[cpu].allocMap.clear(bit)
            maps[cpu].allocated -= 1
            totalAllocated -= 1
        }
        systemMap.set(bit)
        if bit >= allocStart && bit < allocEnd { systemBitsInAlloc += 1 }
    }

    /// `irq_matrix_assign()`: marks `bit` allocated on `cpu` (used for the legacy ISA vectors).
    /// Out-of-range or already-set bits are WARNed and ignored, as in the kernel.
    public mutating func assign(_ bit: Int, on cpu: Int) {
        guard cpu >= 0, cpu < maps.count else { return warn("irq_matrix_assign: no CPU \(cpu)") }
        guard bit >= allocStart, bit < allocEnd else { return warn("irq_matrix_assign: bit \(bit) outside the allocation range") }
        guard !maps[cpu].allocMap.test(bit) else { return warn("irq_matrix_assign: bit \(bit) already set") }
        maps[cpu].allocMap.set(bit)
        maps[cpu].allocated += 1
        totalAllocated += 1
        maps[cpu].available -= 1
        availableChanged(cpu, from: maps[cpu].available + 1)
        globalAvailable -= 1
    }

    /// `matrix_alloc_area()` for one bit: the lowest bit at or above `allocStart` that is not a
    /// system, managed or allocated bit; marks it in the managed or alloc map. `allocEnd` if none.
    mutating func allocArea(cpu: Int, managed: Bool) -> Int {
        let taken = maps[cpu].managedMap | systemMap | maps[cpu].allocMap
        let bit = taken.firstClear(from: allocStart, end: allocEnd)
        guard bit < allocEnd else { return bit }
        if managed { maps[cpu].managedMap.set(bit) } else { maps[cpu].allocMap.set(bit) }
        return bit
    }

    /// `irq_matrix_reserve_managed()`: reserves one vector on **every** CPU of `mask`, online or
    /// not. If a CPU has none left, the reservations already made are undone.
    /// - Throws: ENOSPC.
    public mutating func reserveManaged(mask: CPUMask) throws(MSIError) {
        var done = CPUMask()
        for cpu in mask where cpu < maps.count {
            let bit = allocArea(cpu: cpu, managed: true)
            if bit >= allocEnd {
                removeManaged(mask: done)
                throw MSIError(.ENOSPC, "irq_matrix_reserve_managed", "no vector left to reserve on CPU \(cpu)")
            }
            maps[cpu].managed += 1
            if maps[cpu].online {
                maps[cpu].available -= 1
                availableChanged(cpu, from: maps[cpu].available + 1)
                globalAvailable -= 1
            }
            done.insert(cpu)
        }
    }

    /// `irq_matrix_remove_managed()`: gives back one managed reservation (the lowest managed
    /// vector not in use) on every CPU of `mask`.
    public mutating func removeManaged(mask: CPUMask) {
        for cpu in mask where cpu < maps.count {
            guard maps[cpu].managed > 0 else {
                warn("irq_matrix_remove_managed: CPU \(cpu) has no managed reservation")
                continue
            }
            let free = maps[cpu].managedMap.subtracting(maps[cpu].allocMap)
            let bit = free.firstSet(from: 0, end: allocEnd)
            guard bit < allocEnd else {
                warn("irq_matrix_remove_managed: every managed vector of CPU \(cpu) is in use")
                continue
            }
            maps[cpu].managedMap.clear(bit)
            maps[cpu].managed -= 1
            if maps[cpu].online {
                maps[cpu].available += 1
                availableChanged(cpu, from: maps[cpu].available - 1)
                globalAvailable += 1
            }
        }
    }

    /// `irq_matrix_alloc_managed()`: on the online CPU of `mask` with the fewest managed vectors
    /// in use (ties go to the last such CPU), takes a reserved managed vector.
    /// - Throws: EINVAL for an empty mask; ENOSPC when no online CPU or no reserved vector.
    public mutating func allocManaged(mask: CPUMask) throws(MSIError) -> (cpu: Int, vector: Int) {
        guard !mask.isEmpty else { throw MSIError(.EINVAL, "irq_matrix_alloc_managed", "empty CPU mask") }
        var best = -1
        var fewest = Int.max
        for cpu in mask where cpu < maps.count {
            let m = maps[cpu]
            if !m.online || m.managedAllocated > fewest { continue }
            best = cpu
            fewest = m.managedAllocated
        }
        guard best >= 0 else { throw MSIError(.ENOSPC, "irq_matrix_alloc_managed", "no online CPU in \(mask)") }
        let free = maps[best].managedMap.subtracting(maps[best].allocMap)
        let bit = free.firstSet(from: 0, end: allocEnd)
        guard bit < allocEnd else {
            throw MSIError(.ENOSPC, "irq_matrix_alloc_managed", "no reserved managed vector left on CPU \(best)")
        }
        maps[best].allocMap.set(bit)
        maps[best].allocated += 1
        maps[best].managedAllocated += 1
        totalAllocated += 1
        return (best, bit)
    }

    /// `irq_matrix_reserve()`: a global reservation, bookkeeping only (warns when the
    /// reservations reach what is available).
    public mutating func reserve() {
        if globalReserved == globalAvailable {
            warn("irq_matrix_reserve: Interrupt reservation exceeds available resources")
        }
        globalReserved += 1
    }

    /// `irq_matrix_remove_reserved()`.
    public mutating func removeReserved() {
        globalReserved -= 1
    }

    /// `irq_matrix_alloc()`: on the online CPU of `mask` with strictly the most available
    /// vectors (ties go to the first), takes the lowest free vector. With `reserved`, one global
    /// reservation is consumed.
    /// - Throws: EINVAL for an empty mask; ENOSPC when no online CPU has a vector.
    public mutating func alloc(mask: CPUMask, reserved: Bool) throws(MSIError) -> (cpu: Int, vector: Int) {
        guard !mask.isEmpty else { throw MSIError(.EINVAL, "irq_matrix_alloc", "empty CPU mask") }
        var best = -1
        let search = mask.intersection(onlineMask)
        if search == onlineMask {
            // Every online CPU: the first with the most available vectors, if it has any.
            if maxAvailable > 0 { best = atMaxAvailable.first ?? -1 }
        } else {
            // matrix_find_best_cpu: one pass over the set bits of the mask's online CPUs,
            // reading each CPU's available count in place.
            var most = 0
            maps.withUnsafeBufferPointer { m in
                guard let base = m.baseAddress else { return }
                for wi in 0..<4 {
                    var w = search.word(wi)
                    while w != 0 {
                        let c = wi &<< 6 | w.trailingZeroBitCount
                        w &= w &- 1
                        let available = base[c].available
                        if available > most {
                            best = c
                            most = available
                        }
                    }
                }
            }
        }
        guard best >= 0 else { throw MSIError(.ENOSPC, "irq_matrix_alloc", "no online CPU with a free vector in \(mask)") }
        let bit = allocArea(cpu: best, managed: false)
        guard bit < allocEnd else { throw MSIError(.ENOSPC, "irq_matrix_alloc", "no free vector on CPU \(best)") }
        maps[best].allocated += 1
        maps[best].available -= 1
        availableChanged(best, from: maps[best].available + 1)
        totalAllocated += 1
        globalAvailable -= 1
        if reserved { globalReserved -= 1 }
        return (best, bit)
    }

    /// `irq_matrix_free()`: returns `vector` on `cpu`. A managed vector stays reserved; a
    /// non-managed one becomes available again. Bad arguments are WARNed and ignored.
    public mutating func free(cpu: Int, vector: Int, managed: Bool) {
        guard cpu >= 0, cpu < maps.count else { return warn("irq_matrix_free: no CPU \(cpu)") }
        guard vector >= allocStart, vector < allocEnd else { return warn("irq_matrix_free: vector \(vector) outside the allocation range") }
        guard maps[cpu].allocMap.test(vector) else { return warn("irq_matrix_free: vector 0x\(hexString(vector, 2)) not allocated on CPU \(cpu)") }
        maps[cpu].allocMap.clear(vector)
        maps[cpu].allocated -= 1
        if managed { maps[cpu].managedAllocated -= 1 }
        if maps[cpu].online { totalAllocated -= 1 }
        if !managed {
            maps[cpu].available += 1
            availableChanged(cpu, from: maps[cpu].available - 1)
            if maps[cpu].online { globalAvailable += 1 }
        }
    }
}
