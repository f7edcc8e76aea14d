// The platform's allocation state and the irq-domain hierarchy below the device domains:
// Linux interrupt numbers (kernel/irq/irqdesc.c), the x86 vector domain
// (arch/x86/kernel/apic/vector.c) and Intel interrupt remapping
// (drivers/iommu/intel/irq_remapping.c). Everything here runs under the platform lock.

/// One Linux interrupt: the irq_desc, the MSI-level irq_data, `struct apic_chip_data` and
/// `struct irq_2_iommu`, flattened.
struct IRQRecord: Sendable {
    /// The number is allocated (a freed number keeps its stale record with this cleared).
    var present = true
    // irq_desc / MSI domain level
    var owner: UInt32
    var domain: MSIDomainID
    var hwirq: Int
    var msiIndex: Int
    /// Index into ``PlatformState/domainNames`` (a plain value, so copying a record retains
    /// nothing).
    var domainNameRef: Int
    var affinity: CPUMask
    /// The descriptor's NUMA node, -1 for none.
    var node = -1
    /// IRQD_AFFINITY_MANAGED.
    var managed: Bool
    /// IRQD_AFFINITY_SET: `irq_set_affinity()` chose ``affinity``; `irq_setup_affinity()` keeps it.
    var affinitySet = false
    /// IRQD_ACTIVATED.
    var activated = false
    /// IRQD_IRQ_STARTED.
    var started = false
    /// IRQD_IRQ_MASKED (a fresh interrupt is disabled and masked).
    var masked = true
    /// `irq_desc.depth`: nested `disable_irq()`s. 1 for a fresh or shut-down interrupt,
    /// 0 once `request_irq()` started it (`irq_startup`), back to 1 at `free_irq()`.
    var depth = 1
    /// An action is installed (`request_irq()` succeeded, `free_irq()` not yet called): the
    /// allocation side's copy of the delivery table's flag, kept in step by
    /// ``PlatformState/installAction(_:_:)`` and ``PlatformState/uninstallAction(_:)`` so that
    /// request and free checks need no delivery-table lock.
    var requested = false
    /// No action was installed since the number was allocated, so the delivery table's
    /// counts for it still belong to an earlier user of the number: they read as zero, and
    /// the first ``PlatformState/installAction(_:_:)`` clears them (in the table lock it takes
    /// anyway, so allocation needs none). Nothing counts before a first request: a delivery
    /// to an interrupt without an action is dropped uncounted.
    var fresh = true
    /// IRQD_MANAGED_SHUTDOWN (set at allocation for managed interrupts).
    var managedShutdown: Bool
    /// IRQD_CAN_RESERVE.
    var irqdCanReserve = false
    // apic_chip_data
    var vector = 0
    var cpu = 0
    var isManagedVector = false
    var canReserve = false
    var hasReserved = false
    /// hw_irq_cfg: what the message says.
    var cfgVector = 0
    var cfgCPU = 0
    // irq_2_iommu
    var irteBase = -1
    var irteSub = 0
    var irteMask = 0
    var irMessage = MSIMessage.zero
}

extension IRQRecord {
    /// What an unallocated number's slot in the record table holds.
    static var absent: IRQRecord {
        IRQRecord(present: false, owner: 0, domain: .default, hwirq: 0, msiIndex: 0, domainNameRef: 0, affinity: CPUMask(),
                  managed: false, managedShutdown: false)
    }
}

