// The model's hardware protocols (MSIModel/HardwareProtocols.swift) implemented over config
// space and BAR regions, so the same kernel sequences drive a real device (sysfs, UIO, VFIO)
// or a mock. One protocol call is one config or MMIO access; nothing is cached here except
// what the kernel also learns once at probe time (capability offsets and layout).
public import MSIModel
public import MSIShimCore

/// The Command register (offset 0x04) of a function, for `pci_intx()`.
public struct ConfigCommandRegister: PCICommandHardware {
    /// The function's config space; the Command register is its 16-bit word at 0x04
    /// (`PCI_COMMAND`), whose bit 10 (Interrupt Disable) `pci_intx()` sets and clears.
    public let config: any ConfigSpaceAccess

    /// The Command register of the function behind `config`. Nothing is accessed until the
    /// model reads or writes the register.
    public init(config: any ConfigSpaceAccess) { self.config = config }

    public func readCommand() throws -> UInt16 { try config.read16(PCIReg.command) }
    public func writeCommand(_ value: UInt16) throws { try config.write16(PCIReg.command, value) }
}

/// An MSI-X capability and its table: Message Control through config space, entries through
/// the BAR region the Table Offset/BIR register names.
///
/// `mapTable` reads that register (one config dword, like `msix_map_region()`), asks for the
/// BAR's region and checks that `entries * 16` bytes fit; entry accesses are then one MMIO
/// DWORD each. Locking: the mapping is kept under a Mutex (set by mapTable, cleared by
/// unmapTable); the model serializes calls per device.
public final class MSIXCapabilityHardware: MSIXHardware {
    /// The function's config space: Message Control and Table Offset/BIR are read there.
    public let config: any ConfigSpaceAccess
    /// The config-space offset of the MSI-X capability (`dev->msix_cap`).
    public let capOffset: Int
    let region: @Sendable (Int) throws -> any MMIORegion
    let mapping = PackageMutex<(region: any MMIORegion, offset: Int, entries: Int)?>(nil)

    /// A view of the capability at `capOffset`; nothing is accessed until the model calls it
    /// (the table is located by ``mapTable(entries:)``).
    ///
    /// - Parameters:
    ///   - config: the function's config space.
    ///   - capOffset: config offset of the MSI-X capability.
    ///   - region: the region of a BAR index (the whole BAR, offsets from its start).
    public init(config: any ConfigSpaceAccess, capOffset: Int, region: @escaping @Sendable (Int) throws -> any MMIORegion) {
        self.config = config
        self.capOffset = capOffset
        self.region = region
    }

    public func readMSIXControl() throws -> UInt16 { try config.read16(capOffset + PCIReg.MSIX.flags) }
    public func writeMSIXControl(_ value: UInt16) throws { try config.write16(capOffset + PCIReg.MSIX.flags, value) }

    public func mapTable(entries: Int) throws {
        let reg = try config.read32(capOffset + PCIReg.MSIX.table)
        let bir = Int(reg & PCIReg.MSIX.birMask)
        guard bir < 6 else { throw MSIXLayoutError.reservedBIR(.table, bir: bir) }
        let r = try region(bir)
        let offset = Int(reg & ~PCIReg.MSIX.birMask)
        guard offset + entries * PCIReg.MSIX.entrySize <= r.size else {
            throw MSIXLayoutError.pastBAREnd(.table, bir: bir, offset: offset, length: entries * PCIReg.MSIX.entrySize, barSize: UInt64(r.size))
        }
        mapping.withLock { $0 = (r, offset, entries) }
    }

    public func unmapTable() { mapping.withLock { $0 = nil } }

    @inline(__always)
    func locate(_ index: Int, _ field: MSIXEntryField) throws -> (any MMIORegion, Int) {
        guard let m = mapping.withLock({ $0 }) else {
            throw DeviceAccessError.unsupported("MSI-X table", what: "access before the table is mapped")
        }
        guard index >= 0, index < m.entries else { throw MSIXTableError.indexOutOfRange(index: index, tableSize: m.entries) }
        return (m.region, m.offset + index * PCIReg.MSIX.entrySize + field.offset)
    }

    public func readEntry(_ index: Int, _ field: MSIXEntryField) throws -> UInt32 {
        let (r, at) = try locate(index, field)
        return try r.read32(at)
    }

    public func writeEntry(_ index: Int, _ field: MSIXEntryField, _ value: UInt32) throws {
        let (r, at) = try locate(index, field)
        try r.write32(at, value)
    }
}

