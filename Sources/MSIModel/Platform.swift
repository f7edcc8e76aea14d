// The machine under the per-device domains: CPUs and their APIC IDs, the Linux interrupt
// number space (irq_desc table), the x86 vector domain with its matrix
// (arch/x86/kernel/apic/vector.c), optionally an Intel interrupt-remapping domain
// (drivers/iommu/intel/irq_remapping.c), and the delivery tables.
//
// Locking: one Mutex for the allocation state (the kernel's sparse_irq_lock + vector_lock +
// irq_2_ir_lock rolled into one), a separate one for the delivery tables. A device's lock is
// always taken before the platform's; the platform never calls into a device or a chip.
public import MSIShimCore
import Synchronization  // inlinable code calls Mutex.withLock through PackageMutex

/// Interrupt remapping (Intel VT-d) settings.
public struct InterruptRemappingConfiguration: Hashable, Sendable {
    /// `INTR_REMAP_TABLE_ENTRIES`: 65536 on Linux.
    public var tableEntries: Int

    /// A remapping table of `tableEntries` IRTEs.
    public init(tableEntries: Int = 65536) {
        self.tableEntries = tableEntries
    }
}

/// What the modelled machine looks like.
public struct MSIPlatformConfiguration: Sendable {
    /// Possible (and present) CPUs, 1…256.
    public var cpuCount: Int
    /// CPUs online at start; nil means all.
    public var onlineCPUs: CPUMask?
    /// APIC ID of each CPU; nil means APIC ID = CPU number.
    public var apicIDs: [UInt32]?
    /// How messages name their target (the APIC driver's `dest_mode_logical`). Logical (flat)
    /// mode supports up to 8 CPUs.
    public var destinationMode: X86DestinationMode
    /// The hypervisor's extended destination ID (`virt_ext_dest_id`): APIC IDs up to 0x7FFF in
    /// compatibility-format messages.
    public var extendedDestinationID: Bool
    /// Interrupt remapping; nil means the x86 vector domain is the MSI parent directly.
    public var interruptRemapping: InterruptRemappingConfiguration?
    /// Allow IMS domains on the plain vector parent (this project's extension: Linux only let
    /// remapping parents host IMS).
    public var allowIMSWithoutRemapping: Bool
    /// `CONFIG_GENERIC_IRQ_RESERVATION_MODE` (x86): PCI MSI/MSI-X get a real vector only at
    /// `request_irq()`.
    public var reservationMode: Bool
    /// `FIRST_SYSTEM_VECTOR`: 0xEC, or 0xEB with posted MSI.
    public var firstSystemVector: Int
    /// System vectors inside the allocation range (the syscall vector 0x80 on x86_64).
    public var systemVectors: [Int]
    /// Legacy ISA interrupts whose vectors (0x30 + irq) are pre-assigned on CPU 0.
    public var legacyIRQs: Int
    /// The first Linux interrupt number dynamic allocations may use (`gsi_top`: 24 with one
    /// 24-pin IO-APIC).
    public var firstDynamicIRQ: Int
    /// One past the largest Linux interrupt number (`IRQ_BITMAP_BITS`).
    public var maxIRQs: Int
    /// False models `pci=nomsi` (`pci_msi_enable = false`).
    public var msiEnabled: Bool
    /// `MSI_MAX_DEVICE_IRQDOMAINS` of the modelled kernel, 1…8: how many per-device domains
    /// (and descriptor stores) every device has. 2 as in v6.2…v6.9 (MSI/MSI-X and IMS); 1
    /// models v6.10 and later, where IMS is gone; more gives a device extra domain ids (for
    /// example one IMS domain per consumer).
    public var maxDeviceDomains: Int
    /// The NUMA node of each CPU (`cpu_to_node`); nil means one node, 0, holding every CPU.
    public var cpuNodes: [Int]?