struct PlatformState: ~Copyable, @unchecked Sendable {
    // @unchecked: the record table is raw memory reached only under the platform lock.
    // Non-copyable: it owns that memory, and a method that only reads borrows the state
    // instead of copying it (a copy of this struct is hundreds of bytes).
    let config: MSIPlatformConfiguration
    var matrix: VectorMatrix
    var online: CPUMask
    let table: DeliveryTable
    let apics: [UInt32]
    /// One record per Linux interrupt number below ``recordCapacity`` (absent ones have
    /// `present == false`): raw memory, so a record is read and changed in place, with no
    /// copy-on-write check or copy of the whole record.
    var records: UnsafeMutablePointer<IRQRecord>
    var recordCapacity = 0
    /// The names of the domains interrupts were allocated from, interned.
    var domainNames: [String] = []
    /// Allocated Linux interrupt numbers, one bit each (raw: no copy-on-write check per bit).
    var irqBitmap: UnsafeMutablePointer<UInt64>
    /// Every dynamic irq below this is allocated.
    var irqHint: Int
    var irteBitmap: UnsafeMutablePointer<UInt64>
    let irteEntries: Int
    var warnings = WarningLog()
    /// Every possible CPU (`cpumask_setall`), the default affinity.
    let allCPUs: CPUMask
    var failAfter: Int?
    var failTimes = 1
    var nextDeviceID: UInt32 = 1
    /// Each device's NUMA node (`dev_to_node`), by device id; absent means none.
    var deviceNodes: [UInt32: Int] = [:]

    init(config: MSIPlatformConfiguration, matrix: VectorMatrix, online: CPUMask, table: DeliveryTable,
         apics: [UInt32], irteEntries: Int) {
        self.config = config
        self.matrix = matrix
        self.online = online
        self.table = table
        self.apics = apics
        self.irteEntries = irteEntries
        irqBitmap = .allocate(capacity: (config.maxIRQs + 63) / 64)
        irqBitmap.initialize(repeating: 0, count: (config.maxIRQs + 63) / 64)
        irqHint = config.firstDynamicIRQ
        irteBitmap = .allocate(capacity: max((irteEntries + 63) / 64, 1))
        irteBitmap.initialize(repeating: 0, count: max((irteEntries + 63) / 64, 1))
        records = .allocate(capacity: 1)
        allCPUs = .first(config.cpuCount)
    }

    deinit {
        records.deinitialize(count: recordCapacity)
        records.deallocate()
        irqBitmap.deallocate()
        irteBitmap.deallocate()
    }

    /// Makes room for numbers below `n`.
    mutating func growRecords(to n: Int) {
        guard n > recordCapacity else { return }
        let size = max(n, recordCapacity * 2, 64)
        let grown = UnsafeMutablePointer<IRQRecord>.allocate(capacity: size)
        grown.moveInitialize(from: records, count: recordCapacity)
        (grown + recordCapacity).initialize(repeating: .absent, count: size - recordCapacity)
        records.deallocate()
        records = grown
        recordCapacity = size
    }

    /// The allocated interrupt numbers, ascending.
    var allocatedNumbers: [Int] { (0..<recordCapacity).filter { records[$0].present } }

    var remapping: Bool { config.interruptRemapping != nil }

    /// A copy of the record of `virq`, nil when not allocated.
    func record(_ virq: Int) -> IRQRecord? {
        rec(virq)?.pointee
    }

    /// The record of `virq` in place, nil when not allocated. Valid until the table grows
    /// (only ``allocBlock(count:affinity:owner:domain:msiIndex:domainNameRef:isPCIMultiMSI:)``
    /// grows it).
    @inline(__always)
    func rec(_ virq: Int) -> UnsafeMutablePointer<IRQRecord>? {
        guard UInt(bitPattern: virq) < UInt(bitPattern: recordCapacity), records[virq].present else { return nil }
        return records + virq
    }

    /// Mutates the record of `virq` in place (no copy of the record).
    @inline(__always)
    mutating func update(_ virq: Int, _ body: (inout IRQRecord) -> Void) {
        if let r = rec(virq) { body(&r.pointee) }
    }

    /// The platform half of `msi_init_virq()` without reservation: IRQD_CAN_RESERVE cleared,
    /// and with early activation a managed interrupt whose CPUs are all offline is left in
    /// managed shutdown. True when that happened (no activation then).
    mutating func initVirqNoReserve(_ virq: Int, activateEarly: Bool) -> Bool {
        guard let r = rec(virq) else { return false }
        r.pointee.irqdCanReserve = false
        guard activateEarly, r.pointee.managed, !r.pointee.affinity.intersects(online) else { return false }
        r.pointee.managedShutdown = true
        return true
    }

