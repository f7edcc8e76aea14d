// What `msictl probe` reports about one PCI function, and the pure decoding that builds it
// from config bytes (any ConfigSpaceAccess) plus what libpci and the kernel add.
public import MSIShimCore

/// One base address register as `msictl probe` and lspci show it ("Region N"): address, size
/// and lspci's annotations. MSIShimCore's `PCIBAR` is the other view of a BAR, decoded from
/// sysfs `resource` or VFIO region info for mapping it.
public struct ProbedBAR: Hashable, Sendable {
    /// BAR register index (0…5); a 64-bit BAR is reported at its lower register.
    public var index: Int
    /// Address without the flag bits; 0 when unassigned.
    public var base: UInt64
    /// Region size; nil when unknown (dumps carry no sizes).
    public var size: UInt64?
    /// A 64-bit memory BAR (it also takes the next register).
    public var is64Bit: Bool
    /// A prefetchable memory BAR.
    public var prefetchable: Bool
    /// An I/O-space BAR (not mappable as memory).
    public var isIO: Bool
    /// Reported by the OS but not by the device's register (lspci's "[virtual]").
    public var isVirtual: Bool
    /// Decoding of this space is off in the command register (lspci's "[disabled]").
    public var isDisabled: Bool
    /// A 64-bit BAR in the last register: its upper half is missing.
    public var isInvalid64BitSlot: Bool

    /// Builds the BAR list the way lspci's show_bases does: from libpci's base addresses
    /// and sizes and the BAR registers' flag bits.
    /// - Parameters:
    ///   - registers: the raw BAR registers from config space (count = BARs of the header type).
    ///   - bases: libpci's `base_addr[]` (address | flags, 64-bit value at the lower slot).
    ///   - sizes: libpci's `size[]`, nil when unknown.
    ///   - command: the command register.
    public static func decode(registers: [UInt32], bases: [UInt64], sizes: [UInt64]?, command: UInt16) -> [ProbedBAR] {
        var bars: [ProbedBAR] = []
        let count = registers.count
        var i = 0
        while i < count {
            defer { i += 1 }
            let pos = i < bases.count ? bases[i] : 0
            let size = sizes.flatMap { i < $0.count ? $0[i] : nil }
            var flags = registers[i] == 0xFFFF_FFFF ? 0 : registers[i]
            if pos == 0 && flags == 0 && (size ?? 0) == 0 { continue }
            var isVirtual = false
            if pos != 0 && flags == 0 {
                isVirtual = true
                flags = UInt32(truncatingIfNeeded: pos)
            }
            let index = i
            if flags & 1 != 0 {
                bars.append(ProbedBAR(
                    index: index, base: pos & ~0x3, size: size, is64Bit: false, prefetchable: false, isIO: true,
                    isVirtual: isVirtual, isDisabled: !isVirtual && command & PCIReg.Command.io == 0,
                    isInvalid64BitSlot: false))
                continue
            }
            let type = flags & 0x6
            var invalidSlot = false
            if type == 0x4 {
                if i >= count - 1 { invalidSlot = true } else { i += 1 }
            }
            bars.append(ProbedBAR(
                index: index, base: invalidSlot ? 0 : pos & ~0xF, size: size, is64Bit: type == 0x4,
                prefetchable: flags & 0x8 != 0, isIO: false, isVirtual: isVirtual,
                isDisabled: !isVirtual && command & PCIReg.Command.memory == 0, isInvalid64BitSlot: invalidSlot))
        }
        return bars
    }

    /// Builds the BAR list from the kernel's resources, as lspci does on a live system: the
    /// type comes from the resource flags (`PCI_IORESOURCE_*`), so the BAR registers are
    /// read (through `register`) only for assigned regions, to tell a virtual one (assigned
    /// by the OS, zero in the device) from the rest. On a VM every register read is a trap.
    public static func decode(
        resources bases: [UInt64], sizes: [UInt64]?, flags: [UInt64], count: Int, command: UInt16,
        register: (Int) -> UInt32
    ) -> [ProbedBAR] {
        var bars: [ProbedBAR] = []
        for i in 0..<min(count, bases.count, flags.count) {
            let pos = bases[i]
            let size = sizes.flatMap { i < $0.count ? $0[i] : nil }
            let kind = flags[i] & 0x1F00
            let isIO = flags[i] & 0x100 != 0
            let isMemory = !isIO && flags[i] & 0x200 != 0
            guard pos != 0 || isIO || isMemory || (size ?? 0) != 0 else { continue }
            let is64Bit = isMemory && flags[i] & 0x10_0000 != 0
            var isVirtual = false
            var brokenSlot = false
            if pos != 0 {
                let lower = register(i)
                // Same space in the register as in the resource: compare what the device holds.
                if (lower & 1 != 0) == isIO {
                    var upper: UInt32 = 0
                    if kind == 0x200 && lower & 0x6 == 0x4 {
                        if i >= count - 1 { brokenSlot = true } else { upper = register(i + 1) }
                    }
                    let hardware = isIO ? lower & ~0x3 : lower & ~0xF
                    isVirtual = hardware == 0 && upper == 0
                }
            }
            bars.append(ProbedBAR(
                index: i, base: brokenSlot ? 0 : pos & (isIO ? ~0x3 : ~0xF), size: size, is64Bit: is64Bit,
                prefetchable: isMemory && flags[i] & 0x2000 != 0, isIO: isIO, isVirtual: isVirtual,
                isDisabled: !isVirtual && command & (isIO ? PCIReg.Command.io : PCIReg.Command.memory) == 0,
                isInvalid64BitSlot: brokenSlot))
        }
        return bars
    }