    /// A configuration; every parameter has the x86 default described on its property.
    public init(cpuCount: Int = 2, onlineCPUs: CPUMask? = nil, apicIDs: [UInt32]? = nil,
                destinationMode: X86DestinationMode = .physical, extendedDestinationID: Bool = false,
                interruptRemapping: InterruptRemappingConfiguration? = nil, allowIMSWithoutRemapping: Bool = true,
                reservationMode: Bool = true, firstSystemVector: Int = X86Vectors.localTimer,
                systemVectors: [Int] = [X86Vectors.syscall], legacyIRQs: Int = 16, firstDynamicIRQ: Int = 24,
                maxIRQs: Int = 73_728, msiEnabled: Bool = true, maxDeviceDomains: Int = MSIDomainID.maxDomains,
                cpuNodes: [Int]? = nil) {
        self.cpuCount = cpuCount
        self.onlineCPUs = onlineCPUs
        self.apicIDs = apicIDs
        self.destinationMode = destinationMode
        self.extendedDestinationID = extendedDestinationID
        self.interruptRemapping = interruptRemapping
        self.allowIMSWithoutRemapping = allowIMSWithoutRemapping
        self.reservationMode = reservationMode
        self.firstSystemVector = firstSystemVector
        self.systemVectors = systemVectors
        self.legacyIRQs = legacyIRQs
        self.firstDynamicIRQ = firstDynamicIRQ
        self.maxIRQs = maxIRQs
        self.msiEnabled = msiEnabled
        self.maxDeviceDomains = maxDeviceDomains
        self.cpuNodes = cpuNodes
    }

    /// The x86 vector domain as MSI parent (no remapping), `cpus` CPUs.
    public static func x86(cpus: Int = 2) -> MSIPlatformConfiguration { MSIPlatformConfiguration(cpuCount: cpus) }

    /// An Intel interrupt-remapping parent ("IR-" domains, multi-MSI allowed), `cpus` CPUs.
    public static func intelRemapping(cpus: Int = 2, tableEntries: Int = 65536) -> MSIPlatformConfiguration {
        MSIPlatformConfiguration(cpuCount: cpus, interruptRemapping: InterruptRemappingConfiguration(tableEntries: tableEntries))
    }
}

/// A snapshot of one Linux interrupt (`struct irq_desc` with its irq_data chain).
public struct IRQDescription: Hashable, Sendable, CustomStringConvertible {
    /// The Linux interrupt number.
    public var virq: Int
    /// The MSI domain's hardware irq: the descriptor index (+ offset for multi-MSI).
    public var hwirq: Int
    /// The device domain, e.g. "PCI-MSIX-0000:00:03.0" (also the chip name).
    public var domainName: String
    /// The device domain id it was allocated from.
    public var domain: MSIDomainID
    /// The descriptor index this interrupt belongs to.
    public var msiIndex: Int
    /// The requested affinity (irq_data affinity mask).
    public var affinity: CPUMask
    /// Kernel-managed affinity.
    public var isManaged: Bool
    /// Where the message currently points (the vector domain's `irq_cfg`): the real vector, or
    /// 0xEF on the first online CPU while reserved or shut down.
    public var effectiveCPU: Int
    /// The vector of `irq_cfg` (0xEF while reserved or shut down).
    public var effectiveVector: Int
    /// The vector actually taken from the matrix (`apicd->vector`), nil while none.
    public var assignedVector: Int?
    /// The CPU of ``assignedVector``, nil while none.
    public var assignedCPU: Int?
    /// Holds a global reservation instead of a vector.
    public var hasReservation: Bool
    /// IRQD_ACTIVATED: the message was composed and written for real.
    public var isActivated: Bool
    /// Started (requested and enabled).
    public var isStarted: Bool
    /// A handler is installed (`request_irq()` succeeded, `free_irq()` not yet called).
    public var isRequested: Bool
    /// IRQD_IRQ_MASKED.
    public var isMasked: Bool
    /// `irq_desc.depth`: 1 until `request_irq()` starts the interrupt, then 0 plus one per
    /// unbalanced ``MSIDevice/maskIRQ(_:)`` (`disable_irq`).
    public var disableDepth: Int
    /// IRQD_MANAGED_SHUTDOWN: managed and not started for lack of an online CPU.
    public var isManagedShutdown: Bool
    /// The IRTE index (handle + subhandle) when interrupt remapping is on.
    public var irteIndex: Int?
    /// Interrupts handled, per CPU (kstat_irqs).
    public var perCPUCount: [UInt64]
    /// The NUMA node of the interrupt descriptor (`/proc/irq/N/node`): the node of the first CPU
    /// of its affinity descriptor's mask, else the device's node; -1 (`NUMA_NO_NODE`) for none.
    public var node: Int = -1
    /// Interrupts handled on all CPUs.
    public var count: UInt64 { perCPUCount.reduce(0, +) }

