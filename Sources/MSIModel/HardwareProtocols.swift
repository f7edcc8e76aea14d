// The hardware the model drives, as protocols. The InterruptTables layer implements them over
// config space and BAR regions (real or mock); ``SimulatedPCIFunction`` implements them in
// memory with an access log.
//
// Granularity: one protocol call is one hardware access (one config-space word/dword or one
// MMIO readl/writel), so a recording backend sees exactly the sequence of accesses the kernel
// makes. The model never batches, reorders or skips them. Every call is made with the device
// lock held: an implementation must not call back into the MSIDevice.

/// One 32-bit field of an MSI-X table entry (16 bytes at `table + index * 16`).
public enum MSIXEntryField: Int, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `PCI_MSIX_ENTRY_LOWER_ADDR` (+0x0).
    case addressLo = 0x0
    /// `PCI_MSIX_ENTRY_UPPER_ADDR` (+0x4).
    case addressHi = 0x4
    /// `PCI_MSIX_ENTRY_DATA` (+0x8).
    case data = 0x8
    /// `PCI_MSIX_ENTRY_VECTOR_CTRL` (+0xC): bit 0 mask, bits 31:16 TPH steering tag.
    case vectorControl = 0xC

    /// Byte offset inside the entry.
    public var offset: Int { rawValue }

    /// A human-readable form.
    public var description: String {
        switch self {
        case .addressLo: "addr_lo"
        case .addressHi: "addr_hi"
        case .data: "data"
        case .vectorControl: "vector_ctrl"
        }
    }
}

/// A PCI function's MSI-X capability and table.
///
/// Config accesses go to the capability's Message Control word (`msix_cap + PCI_MSIX_FLAGS`:
/// table size 10:0, Function Mask bit 14, Enable bit 15); table accesses are 32-bit MMIO.
public protocol MSIXHardware: Sendable {
    /// `pci_read_config_word(dev, msix_cap + PCI_MSIX_FLAGS)`.
    func readMSIXControl() throws -> UInt16
    /// `pci_write_config_word(dev, msix_cap + PCI_MSIX_FLAGS, value)`.
    func writeMSIXControl(_ value: UInt16) throws
    /// `msix_map_region(dev, entries)`: read the Table Offset/BIR register and map
    /// `entries * 16` bytes of the BAR. Throw when the table cannot be mapped (the kernel
    /// then fails the enable with -ENOMEM).
    func mapTable(entries: Int) throws
    /// `iounmap(dev->msix_base)` in `pci_free_msi_irqs()`.
    func unmapTable()
    /// `readl(base + index * 16 + field)`.
    func readEntry(_ index: Int, _ field: MSIXEntryField) throws -> UInt32
    /// `writel(value, base + index * 16 + field)`.
    func writeEntry(_ index: Int, _ field: MSIXEntryField, _ value: UInt32) throws
}

/// A PCI function's MSI capability (config space only).
///
/// The implementation knows the capability layout (32- or 64-bit, mask position); the model
/// learns it from ``readMSIControl()`` like `msi_setup_msi_desc()` does and only calls
/// ``writeAddressHi(_:)`` for a 64-bit capability and the mask accessors when per-vector
/// masking is present.
public protocol MSIHardware: Sendable {
    /// `pci_read_config_word(dev, msi_cap + PCI_MSI_FLAGS)`.
    func readMSIControl() throws -> UInt16
    /// `pci_write_config_word(dev, msi_cap + PCI_MSI_FLAGS, value)`.
    func writeMSIControl(_ value: UInt16) throws
    /// `pci_write_config_dword(dev, msi_cap + PCI_MSI_ADDRESS_LO, value)`.
    func writeAddressLo(_ value: UInt32) throws
    /// `pci_write_config_dword(dev, msi_cap + PCI_MSI_ADDRESS_HI, value)` (64-bit only).
    func writeAddressHi(_ value: UInt32) throws
    /// `pci_write_config_word(dev, msi_cap + PCI_MSI_DATA_32 or _64, value)`.
    func writeData(_ value: UInt16) throws
    /// `pci_read_config_dword(dev, desc->pci.mask_pos)`.
    func readMask() throws -> UInt32
    /// `pci_write_config_dword(dev, desc->pci.mask_pos, value)`.
    func writeMask(_ value: UInt32) throws
}