    // MARK: actions (request_irq / free_irq), in the record and the delivery table

    /// Installs `handler` as `virq`'s action (`__setup_irq`): the record and the delivery
    /// table say requested. The first time since allocation, the counts start from zero.
    mutating func installAction(_ virq: Int, _ handler: IRQHandler?) {
        guard let r = rec(virq) else { return }
        r.pointee.requested = true
        let fresh = r.pointee.fresh
        r.pointee.fresh = false
        table.state.withLock { t in
            if fresh { t.clearCounts(virq) }
            t.install(virq, handler)
        }
    }

    /// The interrupts handled by `virq` on each CPU (kstat_irqs): zeros for a number not
    /// allocated or never requested since its allocation.
    func counts(_ virq: Int) -> [UInt64] {
        guard let r = rec(virq), !r.pointee.fresh else { return Array(repeating: 0, count: config.cpuCount) }
        return table.state.withLock { t in t.counts(of: virq) }
    }

    /// Removes `virq`'s action (`__free_irq`); the table retires it.
    mutating func uninstallAction(_ virq: Int) {
        update(virq) { $0.requested = false }
        table.state.withLock { t in t.uninstall(virq) }
    }

    mutating func warn(_ fn: String, _ msg: String) { warnings.warn(fn, msg) }

    var firstOnlineCPU: Int { online.first ?? 0 }

    @inline(__always)
    func cpuNode(_ cpu: Int) -> Int {
        guard let nodes = config.cpuNodes, cpu >= 0, cpu < nodes.count else { return 0 }
        return nodes[cpu]
    }

    /// `cpumask_of_node(node)`.
    @inline(__always)
    func nodeMask(_ node: Int) -> CPUMask {
        guard let nodes = config.cpuNodes else { return node == 0 ? allCPUs : CPUMask() }
        return CPUMask(nodes.indices.filter { nodes[$0] == node })
    }

    // MARK: CPUs

    mutating func setOnline(_ cpu: Int, _ up: Bool) throws(MSIError) {
        let fn = up ? "irq_matrix_online" : "irq_matrix_offline"
        guard cpu >= 0, cpu < config.cpuCount else { throw MSIError(.EINVAL, fn, "no CPU \(cpu)") }
        guard online.contains(cpu) != up else { throw MSIError(.EINVAL, fn, "CPU \(cpu) is already \(up ? "online" : "offline")") }
        if up {
            try matrix.online(cpu)
            online.insert(cpu)
        } else {
            guard online.count > 1 else { throw MSIError(.EBUSY, fn, "CPU \(cpu) is the last online CPU") }
            let legacy = cpu == 0 ? max(0, min(config.legacyIRQs, 16) - (config.legacyIRQs > 2 ? 1 : 0)) : 0
            let used = matrix.allocatedVectors(cpu: cpu).count - legacy
            guard used <= 0 else {
                throw MSIError(.EBUSY, fn, "CPU \(cpu) still has \(used) device vectors (migration is not modelled)")
            }
            try matrix.offline(cpu)
            online.remove(cpu)
        }
        let now = online
        table.state.withLock { $0.online = now }
    }

    // MARK: Linux interrupt numbers (irq_alloc_descs)

    /// The lowest run of `n` free numbers at or above `from` (bitmap_find_next_zero_area).
    /// Inlined, as every read-only helper called from a mutating one here: a call would pass
    /// the whole state by value, which the compiler does by copying it.
    @inline(__always)
    func findFreeRun(_ n: Int, from: Int) -> Int? {
        let end = config.maxIRQs
        var i = from
        while i + n <= end {
            let start = firstClear(irqBitmap, from: i, end: end)
            guard start + n <= end else { return nil }
            let blocker = firstSet(irqBitmap, from: start, end: start + n)
            if blocker == start + n { return start }
            i = blocker + 1
        }
        return nil
    }

