// Walking capability lists and decoding the interrupt capabilities, over any
// ConfigSpaceAccess (a dump snapshot, libpci, sysfs, VFIO or the mock).

/// One entry of a capability list.
public struct PCICapability: Hashable, Sendable {
    /// Capability ID (8-bit standard, 16-bit extended).
    public var id: UInt16
    /// Config-space offset of the capability header.
    public var offset: Int
    /// True for PCIe extended capabilities (offset ≥ 0x100).
    public var extended: Bool
    /// Version nibble of an extended capability header (0 for standard ones).
    public var version: UInt8

    /// A capability entry; `version` is 0 for standard capabilities.
    public init(id: UInt16, offset: Int, extended: Bool, version: UInt8 = 0) {
        self.id = id
        self.offset = offset
        self.extended = extended
        self.version = version
    }
}

/// How a capability walk ended. lspci prints the last three as `<chain looped>`,
/// `<chain broken>` and `<access denied>`.
public enum CapabilityChainStatus: Hashable, Sendable {
    /// The list ended with a zero next pointer.
    case complete
    /// A next pointer revisited an offset already seen.
    case looped(at: Int)
    /// An ID of 0xFF (device gone or garbage), a pointer into the standard header (< 0x40),
    /// or an extended header of 0xFFFFFFFF.
    case broken(at: Int)
    /// The capability lies beyond the readable part of config space (unprivileged sysfs
    /// readers see 64 bytes: capabilities need root).
    case accessDenied(at: Int)

    /// True when the walk reached the end of the list.
    public var isComplete: Bool { self == .complete }
}

/// A walked capability list.
public struct CapabilityList: Hashable, Sendable {
    /// Every capability found, standard ones first, each list in walk order.
    public var capabilities: [PCICapability]
    /// How the standard list ended.
    public var standardStatus: CapabilityChainStatus
    /// How the extended list ended (`.complete` when there is no extended space to walk).
    public var extendedStatus: CapabilityChainStatus

    /// The first standard capability with this ID.
    public func first(_ id: UInt8) -> PCICapability? {
        capabilities.first { !$0.extended && $0.id == UInt16(id) }
    }
}

extension ConfigSpaceAccess {
    /// Walks the standard and (for PCIe/PCI-X devices with 4 KiB of readable space) the
    /// extended capability lists, guarding loops with a visited set as lspci does.
    ///
    /// Throws only when the header itself cannot be read; problems inside the chain are
    /// reported in the returned statuses, never thrown.
    public func capabilityList() throws -> CapabilityList {
        var caps: [PCICapability] = []
        var standardStatus = CapabilityChainStatus.complete
        var extendedStatus = CapabilityChainStatus.complete
        let status = try read16(PCIReg.status)
        var canHaveExtended = false
        if status & PCIReg.Status.capabilityList != 0 {
            let headerType = try read8(PCIReg.headerType) & 0x7F
            let pointerAt = headerType == 2 ? PCIReg.cardbusCapabilityListPointer : PCIReg.capabilityListPointer
            var visited = Set<Int>()
            var at = Int(try read8(pointerAt) & ~3)
            while at != 0 {
                guard at + 4 <= readableSize else { standardStatus = .accessDenied(at: at); break }
                guard at >= PCIReg.standardHeaderSize, at < PCIReg.extendedStart else {
                    standardStatus = .broken(at: at); break
                }
                guard visited.insert(at).inserted else { standardStatus = .looped(at: at); break }
                let id = try read8(at)
                guard id != 0xFF else { standardStatus = .broken(at: at); break }
                caps.append(PCICapability(id: UInt16(id), offset: at, extended: false))
                if id == PCICapabilityID.express || id == 0x07 /* PCI-X */ { canHaveExtended = true }
                at = Int(try read8(at + 1) & ~3)
            }
        }
        if canHaveExtended, readableSize >= PCIReg.extendedSize {
            var visited = Set<Int>()
            var at = PCIReg.extendedStart
            repeat {
                guard visited.insert(at).inserted else { extendedStatus = .looped(at: at); break }
                let header = try read32(at)
                if header == 0 { break }  // no extended capabilities
                guard header != 0xFFFF_FFFF else { extendedStatus = .broken(at: at); break }
                caps.append(PCICapability(
                    id: UInt16(header & 0xFFFF), offset: at, extended: true, version: UInt8((header >> 16) & 0xF)))
                at = Int(header >> 20) & ~3
                if at != 0 && at < PCIReg.extendedStart { extendedStatus = .broken(at: at); break }
            } while at != 0
        }
        return CapabilityList(capabilities: caps, standardStatus: standardStatus, extendedStatus: extendedStatus)
    }
}