    /// A human-readable form.
    public var description: String {
        var s = "irq \(virq): \(domainName) \(hwirq)-edge, "
        s += assignedVector.map { "vector 0x\(hexString($0, 2)) on CPU \(assignedCPU ?? 0)" }
            ?? "cfg 0x\(hexString(effectiveVector, 2)) on CPU \(effectiveCPU)"
        if isManaged { s += ", managed \(affinity)" }
        if isRequested { s += ", requested" }
        if isMasked { s += ", masked" }
        s += ", count \(count)"
        return s
    }
}

/// The modelled machine: the MSI parent domain (x86 vector, or Intel remapping over it), the
/// vector matrix, Linux interrupt numbers, and message delivery.
///
/// Create one per simulated machine and attach ``MSIDevice``s to it. Thread-safe.
public final class MSIPlatform: Sendable, MessageSink {
    /// The configuration the machine was built from.
    public let configuration: MSIPlatformConfiguration
    let state: PackageMutex<PlatformState>
    let table: DeliveryTable
    /// APIC ID → CPU (-1: none), indexed by APIC ID.
    let apicToCPU: [Int16]
    /// Number of CPUs (``configuration``'s, kept apart for the delivery path).
    public let cpuCount: Int
    let cpuAPIC: [UInt32]
    let irteCount: Int
    let remapping: Bool
    let extendedDestinationID: Bool
    /// 0x7F00 with the extended destination ID, else 0: where address bits 11:5 land in it.
    let extendedDestinationBits: UInt32
    let logicalMode: Bool