    mutating func markIRQs(_ base: Int, _ n: Int, allocated: Bool) {
        for v in base..<(base + n) {
            if allocated { irqBitmap[v >> 6] |= 1 << UInt64(v & 63) } else { irqBitmap[v >> 6] &= ~(1 << UInt64(v & 63)) }
        }
        if allocated {
            if base == irqHint { irqHint = firstClear(irqBitmap, from: irqHint, end: config.maxIRQs) }
        } else {
            irqHint = min(irqHint, base)
        }
    }

    // MARK: allocation through the hierarchy (__irq_domain_alloc_irqs)

    /// Allocates `n` consecutive Linux interrupts for one descriptor and runs the parents'
    /// `.alloc`: the remapping domain (IRTE block, remappable message) over the vector domain
    /// (`assign_irq_vector_policy`: managed reservation, else a global reservation with the
    /// message pointing at 0xEF). On failure nothing stays allocated.
    mutating func allocBlock(count n: Int, affinity: [IRQAffinityDescriptor]?, owner: UInt32, domain: MSIDomainID,
                             msiIndex: Int, domainNameRef nameRef: Int, isPCIMultiMSI: Bool) throws(MSIError) -> Int {
        let fn = "__irq_domain_alloc_irqs"
        if let f = failAfter {
            if f <= 0 {
                failTimes -= 1
                if failTimes <= 0 { failAfter = nil }
                throw MSIError(.ENOSPC, fn, "parent domain allocation failed (injected)")
            }
            failAfter = f - 1
        }
        guard n >= 1 else { throw MSIError(.EINVAL, fn, "nvec_used is 0") }
        if remapping && n > 1 && !isPCIMultiMSI {
            throw MSIError(.EINVAL, "intel_irq_remapping_alloc", "only PCI multi-MSI allocates more than one interrupt at once")
        }
        guard let base = findFreeRun(n, from: max(irqHint, config.firstDynamicIRQ)) else {
            throw MSIError(.ENOMEM, "irq_alloc_descs", "no \(n) consecutive free Linux interrupt numbers below \(config.maxIRQs)")
        }
        growRecords(to: base + n)
        let all = allCPUs
        // The device's node, looked up once (most machines set none: no hashing then).
        let deviceNode = deviceNodes.isEmpty ? -1 : deviceNodes[owner] ?? -1
        for i in 0..<n {
            let a = affinity.map { $0[min(i, $0.count - 1)] }
            let managed = a?.isManaged ?? false
            // alloc_descs: an affinity descriptor puts the descriptor on its first CPU's node.
            let first = (a?.mask).flatMap { $0.isEmpty ? nil : $0.first }
            let node = first.map { cpuNode($0) } ?? deviceNode
            records[base + i] = IRQRecord(
                owner: owner, domain: domain, hwirq: msiIndex + i, msiIndex: msiIndex, domainNameRef: nameRef,
                affinity: (a?.mask).map { $0.isEmpty ? all : $0 } ?? all, node: node, managed: managed, managedShutdown: managed)
        }
        markIRQs(base, n, allocated: true)
        // x86_vector_alloc_irqs
        for i in 0..<n {
            do throws(MSIError) {
                try assignVectorPolicy(base + i)
            } catch {
                for j in 0..<i { vectorFree(base + j) }
                releaseRecords(base, n)
                throw error
            }
        }
        // intel_irq_remapping_alloc
        if remapping {
            guard let (index, order) = allocIRTE(n) else {
                warn("intel_irq_remapping_alloc", "Failed to allocate IRTE")
                for j in 0..<n { vectorFree(base + j) }
                releaseRecords(base, n)
                throw MSIError(.ENOMEM, "alloc_irte", "no free block of \(n) interrupt-remapping entries")
            }
            for i in 0..<n {
                update(base + i) { r in
                    r.irteBase = index
                    r.irteSub = i
                    r.irteMask = order
                    r.irMessage = X86MSIFormat.composeRemappable(handle: index, subhandle: i)
                }
            }
        }
        // The delivery table needs nothing: a freed number has no action and is not requested
        // there, and its old counts are cleared at its first request (``IRQRecord/fresh``).
        return base
    }

    /// The index of `name` in ``domainNames``, adding it the first time.
    mutating func internDomainName(_ name: String) -> Int {
        if let i = domainNames.lastIndex(of: name) { return i }
        domainNames.append(name)
        return domainNames.count - 1
    }