/// The MSI capability decoded field by field (the fields `lspci -vv` prints).
public struct MSICapability: Hashable, Sendable {
    /// Config-space offset of the capability header.
    public var capOffset: Int
    /// Message Control as read.
    public var control: UInt16
    /// MSI Enable.
    public var enabled: Bool { control & PCIReg.MSI.enable != 0 }
    /// log2 of Multiple Message Capable (MMC).
    public var multipleCapableLog2: Int { Int((control & PCIReg.MSI.qmask) >> 1) }
    /// log2 of Multiple Message Enable (MME).
    public var multipleEnabledLog2: Int { Int((control & PCIReg.MSI.qsize) >> 4) }
    /// Vectors the function can request: `1 << MMC` (lspci's second Count number).
    public var countCapable: Int { 1 << multipleCapableLog2 }
    /// Vectors software enabled: `1 << MME` (lspci's first Count number).
    public var countEnabled: Int { 1 << multipleEnabledLog2 }
    /// Per-vector masking: the capability has Mask and Pending registers.
    public var maskable: Bool { control & PCIReg.MSI.perVectorMask != 0 }
    /// 64-bit address capable: the capability has an upper address register.
    public var is64Bit: Bool { control & PCIReg.MSI.is64Bit != 0 }
    /// Message address (upper half is 0 for a 32-bit capability).
    public var address: UInt64
    /// Message data (16 bits).
    public var data: UInt16
    /// Mask bits; `nil` unless per-vector masking is supported.
    public var mask: UInt32?
    /// Pending bits; `nil` unless per-vector masking is supported.
    public var pending: UInt32?

    /// Offsets of the registers that depend on the 64-bit flag.
    public var dataOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.data64 : PCIReg.MSI.data32) }
    /// Config-space offset of the Mask Bits register (meaningful when ``maskable``).
    public var maskOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.mask64 : PCIReg.MSI.mask32) }
    /// Config-space offset of the Pending Bits register (meaningful when ``maskable``).
    public var pendingOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.pending64 : PCIReg.MSI.pending32) }

    /// Reads and decodes the MSI capability at `offset`.
    public init(config: some ConfigSpaceAccess, at offset: Int) throws {
        capOffset = offset
        control = try config.read16(offset + PCIReg.MSI.flags)
        let is64 = control & PCIReg.MSI.is64Bit != 0
        let lo = try config.read32(offset + PCIReg.MSI.addressLo)
        let hi = is64 ? try config.read32(offset + PCIReg.MSI.addressHi) : 0
        address = UInt64(hi) << 32 | UInt64(lo)
        data = try config.read16(offset + (is64 ? PCIReg.MSI.data64 : PCIReg.MSI.data32))
        if control & PCIReg.MSI.perVectorMask != 0 {
            mask = try config.read32(offset + (is64 ? PCIReg.MSI.mask64 : PCIReg.MSI.mask32))
            pending = try config.read32(offset + (is64 ? PCIReg.MSI.pending64 : PCIReg.MSI.pending32))
        } else {
            mask = nil
            pending = nil
        }
    }
}

/// The MSI-X capability decoded field by field.
public struct MSIXCapability: Hashable, Sendable {
    /// Config-space offset of the capability header.
    public var capOffset: Int
    /// Message Control as read.
    public var control: UInt16
    /// The Table Offset/BIR register as read.
    public var tableRegister: UInt32
    /// The PBA Offset/BIR register as read.
    public var pbaRegister: UInt32