    /// Builds the machine: matrix set up as x86 boots it, CPUs brought online.
    /// - Throws: EINVAL for an impossible configuration (no CPUs, more than 256, APIC IDs that
    ///   compatibility-format messages cannot reach, logical mode with more than 8 CPUs…).
    public init(_ configuration: MSIPlatformConfiguration = MSIPlatformConfiguration()) throws(MSIError) {
        let fn = "MSIPlatform.init"
        let n = configuration.cpuCount
        guard n >= 1, n <= CPUMask.capacity else { throw MSIError(.EINVAL, fn, "cpuCount must be 1…\(CPUMask.capacity)") }
        let apics = configuration.apicIDs ?? (0..<n).map { UInt32($0) }
        guard apics.count == n else { throw MSIError(.EINVAL, fn, "apicIDs must list one ID per CPU") }
        if let nodes = configuration.cpuNodes {
            guard nodes.count == n, nodes.allSatisfy({ $0 >= 0 && $0 < n }) else {
                throw MSIError(.EINVAL, fn, "cpuNodes must give each CPU a node 0…\(n - 1)")
            }
        }
        guard Set(apics).count == n else { throw MSIError(.EINVAL, fn, "APIC IDs must be unique") }
        let remapping = configuration.interruptRemapping != nil
        let maxAPIC = apics.max() ?? 0
        if !remapping {
            let limit: UInt32 = configuration.extendedDestinationID ? 0x7FFF : 0xFF
            guard maxAPIC <= limit else {
                throw MSIError(.EINVAL, fn, "APIC ID 0x\(hexString(maxAPIC, 1)) is unreachable without interrupt remapping")
            }
        }
        guard maxAPIC < 0x10000 else { throw MSIError(.EINVAL, fn, "APIC IDs above 0xffff are not modelled") }
        if configuration.destinationMode == .logical {
            guard n <= 8, !remapping else { throw MSIError(.EINVAL, fn, "logical (flat) mode supports up to 8 CPUs without remapping") }
        }
        guard configuration.firstSystemVector > X86Vectors.firstExternal, configuration.firstSystemVector <= 0xEC else {
            throw MSIError(.EINVAL, fn, "firstSystemVector must be in 0x21…0xec")
        }
        guard configuration.firstDynamicIRQ >= 1, configuration.maxIRQs > configuration.firstDynamicIRQ,
              configuration.maxIRQs <= 1 << 20 else {
            throw MSIError(.EINVAL, fn, "need 1 ≤ firstDynamicIRQ < maxIRQs ≤ 2^20")
        }
        guard configuration.maxDeviceDomains >= 1, configuration.maxDeviceDomains <= 8 else {
            throw MSIError(.EINVAL, fn, "maxDeviceDomains must be 1…8")
        }
        let irteEntries = configuration.interruptRemapping?.tableEntries ?? 0
        guard !remapping || (irteEntries >= 1 && irteEntries <= 65536) else {
            throw MSIError(.EINVAL, fn, "the remapping table has 1…65536 entries")
        }
        var online = configuration.onlineCPUs?.intersection(.first(n)) ?? .first(n)
        online.insert(0)  // the boot CPU
        self.configuration = configuration
        self.remapping = remapping
        self.extendedDestinationID = configuration.extendedDestinationID
        extendedDestinationBits = configuration.extendedDestinationID ? 0x7F00 : 0
        self.logicalMode = configuration.destinationMode == .logical
        self.irteCount = irteEntries
        cpuAPIC = apics
        cpuCount = n
        var map = Array(repeating: Int16(-1), count: Int(maxAPIC) + 1)
        for (cpu, id) in apics.enumerated() { map[Int(id)] = Int16(cpu) }
        apicToCPU = map
        let matrix = VectorMatrix.x86(cpus: n, online: online, firstSystemVector: configuration.firstSystemVector,
                                      systemVectors: configuration.systemVectors, legacyIRQs: configuration.legacyIRQs)
        let table = DeliveryTable(cpus: n, irteEntries: irteEntries)
        table.state.withLock { s in
            s.online = matrix.onlineCPUs
            for irq in 0..<min(configuration.legacyIRQs, 16) where irq != X86Vectors.picCascadeIRQ {
                s.routes[X86Vectors.isaBase + irq] = UInt32(irq)
            }
        }
        self.table = table
        state = PackageMutex(PlatformState(
            config: configuration, matrix: matrix, online: matrix.onlineCPUs, table: table, apics: apics,
            irteEntries: irteEntries))
    }

    // MARK: parent domain properties

    /// The MSI parent's name prefix for device domains: "IR-" with remapping, "" otherwise.
    public var parentPrefix: String { remapping ? "IR-" : "" }

    /// `msi_parent_ops::supported_flags`: the generic flags, PCI_MSIX and PCI_MSIX_ALLOC_DYN on
    /// the vector domain (`X86_VECTOR_MSI_FLAGS_SUPPORTED`); remapping adds MULTI_PCI_MSI.
    public var supportedFlags: MSIDomainFlags {
        var f = MSIDomainFlags.genericMask.union([.pciMSIX, .pciMSIXAllocDynamic])
        if remapping { f.insert(.multiPCIMSI) }
        return f
    }

    /// `X86_VECTOR_MSI_FLAGS_REQUIRED`: USE_DEF_DOM_OPS | USE_DEF_CHIP_OPS.
    public var requiredFlags: MSIDomainFlags { [.useDefaultDomainOps, .useDefaultChipOps] }