    mutating func releaseRecords(_ base: Int, _ n: Int) {
        for v in base..<(base + n) where v < recordCapacity { records[v].present = false }
        markIRQs(base, n, allocated: false)
    }

    /// `irq_domain_free_irqs()` for a block: remapping entries (`clear_entries` by the first
    /// interrupt), vectors and reservations (`x86_vector_free_irqs`), the numbers.
    mutating func freeBlock(_ base: Int, _ n: Int) {
        if remapping, let r = record(base), r.irteBase >= 0 {
            let size = 1 << r.irteMask
            table.state.withLock { t in for e in r.irteBase..<(r.irteBase + size) where e < t.irteCount { t.irte[e] = 0 } }
            for e in r.irteBase..<(r.irteBase + size) { irteBitmap[e >> 6] &= ~(1 << UInt64(e & 63)) }
        }
        var requested = false
        for v in base..<(base + n) {
            guard let r = rec(v) else { continue }
            requested = requested || r.pointee.requested
            vectorFree(v)
        }
        // An action still installed (freed without free_irq, which the callers WARN about)
        // goes with the numbers; otherwise the delivery table has nothing for them.
        if requested { table.state.withLock { t in for v in base..<(base + n) { t.uninstall(v) } } }
        releaseRecords(base, n)
    }

    /// `alloc_irte()`: a naturally aligned block of the next power of two ≥ `n`
    /// (bitmap_find_free_region). Returns (index, order).
    mutating func allocIRTE(_ n: Int) -> (Int, Int)? {
        var size = 1
        var order = 0
        while size < n { size <<= 1; order += 1 }
        var pos = 0
        while pos + size <= irteEntries {
            if size == 1 {
                let p = firstClear(irteBitmap, from: pos, end: irteEntries)
                guard p < irteEntries else { return nil }
                irteBitmap[p >> 6] |= 1 << UInt64(p & 63)
                return (p, 0)
            }
            if firstSet(irteBitmap, from: pos, end: pos + size) == pos + size {
                for e in pos..<(pos + size) { irteBitmap[e >> 6] |= 1 << UInt64(e & 63) }
                return (pos, order)
            }
            pos += size
        }
        return nil
    }

    // MARK: x86 vector domain
    //
    // Records are read and changed in place through `rec(_:)`: these run for every interrupt
    // allocated, requested and freed.

    /// `assign_irq_vector_policy()` for an MSI allocation (no explicit mask): managed →
    /// `reserve_managed_vector`, otherwise `reserve_irq_vector`.
    mutating func assignVectorPolicy(_ v: Int) throws(MSIError) {
        guard let r = rec(v) else { return }
        if r.pointee.managed {
            r.pointee.isManagedVector = true
            try matrix.reserveManaged(mask: r.pointee.affinity)
        } else {
            reserveIRQVectorLocked(v)
        }
    }

    /// `reserve_irq_vector_locked()`: a global reservation; the message points at the
    /// shutdown vector on the first online CPU.
    mutating func reserveIRQVectorLocked(_ v: Int) {
        matrix.reserve()
        let cpu = firstOnlineCPU
        update(v) { r in
            r.canReserve = true
            r.hasReserved = true
            r.irqdCanReserve = true
            r.cfgVector = X86Vectors.managedShutdown
            r.cfgCPU = cpu
        }
    }

    /// `vector_assign_managed_shutdown()`.
    mutating func assignManagedShutdown(_ v: Int) {
        let cpu = firstOnlineCPU
        update(v) { r in
            r.cfgVector = X86Vectors.managedShutdown
            r.cfgCPU = cpu
        }
    }