/// An MSI capability in config space. The layout (32/64-bit, mask position) is decoded once at
/// construction, as the kernel does at probe.
public struct MSICapabilityHardware: MSIHardware {
    /// The function's config space, which holds every MSI register.
    public let config: any ConfigSpaceAccess
    /// The config-space offset of the MSI capability (`dev->msi_cap`).
    public let capOffset: Int
    /// Message Control bit 7 (`PCI_MSI_FLAGS_64BIT`): the capability has a Message Upper
    /// Address register, and Message Data sits at +0x0C instead of +0x08.
    public let is64Bit: Bool
    /// Message Control bit 8 (`PCI_MSI_FLAGS_MASKBIT`): the capability has Mask Bits and
    /// Pending Bits registers (per-vector masking).
    public let maskable: Bool

    /// Reads the capability's Message Control once to learn its layout.
    ///
    /// - Parameters:
    ///   - config: the function's config space.
    ///   - capOffset: config offset of the MSI capability.
    /// - Throws: whatever the config read of Message Control throws.
    public init(config: any ConfigSpaceAccess, capOffset: Int) throws {
        self.config = config
        self.capOffset = capOffset
        let control = try config.read16(capOffset + PCIReg.MSI.flags)
        is64Bit = control & PCIReg.MSI.is64Bit != 0
        maskable = control & PCIReg.MSI.perVectorMask != 0
    }

    var dataOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.data64 : PCIReg.MSI.data32) }
    var maskOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.mask64 : PCIReg.MSI.mask32) }

    public func readMSIControl() throws -> UInt16 { try config.read16(capOffset + PCIReg.MSI.flags) }
    public func writeMSIControl(_ value: UInt16) throws { try config.write16(capOffset + PCIReg.MSI.flags, value) }
    public func writeAddressLo(_ value: UInt32) throws { try config.write32(capOffset + PCIReg.MSI.addressLo, value) }
    public func writeAddressHi(_ value: UInt32) throws {
        guard is64Bit else { throw DeviceAccessError.unsupported(config.name, what: "the upper address of a 32-bit MSI capability") }
        try config.write32(capOffset + PCIReg.MSI.addressHi, value)
    }
    public func writeData(_ value: UInt16) throws { try config.write16(dataOffset, value) }
    public func readMask() throws -> UInt32 {
        guard maskable else { throw DeviceAccessError.unsupported(config.name, what: "MSI mask bits without per-vector masking") }
        return try config.read32(maskOffset)
    }
    public func writeMask(_ value: UInt32) throws {
        guard maskable else { throw DeviceAccessError.unsupported(config.name, what: "MSI mask bits without per-vector masking") }
        try config.write32(maskOffset, value)
    }
}

extension PCIFunctionHardware {
    /// The hardware of a PCI function found through its capabilities: MSI-X (when present,
    /// its table reached through `region`), MSI (when present) and the Command register.
    ///
    /// - Parameters:
    ///   - config: the function's config space; its capability list is walked once, and the
    ///     MSI capability's Message Control read once.
    ///   - intxIRQ: the Linux INTx interrupt (`dev->irq`), 0 when the function has no pin.
    ///   - region: the region of a BAR index (the whole BAR, offsets from its start); called
    ///     only when the model maps the MSI-X table.
    /// - Throws: whatever walking the capability list or reading MSI's Message Control throws.
    public static func discover(
        config: any ConfigSpaceAccess, intxIRQ: Int,
        region: @escaping @Sendable (Int) throws -> any MMIORegion
    ) throws -> PCIFunctionHardware {
        let caps = try config.capabilityList()
        let msix = caps.first(PCICapabilityID.msix).map {
            MSIXCapabilityHardware(config: config, capOffset: $0.offset, region: region)
        }
        let msi = try caps.first(PCICapabilityID.msi).map { try MSICapabilityHardware(config: config, capOffset: $0.offset) }
        return PCIFunctionHardware(command: ConfigCommandRegister(config: config), msix: msix, msi: msi, intxIRQ: intxIRQ)
    }
}