    /// Whether interrupt remapping is on.
    public var hasInterruptRemapping: Bool { remapping }


    /// The NUMA node of `cpu` (`cpu_to_node`).
    public func node(ofCPU cpu: Int) -> Int {
        guard let nodes = configuration.cpuNodes, cpu >= 0, cpu < nodes.count else { return 0 }
        return nodes[cpu]
    }

    /// The CPUs of each NUMA node, indexed by node id (`cpumask_of_node`).
    public var nodeCPUs: [CPUMask] {
        guard let nodes = configuration.cpuNodes else { return [.first(configuration.cpuCount)] }
        var masks = Array(repeating: CPUMask(), count: (nodes.max() ?? 0) + 1)
        for (cpu, n) in nodes.enumerated() { masks[n].insert(cpu) }
        return masks
    }

    /// `irq_matrix_assign()` of `vector` on `cpu` for a user the model does not know: a real
    /// kernel's own interrupts, copied in so the model picks only vectors that kernel left free.
    /// Out-of-range or already-set vectors are recorded as warnings, as the kernel WARNs.
    public func assignVector(_ vector: Int, onCPU cpu: Int) {
        state.withLock { $0.matrix.assign(vector, on: cpu) }
    }

    /// The APIC ID of `cpu`.
    public func apicID(ofCPU cpu: Int) -> UInt32? { cpu >= 0 && cpu < cpuAPIC.count ? cpuAPIC[cpu] : nil }

    /// The online CPUs (`cpu_online_mask`).
    public var onlineCPUs: CPUMask { state.withLock { $0.online } }

    /// A copy of the vector matrix.
    public var vectorMatrix: VectorMatrix { state.withLock { $0.matrix } }

    /// Warnings the platform recorded (WARN_ON and pr_warn of the vector and remapping code).
    public var warnings: [MSIWarning] {
        state.withLock { s in s.warnings.entries + s.matrix.warnings.map { MSIWarning("kernel/irq/matrix.c", $0) } }
    }

    /// Forgets recorded warnings.
    public func clearWarnings() { state.withLock { $0.warnings.clear() } }

    /// Fault injection for the "parent fails at index N" cases: after `successes` more
    /// successful parent allocations, the next `times` ones fail (as if the parent domain ran
    /// out), then allocations work again. `nil` turns injection off.
    public func failIRQAllocations(after successes: Int?, times: Int = 1) {
        state.withLock { s in
            s.failAfter = successes
            s.failTimes = times
        }
    }

    /// Brings a CPU online or takes it offline (`irq_matrix_online/offline`).
    /// - Throws: EINVAL for a bad CPU or no change; EBUSY when taking offline a CPU that still
    ///   has device vectors (interrupt migration is not modelled) or the last online CPU.
    public func setCPUOnline(_ cpu: Int, _ online: Bool) throws(MSIError) {
        try state.withLock { s throws(MSIError) in try s.setOnline(cpu, online) }
    }

    /// Linux interrupts currently allocated, ascending.
    public var allocatedIRQs: [Int] {
        state.withLock { s in s.allocatedNumbers }
    }

    /// A snapshot of Linux interrupt `virq`, nil if not allocated.
    public func irq(_ virq: Int) -> IRQDescription? {
        state.withLock { s in
            guard let r = s.record(virq) else { return nil }
            return table.state.withLock { t in s.describe(virq, r, t, cpus: configuration.cpuCount) }
        }
    }

    /// The interrupt-remapping table entry `index`, nil without remapping or out of range.
    public func irte(_ index: Int) -> IRTEntry? {
        guard remapping, index >= 0, index < irteCount else { return nil }
        let raw = table.state.withLock { $0.irte[index] }
        let cpu = Int((raw >> 16) & 0xFFFF)
        return IRTEntry(present: raw & DeliveryTable.irtePresent != 0, vector: Int(raw & 0xFF), cpu: cpu,
                        destinationAPICID: raw & DeliveryTable.irtePresent != 0 ? cpuAPIC[min(cpu, cpuAPIC.count - 1)] : 0)
    }