    /// `apic_update_vector()` + `apic_update_irq_cfg()`: the old vector (if any) is released at
    /// once (the kernel defers that cleanup; moves are not otherwise modelled). One delivery-
    /// table lock for both routes.
    mutating func updateVector(_ v: Int, vector: Int, cpu: Int) {
        guard let r = rec(v) else { return }
        let (oc, ov) = (r.pointee.cpu, r.pointee.vector)
        if ov != 0 { matrix.free(cpu: oc, vector: ov, managed: r.pointee.managed) }
        r.pointee.vector = vector
        r.pointee.cpu = cpu
        r.pointee.cfgVector = vector
        r.pointee.cfgCPU = cpu
        table.state.withLock { t in
            if ov != 0 { t.routes[oc << 8 | ov] = 0 }
            t.routes[cpu << 8 | vector] = UInt32(v)
        }
    }

    /// `assign_vector_locked(irqd, dest)`.
    mutating func assignVectorLocked(_ v: Int, _ dest: CPUMask) throws(MSIError) {
        guard let r = rec(v) else { return }
        if r.pointee.vector != 0 && online.contains(r.pointee.cpu) && dest.contains(r.pointee.cpu) { return }
        let (cpu, vector) = try matrix.alloc(mask: dest, reserved: r.pointee.hasReserved)
        updateVector(v, vector: vector, cpu: cpu)
    }

    /// `assign_irq_vector_any_locked()`: the descriptor's node within its affinity, the
    /// affinity's online CPUs, the node, then any online CPU.
    mutating func assignAny(_ v: Int) throws(MSIError) {
        guard let r = rec(v) else { return }
        let affinity = r.pointee.affinity
        let node = r.pointee.node >= 0 ? nodeMask(r.pointee.node) : nil
        // The kernel's tries in order, each skipped when empty; a try that finds no vector
        // falls through to the next.
        if let node {
            let m = node.intersection(affinity)
            if !m.isEmpty, (try? assignVectorLocked(v, m)) != nil { return }
        }
        let m = affinity.intersection(online)
        if !m.isEmpty, (try? assignVectorLocked(v, m)) != nil { return }
        if let node, !node.isEmpty, (try? assignVectorLocked(v, node)) != nil { return }
        try assignVectorLocked(v, online)
    }

    /// `irq_setup_affinity()` at startup: a managed interrupt keeps its mask, and so does one
    /// whose mask `irq_set_affinity()` set (IRQD_AFFINITY_SET) while it has an online CPU; any
    /// other gets the default affinity (every CPU); either is cut to the online CPUs and, where that leaves
    /// some, to the descriptor's node. The vector stays where activation put it (activation
    /// searched the same node first); the mask becomes what `/proc/irq/N/smp_affinity` shows.
    mutating func setupAffinity(_ v: Int) {
        guard let r = rec(v) else { return }
        let keep = (r.pointee.managed || r.pointee.affinitySet) && r.pointee.affinity.intersects(online)
        if r.pointee.affinitySet && !keep { r.pointee.affinitySet = false }
        let set = keep ? r.pointee.affinity : allCPUs
        var mask = set.intersection(online)
        if mask.isEmpty { mask = online }
        if r.pointee.node >= 0 {
            let node = nodeMask(r.pointee.node)
            if mask.intersects(node) { mask = mask.intersection(node) }
        }
        r.pointee.affinity = mask
    }

    /// `x86_vector_activate()`.
    mutating func vectorActivate(_ v: Int, reserve: Bool) throws(MSIError) {
        guard let r = rec(v) else { return }
        if !r.pointee.canReserve && !r.pointee.isManagedVector {
            do throws(MSIError) { try assignAny(v) } catch {}  // the kernel ignores this result
        } else if reserve || r.pointee.managedShutdown {
            assignManagedShutdown(v)
        } else if r.pointee.isManagedVector {
            // activate_managed
            let search = r.pointee.affinity.intersection(online)
            guard !search.isEmpty else {
                warn("activate_managed", "Managed startup for irq \(v), but no CPU")
                throw MSIError(.EINVAL, "activate_managed", "irq \(v): no online CPU in its affinity \(r.pointee.affinity)")
            }
            if r.pointee.vector != 0 && search.contains(r.pointee.cpu) { return }
            do throws(MSIError) {
                let (cpu, vector) = try matrix.allocManaged(mask: search)
                updateVector(v, vector: vector, cpu: cpu)
            } catch {
                warn("activate_managed", "Managed startup irq \(v), no vector available")
                throw error
            }
        } else if r.pointee.hasReserved {
            // activate_reserved
            try assignAny(v)
            r.pointee.hasReserved = false
            if !r.pointee.irqdCanReserve { r.pointee.canReserve = false }
            if !r.pointee.affinity.contains(r.pointee.cpu) {
                warn("activate_reserved", "irq \(v): Affinity broken due to vector space exhaustion.")
            }
        }
    }