    /// libpci's generic `base_addr[]` from BAR registers (what its dump method reports):
    /// registers of 0 or all-ones are skipped, a 64-bit BAR's value sits at its lower slot.
    public static func genericBaseAddresses(registers: [UInt32]) -> [UInt64] {
        var bases = [UInt64](repeating: 0, count: 6)
        var i = 0
        while i < registers.count {
            defer { i += 1 }
            let x = registers[i]
            if x == 0 || x == 0xFFFF_FFFF { continue }
            if x & 1 != 0 || x & 0x6 != 0x4 {
                bases[i] = UInt64(x)
            } else if i < registers.count - 1 {
                i += 1
                bases[i - 1] = UInt64(x) | UInt64(registers[i]) << 32
            }
        }
        return bases
    }

    /// Number of BAR registers of a header type (0: 6, 1: 2, 2: 1; unknown: 0).
    public static func count(headerType: UInt8) -> Int {
        switch headerType & 0x7F {
        case 0: 6
        case 1: 2
        case 2: 1
        default: 0
        }
    }
}

/// An MSI or MSI-X interrupt the kernel allocated for a device, with its counts.
public struct DeviceIRQ: Hashable, Sendable {
    /// Linux IRQ number (the `msi_irqs/<irq>` file name).
    public var irq: Int
    /// MSI or MSI-X (the content of the `msi_irqs/<irq>` file).
    public var kind: MSIKind
    /// MSI-X table entry or MSI vector, from /proc/interrupts; nil when the IRQ has no row
    /// there (allocated but never requested).
    public var index: Int?
    /// Per-CPU counts in /proc/interrupts' CPU order; nil when the IRQ has no row.
    public var counts: [UInt64]?
    /// The names the requesting driver gave (e.g. "virtio2-input.0").
    public var actions: String?
    /// Where the kernel placed it (`/proc/irq/<irq>/`); fields are nil where unreadable.
    public var placement = IRQPlacement()
}

/// Something that kept a device from being decoded fully.
public enum DeviceProblem: Hashable, Sendable, CustomStringConvertible {
    /// Config reads return all-ones: the device was removed, is in reset or powered off.
    case gone
    /// Fewer than the 64 bytes of the standard header are readable (`readable` bytes).
    case headerUnreadable(readable: Int)
    /// Only the first 64 bytes are readable: unprivileged sysfs readers see no capabilities.
    case capabilitiesNeedRoot(readable: Int)
    /// The dump holds only the header (an `lspci -x` dump): no capabilities to decode.
    case dumpTruncated(readable: Int)
    /// A capability walk stopped early (looped, broken, or beyond the readable bytes).
    case chain(extended: Bool, CapabilityChainStatus)
    /// A capability's registers run past the readable bytes.
    case capabilityTruncated(name: String, offset: Int)
    /// The header type is not 0, 1 or 2.
    case unknownHeaderType(UInt8)

    /// Whether the device could not be decoded at all (msictl then exits with status 2).
    public var isError: Bool {
        switch self {
        case .gone, .headerUnreadable: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .gone:
            "device not responding (config space reads all-ones): removed, in reset or powered off"
        case .headerUnreadable(let n):
            "cannot read the standard configuration header (only \(n) bytes readable)"
        case .capabilitiesNeedRoot(let n):
            "capabilities need root: only the first \(n) bytes of config space are readable"
        case .dumpTruncated(let n):
            "the dump holds only \(n) bytes of config space (lspci -x); capabilities need an lspci -xxx dump"
        case let .chain(extended, status):
            "\(extended ? "extended" : "standard") capability list: \(status.lspciWord ?? "complete")"
                + (status.offset.map { " at [\(hex($0, width: extended ? 3 : 2))]" } ?? "")
        case let .capabilityTruncated(name, offset):
            "\(name) capability at [\(hex(offset, width: 2))] runs past the readable config space"
        case .unknownHeaderType(let t):
            "unknown header type \(hex(t, width: 2))"
        }
    }
}