    /// MSI-X Enable.
    public var enabled: Bool { control & PCIReg.MSIX.enable != 0 }
    /// Function Mask: every vector is masked, whatever its entry says.
    public var functionMasked: Bool { control & PCIReg.MSIX.functionMask != 0 }
    /// Number of table entries, 1…2048.
    public var tableSize: Int { Int(control & PCIReg.MSIX.tableSizeMask) + 1 }
    /// BAR indicator of the table (0…5 valid; 6 and 7 are reserved).
    public var tableBIR: Int { Int(tableRegister & PCIReg.MSIX.birMask) }
    /// Offset of the table inside its BAR (8-byte aligned).
    public var tableOffset: UInt32 { tableRegister & ~PCIReg.MSIX.birMask }
    /// BAR indicator of the Pending Bit Array (0…5 valid).
    public var pbaBIR: Int { Int(pbaRegister & PCIReg.MSIX.birMask) }
    /// Offset of the Pending Bit Array inside its BAR (8-byte aligned).
    public var pbaOffset: UInt32 { pbaRegister & ~PCIReg.MSIX.birMask }
    /// Bytes the table occupies: 16 per entry.
    public var tableLength: Int { tableSize * PCIReg.MSIX.entrySize }
    /// Bytes the PBA occupies: one bit per entry, in whole QWORDs.
    public var pbaLength: Int { (tableSize + 63) / 64 * 8 }

    /// Reads and decodes the MSI-X capability at `offset`.
    public init(config: some ConfigSpaceAccess, at offset: Int) throws {
        capOffset = offset
        control = try config.read16(offset + PCIReg.MSIX.flags)
        tableRegister = try config.read32(offset + PCIReg.MSIX.table)
        pbaRegister = try config.read32(offset + PCIReg.MSIX.pba)
    }
}

/// PCI Express device/port type (bits 7:4 of the PCIe capabilities register).
public enum PCIExpressType: Int, Hashable, Sendable, CustomStringConvertible {
    /// PCI Express Endpoint.
    case endpoint = 0
    /// Legacy PCI Express Endpoint.
    case legacyEndpoint = 1
    /// Root Port of a Root Complex.
    case rootPort = 4
    /// Upstream Port of a Switch.
    case upstreamPort = 5
    /// Downstream Port of a Switch.
    case downstreamPort = 6
    /// PCI Express to PCI/PCI-X Bridge.
    case pcieToPCIBridge = 7
    /// PCI/PCI-X to PCI Express Bridge.
    case pciToPCIeBridge = 8
    /// Root Complex Integrated Endpoint.
    case rootComplexIntegratedEndpoint = 9
    /// Root Complex Event Collector.
    case rootComplexEventCollector = 10

    /// The words lspci prints.
    public var description: String {
        switch self {
        case .endpoint: "Endpoint"
        case .legacyEndpoint: "Legacy Endpoint"
        case .rootPort: "Root Port"
        case .upstreamPort: "Upstream Port"
        case .downstreamPort: "Downstream Port"
        case .pcieToPCIBridge: "PCI-Express to PCI/PCI-X Bridge"
        case .pciToPCIeBridge: "PCI/PCI-X to PCI-Express Bridge"
        case .rootComplexIntegratedEndpoint: "Root Complex Integrated Endpoint"
        case .rootComplexEventCollector: "Root Complex Event Collector"
        }
    }
}

/// The part of the PCI Express capability this package reports.
public struct PCIExpressCapability: Hashable, Sendable {
    /// Config-space offset of the capability header.
    public var capOffset: Int
    /// The PCI Express Capabilities register as read.
    public var flags: UInt16
    /// Capability version (1 or 2).
    public var version: Int { Int(flags & PCIReg.Express.versionMask) }
    /// Raw type nibble; ``type`` is nil for reserved values.
    public var typeCode: Int { Int((flags & PCIReg.Express.typeMask) >> 4) }
    /// The device/port type; nil for a reserved type code.
    public var type: PCIExpressType? { PCIExpressType(rawValue: typeCode) }
    /// Interrupt Message Number (bits 13:9): which MSI/MSI-X vector PCIe events use.
    public var interruptMessageNumber: Int { Int((flags >> 9) & 0x1F) }

    /// Reads the PCI Express capability at `offset`.
    public init(config: some ConfigSpaceAccess, at offset: Int) throws {
        capOffset = offset
        flags = try config.read16(offset + PCIReg.Express.flags)
    }
}

// MARK: - Capability names

extension PCICapability {
    /// The capability's name as the PCI specs and `lspci` call it ("MSI-X", "Express",
    /// "Advanced Error Reporting"); unknown IDs read "Capability 0x.." / "Extended Capability 0x....".
    public var name: String {
        extended ? PCICapabilityNames.extended(id) : PCICapabilityNames.standard(UInt8(truncatingIfNeeded: id))
    }
}