/// The function's Command register, for `pci_intx()` (bit 10: INTx disable).
public protocol PCICommandHardware: Sendable {
    /// `pci_read_config_word(dev, PCI_COMMAND)`.
    func readCommand() throws -> UInt16
    /// `pci_write_config_word(dev, PCI_COMMAND, value)`.
    func writeCommand(_ value: UInt16) throws
}

/// Which `struct irq_chip` callbacks a device chip provides; `pci_create_ims_domain()` checks
/// them.
public struct IRQChipOperations: OptionSet, Hashable, Sendable {
    /// The bits.
    public let rawValue: UInt32
    /// Callbacks from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `irq_mask`.
    public static let mask = IRQChipOperations(rawValue: 1 << 0)
    /// `irq_unmask`.
    public static let unmask = IRQChipOperations(rawValue: 1 << 1)
    /// `irq_write_msi_msg`.
    public static let writeMessage = IRQChipOperations(rawValue: 1 << 2)
    /// `irq_set_affinity`: IMS chips must not have it (the parent handles affinity).
    public static let setAffinity = IRQChipOperations(rawValue: 1 << 3)
    /// `irq_shutdown`: when present, `free_irq()` calls it instead of masking.
    public static let shutdown = IRQChipOperations(rawValue: 1 << 4)
}

/// What an IMS chip callback sees of a descriptor (`irq_data_get_msi_desc()`).
public struct IMSDescriptor: Hashable, Sendable {
    /// The slot index (`msi_index`), also the hardware irq number.
    public var index: Int
    /// The Linux interrupt, 0 while not yet associated.
    public var virq: Int
    /// `desc->data.icookie`: the caller's instance cookie (a PASID, or a pointer to the
    /// storage of a software-managed IMS). ``IMSChip/prepare(_:)`` may rewrite it, as the
    /// kernel allows (the 2022 IDXD chip shifted its PASID into place); the chips of this
    /// project keep it as given and derive their hardware bits from it.
    public var instanceCookie: UInt64
    /// `desc->data.dcookie`: the domain's per-descriptor cookie, set by ``IMSChip/prepare(_:)``
    /// (IDXD stores the slot's MMIO address there).
    public var domainCookie: UInt64

    /// A descriptor view for a chip callback.
    public init(index: Int, virq: Int, instanceCookie: UInt64, domainCookie: UInt64) {
        self.index = index
        self.virq = virq
        self.instanceCookie = instanceCookie
        self.domainCookie = domainCookie
    }
}

/// A device-specific interrupt message store (IMS): the `irq_chip` plus `prepare_desc` of an
/// IMS domain template (Intel IDXD-style slots in device memory, or messages kept in queue
/// memory).
///
/// The same protocol serves any device domain whose messages the device stores itself.
/// Each call is expected to be one access (or one short fixed sequence the chip documents, as
/// IDXD's mask = write control + read back).
///
/// Every callback runs with the device lock held (as the kernel holds the descriptor mutex or
/// the irq_desc lock): it must not call back into the ``MSIDevice``.
public protocol IMSChip: Sendable {
    /// The `irq_chip` name; the domain is named `<parent prefix><name>-<device>`.
    var name: String { get }
    /// The callbacks this chip provides. Default: mask, unmask, write message.
    var operations: IRQChipOperations { get }
    /// The number of slots the hardware has, or nil for a purely software index space. When
    /// set, ``MSIDevice/createIMSDomain(template:hwsize:store:)`` refuses a larger `hwsize` (a check
    /// the kernel leaves to the driver).
    var slotCount: Int? { get }
    /// `prepare_desc`: bind the zeroed descriptor at `descriptor.index` to a slot (set
    /// `domainCookie`, optionally rewrite `instanceCookie`, put the slot in a masked state).
    func prepare(_ descriptor: inout IMSDescriptor) throws
    /// `irq_write_msi_msg`.
    func writeMessage(_ message: MSIMessage, for descriptor: IMSDescriptor) throws
    /// `irq_mask`.
    func mask(_ descriptor: IMSDescriptor) throws
    /// `irq_unmask`.
    func unmask(_ descriptor: IMSDescriptor) throws
    /// `irq_shutdown`: only called when ``operations`` contains `.shutdown`.
    func shutdown(_ descriptor: IMSDescriptor) throws
}