    /// `clear_irq_vector()`.
    mutating func clearVector(_ v: Int) {
        guard let r = rec(v), r.pointee.vector != 0 else { return }
        let (cpu, vector) = (r.pointee.cpu, r.pointee.vector)
        table.state.withLock { $0.routes[cpu << 8 | vector] = 0 }
        matrix.free(cpu: cpu, vector: vector, managed: r.pointee.managed)
        r.pointee.vector = 0
    }

    /// `x86_vector_deactivate()`.
    mutating func vectorDeactivate(_ v: Int) {
        guard let r = rec(v) else { return }
        if !r.pointee.isManagedVector && !r.pointee.canReserve { return }
        if r.pointee.hasReserved { return }
        clearVector(v)
        if r.pointee.canReserve { reserveIRQVectorLocked(v) } else { assignManagedShutdown(v) }
    }

    /// `x86_vector_free_irqs()` for one interrupt: `clear_irq_vector()` then
    /// `vector_free_reserved_and_managed()`.
    mutating func vectorFree(_ v: Int) {
        clearVector(v)
        guard let r = rec(v) else { return }
        if r.pointee.hasReserved { matrix.removeReserved() }
        if r.pointee.isManagedVector { matrix.removeManaged(mask: r.pointee.affinity) }
        r.pointee.hasReserved = false
        r.pointee.isManagedVector = false
    }

    // MARK: affinity (apic_set_affinity, intel_ir_set_affinity)

    /// `apic_set_affinity()` for an activated, non-managed interrupt: `assign_vector_locked()`
    /// with `dest` ∩ online — nothing to do when the current CPU is online and in `dest`,
    /// otherwise a vector from the matrix on the least loaded CPU of `dest` and the old one
    /// released (the kernel releases it after the first interrupt on the new vector; the model
    /// at once). Under remapping, `intel_ir_set_affinity()` then rewrites the IRTE. Returns the
    /// configuration before the move.
    /// - Throws: EIO when not activated (the kernel WARNs), ENOSPC when `dest` has no free
    ///   vector (nothing changed).
    mutating func apicSetAffinity(_ v: Int, _ dest: CPUMask) throws(MSIError) -> (cpu: Int, vector: Int) {
        guard let r = rec(v), r.pointee.activated else {
            warn("apic_set_affinity", "irq \(v) is not activated")
            throw MSIError(.EIO, "apic_set_affinity", "irq \(v) is not activated")
        }
        let old = (r.pointee.cfgCPU, r.pointee.cfgVector)
        try assignVectorLocked(v, dest.intersection(online))
        if remapping { remappingActivate(v) }
        return old
    }

    /// `__irq_msi_compose_msg()` for an arbitrary (cpu, vector): the intermediate message of
    /// `msi_set_affinity()` (the new vector on the old CPU).
    func composeCompatibility(cpu: Int, vector: Int) throws(MSIError) -> MSIMessage {
        var dest = apics[min(max(cpu, 0), apics.count - 1)]
        if config.destinationMode == .logical { dest = 1 << UInt32(cpu) }
        return try X86MSIFormat.compose(vector: vector, destinationAPICID: dest, mode: config.destinationMode,
                                        extendedDestinationID: config.extendedDestinationID)
    }

    // MARK: activation (irq_domain_activate_irq below the MSI level)

    /// Activates the parents of `v` (vector, then remapping) and returns the message the MSI
    /// level must write (`irq_chip_compose_msi_msg`).
    mutating func activateParents(_ v: Int, reserve: Bool) throws(MSIError) -> MSIMessage {
        try vectorActivate(v, reserve: reserve)
        if remapping { remappingActivate(v) }
        update(v) { $0.activated = true }
        return try compose(v)
    }