/// Names of standard (PCI_CAP_ID_*) and extended (PCI_EXT_CAP_ID_*) capability IDs.
public enum PCICapabilityNames {
    /// Name of a standard capability ID.
    public static func standard(_ id: UInt8) -> String {
        switch id {
        case 0x00: "Null"
        case 0x01: "Power Management"
        case 0x02: "AGP"
        case 0x03: "Vital Product Data"
        case 0x04: "Slot ID"
        case 0x05: "MSI"
        case 0x06: "CompactPCI hot-swap"
        case 0x07: "PCI-X"
        case 0x08: "HyperTransport"
        case 0x09: "Vendor Specific Information"
        case 0x0A: "Debug port"
        case 0x0B: "CompactPCI central resource control"
        case 0x0C: "Hot-plug capable"
        case 0x0D: "Subsystem"
        case 0x0E: "AGP3"
        case 0x0F: "Secure device"
        case 0x10: "Express"
        case 0x11: "MSI-X"
        case 0x12: "SATA HBA"
        case 0x13: "PCI Advanced Features"
        case 0x14: "Enhanced Allocation"
        case 0x15: "Flattening Portal Bridge"
        default: "Capability 0x" + hex(id, width: 2)
        }
    }

    /// Name of an extended (PCIe, config offset ≥ 0x100) capability ID.
    public static func extended(_ id: UInt16) -> String {
        switch id {
        case 0x0000: "Null"
        case 0x0001: "Advanced Error Reporting"
        case 0x0002: "Virtual Channel"
        case 0x0003: "Device Serial Number"
        case 0x0004: "Power Budgeting"
        case 0x0005: "Root Complex Link"
        case 0x0006: "Root Complex Internal Link"
        case 0x0007: "Root Complex Event Collector"
        case 0x0008: "Multi-Function Virtual Channel"
        case 0x0009: "Virtual Channel"
        case 0x000A: "Root Complex Register Block"
        case 0x000B: "Vendor Specific Information"
        case 0x000C: "Configuration Access Correlation"
        case 0x000D: "Access Control Services"
        case 0x000E: "Alternative Routing-ID Interpretation (ARI)"
        case 0x000F: "Address Translation Service (ATS)"
        case 0x0010: "Single Root I/O Virtualization (SR-IOV)"
        case 0x0011: "Multi-Root I/O Virtualization"
        case 0x0012: "Multicast"
        case 0x0013: "Page Request Interface (PRI)"
        case 0x0014: "Reserved for AMD"
        case 0x0015: "Resizable BAR"
        case 0x0016: "Dynamic Power Allocation"
        case 0x0017: "Transaction Processing Hints"
        case 0x0018: "Latency Tolerance Reporting"
        case 0x0019: "Secondary PCI Express"
        case 0x001A: "Protocol Multiplexing"
        case 0x001B: "Process Address Space ID (PASID)"
        case 0x001C: "LN Requester"
        case 0x001D: "Downstream Port Containment"
        case 0x001E: "L1 PM Substates"
        case 0x001F: "Precision Time Measurement"
        case 0x0020: "PCI Express over M-PHY"
        case 0x0021: "FRS Queueing"
        case 0x0022: "Readiness Time Reporting"
        case 0x0023: "Designated Vendor-Specific"
        case 0x0024: "VF Resizable BAR"
        case 0x0025: "Data Link Feature"
        case 0x0026: "Physical Layer 16.0 GT/s"
        case 0x0027: "Lane Margining at the Receiver"
        case 0x0028: "Hierarchy ID"
        case 0x0029: "Native PCIe Enclosure Management"
        case 0x002A: "Physical Layer 32.0 GT/s"
        case 0x002B: "Alternate Protocol"
        case 0x002C: "System Firmware Intermediary"
        case 0x002D: "Shadow Functions"
        case 0x002E: "Data Object Exchange"
        case 0x002F: "Device 3"
        case 0x0030: "Integrity and Data Encryption"
        case 0x0031: "Physical Layer 64.0 GT/s"
        default: "Extended Capability 0x" + hex(id, width: 4)
        }
    }
}

extension CapabilityChainStatus {
    /// The word lspci prints where a walk stopped early (`chain looped`, `chain broken`,
    /// `access denied`); nil for a complete chain.
    public var lspciWord: String? {
        switch self {
        case .complete: nil
        case .looped: "chain looped"
        case .broken: "chain broken"
        case .accessDenied: "access denied"
        }
    }

    /// Offset where the walk stopped, nil for a complete chain.
    public var offset: Int? {
        switch self {
        case .complete: nil
        case .looped(let at), .broken(let at), .accessDenied(let at): at
        }
    }
}