extension IMSChip {
    /// Default: mask, unmask and write message (what `pci_create_ims_domain()` requires).
    public var operations: IRQChipOperations { [.mask, .unmask, .writeMessage] }
    /// Default: no fixed number of slots.
    public var slotCount: Int? { nil }
    /// Default: mask.
    public func shutdown(_ descriptor: IMSDescriptor) throws { try mask(descriptor) }
}

/// Device quirks the PCI/MSI code consults (`dev->no_msi`, `dev->dev_flags`).
public struct PCIMSIQuirks: Hashable, Sendable {
    /// `dev->no_msi`: MSI and MSI-X are refused (-EINVAL).
    public var noMSI = false
    /// `dev->no_64bit_msi`: an address above 4 GiB fails the enable with -EIO.
    public var no64BitMSI = false
    /// `PCI_DEV_FLAGS_MSI_INTX_DISABLE_BUG`: never touch the INTx disable bit.
    public var intxDisableBug = false
    /// `PCI_DEV_FLAGS_HAS_MSI_MASKING`: the device masks MSI although the capability says not.
    public var hasMSIMasking = false
    /// `PCI_DEV_FLAGS_MSIX_TOUCH_ENTRY_DATA_FIRST`: write the entry's data before reading its
    /// vector control (SUN NIU).
    public var msixTouchEntryDataFirst = false

    /// Quirks, all off by default.
    public init(noMSI: Bool = false, no64BitMSI: Bool = false, intxDisableBug: Bool = false,
                hasMSIMasking: Bool = false, msixTouchEntryDataFirst: Bool = false) {
        self.noMSI = noMSI
        self.no64BitMSI = no64BitMSI
        self.intxDisableBug = intxDisableBug
        self.hasMSIMasking = hasMSIMasking
        self.msixTouchEntryDataFirst = msixTouchEntryDataFirst
    }
}

/// The PCI side of a device: what `struct pci_dev` contributes to MSI handling.
public struct PCIFunctionHardware: Sendable {
    /// The Command register (`pci_intx()`).
    public var command: any PCICommandHardware
    /// The MSI-X capability and table, nil when the function has none (`dev->msix_cap == 0`).
    public var msix: (any MSIXHardware)?
    /// The MSI capability, nil when the function has none (`dev->msi_cap == 0`).
    public var msi: (any MSIHardware)?
    /// `dev->irq` at probe: the INTx Linux interrupt, 0 when the function has no pin.
    public var intxIRQ: Int
    /// The MSI-relevant quirks of the function.
    public var quirks: PCIMSIQuirks

    /// A function bundle; capabilities left nil are absent.
    public init(command: any PCICommandHardware, msix: (any MSIXHardware)? = nil, msi: (any MSIHardware)? = nil,
                intxIRQ: Int = 0, quirks: PCIMSIQuirks = PCIMSIQuirks()) {
        self.command = command
        self.msix = msix
        self.msi = msi
        self.intxIRQ = intxIRQ
        self.quirks = quirks
    }
}

/// PCI power state, as far as MSI cares (`dev->current_state`).
public enum PCIPowerState: Hashable, Sendable {
    /// D0: messages are written to the hardware.
    case d0
    /// Any low-power state: `__pci_write_msi_msg()` only updates the cached message; enabling
    /// MSI or MSI-X fails with -EINVAL.
    case lowPower
    /// Surprise-removed (`pci_dev_is_disconnected()`): no hardware access at all.
    case disconnected
}