    /// Interrupts handled by `virq` on each CPU (zeros for a number not allocated, or not
    /// requested since its allocation).
    public func interruptCounts(virq: Int) -> [UInt64] {
        state.withLock { s in s.counts(virq) }
    }

    // MARK: delivery

    /// Delivers a message a device wrote: decodes it (compatibility format, or remappable via
    /// the IRTE table), finds CPU and vector, maps them to the Linux interrupt, counts it and
    /// calls its handler (outside every lock). Never allocates; safe from any thread.
    public func deliver(_ message: MSIMessage) -> DeliveryResult {
        let r = deliverCore(lo: message.addressLo, hi: message.addressHi, data: message.data)
        guard r.code > 0 else { return .dropped(dropReason(r, message)) }
        return .delivered(virq: r.code, cpu: r.cpu, vector: r.vector)
    }

    /// What ``deliverCore(lo:hi:data:)`` found: `code` is the Linux interrupt when delivered,
    /// else a drop code (≤ 0) that ``dropReason(_:_:)`` turns into words.
    @usableFromInline
    struct CoreResult {
        var code: Int
        var cpu: Int
        var vector: Int
        var irte: Int
    }

    /// The delivery itself, in plain values: decode outside the lock, then under it the IRTE
    /// (remapped), online check, vector → irq, requested check, count and the action with its
    /// in-flight count taken; the handler runs after the lock is dropped.
    @inline(__always)
    func deliverCore(lo: UInt32, hi: UInt32, data: UInt32) -> CoreResult {
        guard hi == 0, lo & 0xFFF0_0000 == X86Vectors.msiBaseAddressLow else { return CoreResult(code: Self.dropAddress, cpu: 0, vector: 0, irte: -1) }
        var cpu = 0
        var vector = 0
        var irte = -1
        if lo & (1 << 4) != 0 {
            guard remapping else { return CoreResult(code: Self.dropRemappingOff, cpu: 0, vector: 0, irte: -1) }
            let handle = Int((lo &>> 5) & 0x7FFF) | Int((lo &>> 2) & 1) &<< 15
            irte = lo & (1 << 3) != 0 ? handle &+ Int(data & 0xFFFF) : handle
            guard irte < irteCount else { return CoreResult(code: Self.dropIRTERange, cpu: 0, vector: 0, irte: irte) }
        } else {
            guard !remapping else { return CoreResult(code: Self.dropCompatibility, cpu: 0, vector: 0, irte: -1) }
            guard (data &>> 8) & 7 <= 1 else { return CoreResult(code: Self.dropMode, cpu: 0, vector: 0, irte: -1) }
            vector = Int(data & 0xFF)
            var dest = (lo &>> 12) & 0xFF
            if lo & (1 << 2) != 0 {
                guard logicalMode, dest != 0, dest.trailingZeroBitCount < cpuCount else {
                    return CoreResult(code: Self.dropDestination, cpu: 0, vector: 0, irte: -1)
                }
                cpu = dest.trailingZeroBitCount
            } else {
                dest |= (lo &<< 3) & extendedDestinationBits  // bits 11:5 → 14:8, with virt_ext_dest_id
                guard Int(dest) < apicToCPU.count, apicToCPU[Int(dest)] >= 0 else {
                    return CoreResult(code: Self.dropDestination, cpu: 0, vector: 0, irte: -1)
                }
                cpu = Int(apicToCPU[Int(dest)])
            }
        }
        let cpus = cpuCount
        let (code, action): (Int, Unmanaged<IRQAction>?) = table.state.withLock { t in
            if irte >= 0 {
                let e = t.irte[irte]
                guard e & DeliveryTable.irtePresent != 0 else { return (Self.dropIRTE, nil) }
                vector = Int(e & 0xFF)
                cpu = Int((e &>> 16) & 0xFFFF)
            }
            guard cpu < cpus, t.isOnline[cpu] else { return (Self.dropOffline, nil) }
            guard vector >= X86Vectors.firstExternal else { return (Self.dropVector, nil) }
            let virq = Int(t.routes[cpu &<< 8 | vector])
            guard virq != 0 else { return (Self.dropNoIRQ, nil) }
            guard virq < t.capacity, t.requested[virq] else { return (-virq, nil) }
            t.counts[virq &* cpus &+ cpu] &+= 1
            let a = t.actions[virq]
            _ = a?._withUnsafeGuaranteedRef { $0.inFlight.wrappingAdd(1, ordering: .relaxed) }
            return (virq, a)
        }
        if let action {
            action._withUnsafeGuaranteedRef { a in
                a.handler(code)
                a.inFlight.wrappingSubtract(1, ordering: .releasing)
            }
        }
        return CoreResult(code: code, cpu: cpu, vector: vector, irte: irte)
    }