/// Everything `msictl probe` reports about one PCI function.
public struct PCIDeviceInfo: Hashable, Sendable {
    /// The function's address.
    public var address: PCIAddress
    /// Vendor ID.
    public var vendorID: UInt16
    /// Device ID.
    public var deviceID: UInt16
    /// Base class << 8 | subclass.
    public var classCode: UInt16
    /// Programming interface byte of the class code.
    public var programmingInterface: UInt8
    /// Revision ID.
    public var revision: UInt8
    /// Low 7 bits of the header type register.
    public var headerType: UInt8
    /// The vendor's name from libpci's database; nil when it has none.
    public var vendorName: String?
    /// The device's name from libpci's database; nil when it has none.
    public var deviceName: String?
    /// The class's name from libpci's database; nil when it has none.
    public var className: String?
    /// Config bytes readable (4096, 256, 64 for a non-root reader, or what a dump holds).
    public var configSize: Int
    /// Implemented BARs, in register order.
    public var bars: [ProbedBAR] = []
    /// Standard then extended capabilities, in list order.
    public var capabilities: [PCICapability] = []
    /// How the walk of the standard capability list ended.
    public var standardChain: CapabilityChainStatus = .complete
    /// How the walk of the extended capability list ended.
    public var extendedChain: CapabilityChainStatus = .complete
    /// The MSI capability, decoded; nil when absent.
    public var msi: MSICapability?
    /// The MSI-X capability, decoded; nil when absent.
    public var msix: MSIXCapability?
    /// The PCI Express capability; nil for conventional PCI.
    public var express: PCIExpressCapability?
    /// Bound kernel driver (live only; nil when unbound or unknown).
    public var driver: String?
    /// IOMMU group number (live only).
    public var iommuGroup: Int?
    /// The kernel's MSI/MSI-X IRQs; nil when not known (dumps), empty when none.
    public var irqs: [DeviceIRQ]?
    /// What could not be read or made no sense, in the order found.
    public var problems: [DeviceProblem] = []
    /// Line of the device in its dump file (dumps only).
    public var dumpLine: Int?

    /// A record with the identity fields; the rest is filled by decoding and the prober.
    public init(
        address: PCIAddress, vendorID: UInt16, deviceID: UInt16, classCode: UInt16, programmingInterface: UInt8,
        revision: UInt8, headerType: UInt8, configSize: Int
    ) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.programmingInterface = programmingInterface
        self.revision = revision
        self.headerType = headerType
        self.configSize = configSize
    }

    /// MSI-X or MSI when exactly that one is enabled in config space.
    public var enabledMSIKind: MSIKind? {
        switch (msix?.enabled ?? false, msi?.enabled ?? false) {
        case (true, false): .msix
        case (false, true): .msi
        default: nil
        }
    }

    /// PCIe device/port type, nil without a PCI Express capability (or a reserved type).
    public var pcieType: PCIExpressType? { express?.type }

    /// Decodes the capability list, MSI, MSI-X and PCI Express capabilities from `config`
    /// into this record; problems (looped/broken chains, truncation) are recorded, not thrown.
    /// `fromDump` words a header-only config as a short dump rather than a non-root reader.
    public mutating func decodeCapabilities(from config: some ConfigSpaceAccess, fromDump: Bool = false) {
        let list: CapabilityList
        do { list = try config.capabilityList() } catch {
            problems.append(.headerUnreadable(readable: config.readableSize))
            return
        }
        capabilities = list.capabilities
        standardChain = list.standardStatus
        extendedChain = list.extendedStatus
        if case .accessDenied = list.standardStatus, config.readableSize <= PCIReg.standardHeaderSize * 2 {
            problems.append(fromDump
                ? .dumpTruncated(readable: config.readableSize) : .capabilitiesNeedRoot(readable: config.readableSize))
        } else if !list.standardStatus.isComplete {
            problems.append(.chain(extended: false, list.standardStatus))
        }
        if !list.extendedStatus.isComplete { problems.append(.chain(extended: true, list.extendedStatus)) }
        if let cap = list.first(PCICapabilityID.msi) {
            do { msi = try MSICapability(config: config, at: cap.offset) } catch {
                problems.append(.capabilityTruncated(name: "MSI", offset: cap.offset))
            }
        }
        if let cap = list.first(PCICapabilityID.msix) {
            do { msix = try MSIXCapability(config: config, at: cap.offset) } catch {
                problems.append(.capabilityTruncated(name: "MSI-X", offset: cap.offset))
            }
        }
        if let cap = list.first(PCICapabilityID.express) {
            do { express = try PCIExpressCapability(config: config, at: cap.offset) } catch {
                problems.append(.capabilityTruncated(name: "Express", offset: cap.offset))
            }
        }
    }
}
