// Register offsets and bits from the PCI Local Bus 3.0 / PCIe specs, named as
// include/uapi/linux/pci_regs.h names them (PCI_MSI_FLAGS_ENABLE → PCIReg.MSI.enable).

/// Config-space register layout.
public enum PCIReg {
    public static let vendorID = 0x00
    public static let deviceID = 0x02
    public static let command = 0x04
    public static let status = 0x06
    public static let revisionID = 0x08
    public static let classProgIF = 0x09
    public static let headerType = 0x0E
    public static let bar0 = 0x10
    public static let capabilityListPointer = 0x34
    /// CardBus bridges keep their capability pointer here.
    public static let cardbusCapabilityListPointer = 0x14
    public static let interruptLine = 0x3C
    public static let interruptPin = 0x3D

    /// The standard header is 64 bytes; capabilities live above it.
    public static let standardHeaderSize = 0x40
    /// Conventional config space; extended capabilities start here.
    public static let extendedStart = 0x100
    public static let extendedSize = 0x1000

    public enum Command {
        public static let io: UInt16 = 1 << 0
        public static let memory: UInt16 = 1 << 1
        public static let busMaster: UInt16 = 1 << 2
        public static let intxDisable: UInt16 = 1 << 10
    }

    public enum Status {
        public static let interrupt: UInt16 = 1 << 3
        public static let capabilityList: UInt16 = 1 << 4
    }

    /// MSI capability (PCI 3.0 §6.8.1). Offsets are from the capability start.
    public enum MSI {
        public static let flags = 0x02
        public static let addressLo = 0x04
        public static let addressHi = 0x08   // 64-bit only
        public static let data32 = 0x08
        public static let data64 = 0x0C
        public static let mask32 = 0x0C
        public static let mask64 = 0x10
        public static let pending32 = 0x10
        public static let pending64 = 0x14

        public static let enable: UInt16 = 1 << 0
        /// Multiple Message Capable, log2 of the count, bits 3:1.
        public static let qmask: UInt16 = 0x000E
        /// Multiple Message Enable, log2 of the count, bits 6:4.
        public static let qsize: UInt16 = 0x0070
        public static let is64Bit: UInt16 = 1 << 7
        public static let perVectorMask: UInt16 = 1 << 8
    }

    /// MSI-X capability (PCI 3.0 §6.8.2). Offsets are from the capability start.
    public enum MSIX {
        public static let flags = 0x02
        public static let table = 0x04
        public static let pba = 0x08

        /// Table size minus one, bits 10:0.
        public static let tableSizeMask: UInt16 = 0x07FF
        public static let functionMask: UInt16 = 1 << 14
        public static let enable: UInt16 = 1 << 15
        /// BAR indicator in the low 3 bits of the table/PBA register.
        public static let birMask: UInt32 = 0x7

        /// One table entry is 16 bytes.
        public static let entrySize = 16
        public static let entryAddressLo = 0x0
        public static let entryAddressHi = 0x4
        public static let entryData = 0x8
        public static let entryVectorControl = 0xC
        public static let vectorControlMask: UInt32 = 1 << 0
        /// The spec's maximum table size.
        public static let maxEntries = 2048
    }

    /// PCI Express capability: flags word and device/port type (bits 7:4).
    public enum Express {
        public static let flags = 0x02
        public static let typeMask: UInt16 = 0x00F0
        public static let versionMask: UInt16 = 0x000F
    }
}

/// Standard capability IDs (PCI_CAP_ID_*).
public enum PCICapabilityID {
    public static let powerManagement: UInt8 = 0x01
    public static let msi: UInt8 = 0x05
    public static let vendorSpecific: UInt8 = 0x09
    public static let express: UInt8 = 0x10
    public static let msix: UInt8 = 0x11
}