    // Drop codes of ``deliverCore(lo:hi:data:)`` (a negative virq means "not requested").
    private static var dropAddress: Int { Int.min }
    private static var dropRemappingOff: Int { Int.min + 1 }
    private static var dropIRTERange: Int { Int.min + 2 }
    private static var dropCompatibility: Int { Int.min + 3 }
    private static var dropMode: Int { Int.min + 4 }
    private static var dropDestination: Int { Int.min + 5 }
    private static var dropIRTE: Int { Int.min + 6 }
    private static var dropOffline: Int { Int.min + 7 }
    private static var dropVector: Int { Int.min + 8 }
    private static var dropNoIRQ: Int { Int.min + 9 }

    /// Why ``deliverCore(lo:hi:data:)`` dropped `message`.
    @inline(never)
    func dropReason(_ r: CoreResult, _ message: MSIMessage) -> DeliveryDropReason {
        let lo = message.addressLo
        switch r.code {
        case Self.dropAddress: return .badAddress(message.address)
        case Self.dropRemappingOff: return .remappingFault(.remappingDisabled)
        case Self.dropIRTERange: return .remappingFault(.indexOutOfRange(r.irte))
        case Self.dropCompatibility: return .remappingFault(.compatibilityFormatBlocked)
        case Self.dropMode: return .unsupportedDeliveryMode(Int((message.data >> 8) & 7))
        case Self.dropDestination:
            var dest = (lo >> 12) & 0xFF
            if lo & (1 << 2) == 0 && extendedDestinationID { dest |= ((lo >> 5) & 0x7F) << 8 }
            return .noSuchDestination(dest)
        case Self.dropIRTE: return .remappingFault(.entryNotPresent(r.irte))
        case Self.dropOffline: return .cpuOffline(r.cpu)
        case Self.dropVector: return .invalidVector(r.vector)
        case Self.dropNoIRQ:
            if r.vector == X86Vectors.managedShutdown { return .shutdownVector(cpu: r.cpu) }
            if r.vector >= configuration.firstSystemVector || r.vector == X86Vectors.syscall {
                return .systemVector(cpu: r.cpu, vector: r.vector)
            }
            return .noIRQ(cpu: r.cpu, vector: r.vector)
        default: return .notRequested(virq: -r.code, cpu: r.cpu, vector: r.vector)
        }
    }

    /// `MessageSink` conformance: the mock device hands its message writes here.
    public func deliver(_ message: EmittedMessage) -> DeliveryOutcome {
        let r = deliverCore(lo: UInt32(truncatingIfNeeded: message.address), hi: UInt32(truncatingIfNeeded: message.address >> 32),
                            data: message.data)
        guard r.code > 0 else { return .dropped(dropReason(r, MSIMessage(address: message.address, data: message.data))) }
        return .delivered(virq: r.code, cpu: r.cpu, vector: r.vector)
    }
}