/// The IMS chip of a device-memory slot array (Intel IDXD's layout, from the 2022 series).
///
/// The instance cookie is the PASID the slot tags its messages with (0: none); it stays in
/// the descriptor exactly as the caller gave it, and the control word is derived from it on
/// every mask and unmask: `(pasid << 12) | PASID enable`, plus the mask bit.
///
/// - prepare: refuses (EINVAL) a cookie wider than the 20-bit PASID field before touching
///   the slot; the domain cookie becomes the slot's byte offset; control = mask: 1 access.
/// - mask: write control | mask, then read it back (flush): 2 accesses.
/// - unmask: write control: 1 access (this is where the PASID reaches the slot).
/// - write message: address lo, address hi, data: 3 accesses.
/// - shutdown (`free_irq`): control = mask alone (PASID cleared), read back: 2 accesses;
///   deactivation then writes the all-zero message into the masked slot, so a released slot
///   is back in its reset state. (The 2022 IDXD chip's shutdown zeroed address and data
///   before masking, rewriting a live slot.)
public struct IMSDeviceChip: IMSChip {
    /// The slot array in device memory.
    public let table: IMSDeviceTable

    /// A chip over `table`.
    public init(table: IMSDeviceTable) { self.table = table }

    /// The `irq_chip` name.
    public var name: String { "IMS-slots" }
    /// Mask, unmask, write message, shutdown.
    public var operations: IRQChipOperations { [.mask, .unmask, .writeMessage, .shutdown] }
    /// The slots of the array.
    public var slotCount: Int? { table.slots }

    /// The unmasked control word of `descriptor`'s slot, from its cookie.
    func control(_ descriptor: IMSDescriptor) -> UInt32 { IMSSlotLayout.control(cookie: descriptor.instanceCookie) }

    /// `prepare_desc`.
    public func prepare(_ descriptor: inout IMSDescriptor) throws {
        let cookie = descriptor.instanceCookie
        guard IMSSlotLayout.pasid(cookie: cookie).fits else {
            throw MSIError(.EINVAL, "prepare_desc",
                           "cookie 0x\(hex(cookie, width: 1)) names a PASID wider than the slot's 20-bit field (max 0xfffff)")
        }
        descriptor.domainCookie = UInt64(table.offset + descriptor.index * IMSSlotLayout.size)
        try table.writeControl(descriptor.index, IMSSlotLayout.mask)
    }

    /// `irq_write_msi_msg`.
    public func writeMessage(_ message: MSIMessage, for descriptor: IMSDescriptor) throws {
        try table.writeMessage(descriptor.index, addressLo: message.addressLo, addressHi: message.addressHi, data: message.data)
    }

    /// `irq_mask`.
    public func mask(_ descriptor: IMSDescriptor) throws {
        try table.writeControlAndFlush(descriptor.index, control(descriptor) | IMSSlotLayout.mask)
    }

    /// `irq_unmask`.
    public func unmask(_ descriptor: IMSDescriptor) throws {
        try table.writeControl(descriptor.index, control(descriptor))
    }

    /// `irq_shutdown`: mask with the PASID cleared, then flush.
    public func shutdown(_ descriptor: IMSDescriptor) throws {
        try table.writeControlAndFlush(descriptor.index, IMSSlotLayout.mask)
    }
}

/// The IMS chip of messages kept in host memory (queue-memory style): no slot limit, no MMIO.
/// The instance cookie is the handle of the storage the driver allocated in the
/// ``IMSSoftwareStore``; every callback finds the slot through it.
public struct IMSSoftwareChip: IMSChip {
    /// Where the messages live.
    public let store: IMSSoftwareStore

    /// A chip over `store`.
    public init(store: IMSSoftwareStore) { self.store = store }

    /// The `irq_chip` name.
    public var name: String { "IMS-queue" }
    /// Mask, unmask, write message.
    public var operations: IRQChipOperations { [.mask, .unmask, .writeMessage] }

    /// `prepare_desc`: binds the storage the cookie names to this index and masks it; the
    /// domain cookie keeps the handle. EINVAL when the cookie names no storage, EBUSY when the
    /// storage serves another index.
    public func prepare(_ descriptor: inout IMSDescriptor) throws {
        do {
            try store.bind(descriptor.instanceCookie, index: descriptor.index)
        } catch {
            throw MSIError(error.errno ?? .EINVAL, "prepare_desc", error.description)
        }
        descriptor.domainCookie = descriptor.instanceCookie
    }

    /// `irq_write_msi_msg`.
    public func writeMessage(_ message: MSIMessage, for descriptor: IMSDescriptor) throws {
        try store.writeMessage(descriptor.instanceCookie, addressLo: message.addressLo, addressHi: message.addressHi, data: message.data)
    }

    /// `irq_mask`.
    public func mask(_ descriptor: IMSDescriptor) throws {
        try store.writeControl(descriptor.instanceCookie, IMSSlotLayout.mask)
    }

    /// `irq_unmask`.
    public func unmask(_ descriptor: IMSDescriptor) throws {
        try store.writeControl(descriptor.instanceCookie, 0)
    }
}