    /// Deactivates the parents of `v`: the IRTE is cleared, then the vector domain releases or
    /// re-reserves its vector. The MSI level has already written the all-zero message.
    mutating func deactivateParents(_ v: Int) {
        guard let r = rec(v), r.pointee.activated else { return }
        if remapping && r.pointee.irteBase >= 0 {
            let e = r.pointee.irteBase + r.pointee.irteSub
            table.state.withLock { $0.irte[e] = 0 }
        }
        vectorDeactivate(v)
        r.pointee.activated = false
    }

    /// `intel_irq_remapping_activate()`: the IRTE takes the vector domain's `irq_cfg`.
    mutating func remappingActivate(_ v: Int) {
        guard let r = rec(v), r.pointee.irteBase >= 0 else { return }
        let e = r.pointee.irteBase + r.pointee.irteSub
        let raw = DeliveryTable.irtePresent | UInt64(r.pointee.cfgVector & 0xFF) | UInt64(r.pointee.cfgCPU & 0xFFFF) << 16
        table.state.withLock { $0.irte[e] = raw }
    }

    /// `irq_chip_compose_msi_msg()`: the remapping domain's fixed message, or the vector
    /// domain's compatibility-format message for the current `irq_cfg`.
    @inline(__always)
    func compose(_ v: Int) throws(MSIError) -> MSIMessage {
        guard let r = rec(v) else { throw MSIError(.EINVAL, "irq_chip_compose_msi_msg", "irq \(v) is not allocated") }
        if remapping { return r.pointee.irMessage }
        let cpu = r.pointee.cfgCPU
        var dest = apics[min(max(cpu, 0), apics.count - 1)]
        if config.destinationMode == .logical { dest = 1 << UInt32(cpu) }
        return try X86MSIFormat.compose(vector: r.pointee.cfgVector, destinationAPICID: dest, mode: config.destinationMode,
                                        extendedDestinationID: config.extendedDestinationID)
    }

    // MARK: snapshots

    func describe(_ virq: Int, _ r: IRQRecord, _ t: DeliveryTable.State, cpus: Int) -> IRQDescription {
        let counts = r.fresh ? Array(repeating: 0, count: cpus) : t.counts(of: virq)
        return IRQDescription(
            virq: virq, hwirq: r.hwirq, domainName: domainNames[r.domainNameRef], domain: r.domain, msiIndex: r.msiIndex,
            affinity: r.affinity, isManaged: r.managed, effectiveCPU: r.cfgCPU, effectiveVector: r.cfgVector,
            assignedVector: r.vector != 0 ? r.vector : nil, assignedCPU: r.vector != 0 ? r.cpu : nil,
            hasReservation: r.hasReserved, isActivated: r.activated, isStarted: r.started,
            isRequested: t.isRequested(virq), isMasked: r.masked, disableDepth: r.depth,
            isManagedShutdown: r.managedShutdown, irteIndex: r.irteBase >= 0 ? r.irteBase + r.irteSub : nil,
            perCPUCount: counts, node: r.node)
    }
}

// MARK: bitmap helpers over [UInt64]

func firstClear(_ bits: UnsafeMutablePointer<UInt64>, from start: Int, end: Int) -> Int {
    var i = start
    while i < end {
        let w = ~bits[i >> 6] & (~0 << UInt64(i & 63))
        if w != 0 {
            let b = (i & ~63) + w.trailingZeroBitCount
            return min(b, end)
        }
        i = (i & ~63) + 64
    }
    return end
}

func firstSet(_ bits: UnsafeMutablePointer<UInt64>, from start: Int, end: Int) -> Int {
    var i = start
    while i < end {
        let w = bits[i >> 6] & (~0 << UInt64(i & 63))
        if w != 0 {
            let b = (i & ~63) + w.trailingZeroBitCount
            return min(b, end)
        }
        i = (i & ~63) + 64
    }
    return end
}
