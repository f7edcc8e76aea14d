// Register offsets and bits from the PCI Local Bus 3.0 / PCIe specs, named as
// include/uapi/linux/pci_regs.h names them (PCI_MSI_FLAGS_ENABLE → PCIReg.MSI.enable).

/// Config-space register layout: offsets from the start of config space, and the bits of the
/// registers this package reads or writes.
public enum PCIReg {
    /// Vendor ID (16 bits); 0xFFFF reads mean no device answered.
    public static let vendorID = 0x00
    /// Device ID (16 bits).
    public static let deviceID = 0x02
    /// Command register (16 bits): see ``Command``.
    public static let command = 0x04
    /// Status register (16 bits): see ``Status``.
    public static let status = 0x06
    /// Revision ID (8 bits).
    public static let revisionID = 0x08
    /// Programming interface (8 bits), followed by the subclass and base class bytes.
    public static let classProgIF = 0x09
    /// Header type (8 bits): layout in bits 6:0 (0 endpoint, 1 PCI bridge, 2 CardBus bridge),
    /// multifunction device in bit 7.
    public static let headerType = 0x0E
    /// Base Address Register 0; BAR *n* is at `bar0 + 4 * n` (a 64-bit BAR takes two).
    public static let bar0 = 0x10
    /// Offset of the first standard capability (valid when ``Status/capabilityList`` is set).
    public static let capabilityListPointer = 0x34
    /// CardBus bridges keep their capability pointer here.
    public static let cardbusCapabilityListPointer = 0x14
    /// Interrupt Line: the legacy IRQ routing the firmware wrote (8 bits).
    public static let interruptLine = 0x3C
    /// Interrupt Pin: 0 none, 1–4 INTA#–INTD# (8 bits).
    public static let interruptPin = 0x3D

    /// The standard header is 64 bytes; capabilities live above it.
    public static let standardHeaderSize = 0x40
    /// Conventional config space; extended capabilities start here.
    public static let extendedStart = 0x100
    /// Size of PCI Express extended config space (4 KiB).
    public static let extendedSize = 0x1000

    /// Command register bits.
    public enum Command {
        /// I/O Space: the function answers I/O BAR accesses.
        public static let io: UInt16 = 1 << 0
        /// Memory Space: the function answers memory BAR accesses (off → VFIO BAR I/O fails).
        public static let memory: UInt16 = 1 << 1
        /// Bus Master: the function may issue memory writes, and so MSI/MSI-X messages.
        public static let busMaster: UInt16 = 1 << 2
        /// Interrupt Disable: the function must not assert INTx.
        public static let intxDisable: UInt16 = 1 << 10
    }

    /// Status register bits.
    public enum Status {
        /// Interrupt Status: the function is asserting INTx (read-only).
        public static let interrupt: UInt16 = 1 << 3
        /// Capabilities List: ``PCIReg/capabilityListPointer`` is valid.
        public static let capabilityList: UInt16 = 1 << 4
    }

    /// MSI capability (PCI 3.0 §6.8.1). Offsets are from the capability start.
    public enum MSI {
        /// Message Control (16 bits).
        public static let flags = 0x02
        /// Message Address, low 32 bits.
        public static let addressLo = 0x04
        /// Message Address, high 32 bits (64-bit capabilities only).
        public static let addressHi = 0x08
        /// Message Data (16 bits) of a 32-bit capability.
        public static let data32 = 0x08
        /// Message Data (16 bits) of a 64-bit capability.
        public static let data64 = 0x0C
        /// Mask Bits of a 32-bit capability with per-vector masking.
        public static let mask32 = 0x0C
        /// Mask Bits of a 64-bit capability with per-vector masking.
        public static let mask64 = 0x10
        /// Pending Bits of a 32-bit capability with per-vector masking.
        public static let pending32 = 0x10
        /// Pending Bits of a 64-bit capability with per-vector masking.
        public static let pending64 = 0x14

        /// Message Control: MSI Enable.
        public static let enable: UInt16 = 1 << 0
        /// Multiple Message Capable, log2 of the count, bits 3:1.
        public static let qmask: UInt16 = 0x000E
        /// Multiple Message Enable, log2 of the count, bits 6:4.
        public static let qsize: UInt16 = 0x0070
        /// Message Control: 64-bit Address Capable.
        public static let is64Bit: UInt16 = 1 << 7
        /// Message Control: Per-Vector Masking Capable.
        public static let perVectorMask: UInt16 = 1 << 8
    }

    /// MSI-X capability (PCI 3.0 §6.8.2). Offsets are from the capability start.
    public enum MSIX {
        /// Message Control (16 bits).
        public static let flags = 0x02
        /// Table Offset / Table BIR (32 bits).
        public static let table = 0x04
        /// PBA Offset / PBA BIR (32 bits).
        public static let pba = 0x08

        /// Table size minus one, bits 10:0.
        public static let tableSizeMask: UInt16 = 0x07FF
        /// Message Control: Function Mask, masks every vector without touching entry masks.
        public static let functionMask: UInt16 = 1 << 14
        /// Message Control: MSI-X Enable.
        public static let enable: UInt16 = 1 << 15
        /// BAR indicator in the low 3 bits of the table/PBA register.
        public static let birMask: UInt32 = 0x7

        /// One table entry is 16 bytes.
        public static let entrySize = 16
        /// Entry offset of Message Address, low 32 bits.
        public static let entryAddressLo = 0x0
        /// Entry offset of Message Address, high 32 bits.
        public static let entryAddressHi = 0x4
        /// Entry offset of Message Data.
        public static let entryData = 0x8
        /// Entry offset of Vector Control.
        public static let entryVectorControl = 0xC
        /// Vector Control: the entry's Mask bit.
        public static let vectorControlMask: UInt32 = 1 << 0
        /// The spec's maximum table size.
        public static let maxEntries = 2048
    }

    /// PCI Express capability: flags word and device/port type (bits 7:4).
    public enum Express {
        /// PCI Express Capabilities register (16 bits).
        public static let flags = 0x02
        /// Device/Port Type, bits 7:4 of the flags (see ``PCIExpressType``).
        public static let typeMask: UInt16 = 0x00F0
        /// Capability Version, bits 3:0 of the flags.
        public static let versionMask: UInt16 = 0x000F
    }
}

/// Standard capability IDs (PCI_CAP_ID_*).
public enum PCICapabilityID {
    /// Power Management.
    public static let powerManagement: UInt8 = 0x01
    /// Message Signaled Interrupts.
    public static let msi: UInt8 = 0x05
    /// Vendor-specific (virtio uses it for its structures).
    public static let vendorSpecific: UInt8 = 0x09
    /// PCI Express.
    public static let express: UInt8 = 0x10
    /// MSI-X.
    public static let msix: UInt8 = 0x11
}
