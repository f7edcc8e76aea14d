// x86 MSI message formats: the compatibility format the local APICs understand
// (arch/x86/include/asm/msi.h, __irq_msi_compose_msg in apic.c) and Intel VT-d's remappable
// format (fill_msi_msg in drivers/iommu/intel/irq_remapping.c). Pure functions.

/// How an x86 MSI address names its target APIC.
public enum X86DestinationMode: Hashable, Sendable {
    /// Physical: the destination field is an APIC ID.
    case physical
    /// Logical (flat): the destination field is a bitmap of up to 8 CPUs.
    case logical
}

/// x86 vector-space and message constants (arch/x86/include/asm/irq_vectors.h, msi.h).
public enum X86Vectors {
    /// `FIRST_EXTERNAL_VECTOR`: the first vector devices may use.
    public static let firstExternal = 0x20
    /// `ISA_IRQ_VECTOR(0)`: legacy IRQ i uses vector 0x30 + i on CPU 0.
    public static let isaBase = 0x30
    /// `PIC_CASCADE_IR`: IRQ 2, whose vector is never given out.
    public static let picCascadeIRQ = 2
    /// `IA32_SYSCALL_VECTOR`: a system vector inside the allocatable range.
    public static let syscall = 0x80
    /// `MANAGED_IRQ_SHUTDOWN_VECTOR`: where reserved and shut-down interrupts point.
    public static let managedShutdown = 0xEF
    /// `LOCAL_TIMER_VECTOR`: the default `FIRST_SYSTEM_VECTOR`.
    public static let localTimer = 0xEC
    /// `POSTED_MSI_NOTIFICATION_VECTOR`: `FIRST_SYSTEM_VECTOR` with posted MSI support.
    public static let postedMSINotification = 0xEB
    /// `X86_MSI_BASE_ADDRESS_LOW`.
    public static let msiBaseAddressLow: UInt32 = 0xFEE0_0000
}

/// A decoded compatibility-format x86 MSI (the `arch_msi_msg_addr_lo`/`arch_msi_msg_data`
/// bit fields).
public struct X86CompatibilityMessage: Hashable, Sendable {
    /// Destination: APIC ID (physical) or CPU bitmap (logical), including the extended
    /// destination bits 8–14 when they were decoded.
    public var destination: UInt32
    /// Physical (address bit 2 clear) or logical.
    public var destinationMode: X86DestinationMode
    /// Redirection hint (address bit 3).
    public var redirectHint: Bool
    /// Data bits 7:0.
    public var vector: Int
    /// Delivery mode (data bits 10:8): 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT.
    public var deliveryMode: Int
    /// Data bit 14.
    public var activeLow: Bool
    /// Data bit 15.
    public var levelTriggered: Bool
}

/// A decoded Intel VT-d remappable-format MSI.
public struct IntelRemappableMessage: Hashable, Sendable {
    /// The 16-bit handle: bits 14:0 from address bits 19:5, bit 15 from address bit 2.
    public var handle: Int
    /// SHV (address bit 3): the data carries a subhandle that is added to the handle.
    public var subhandleValid: Bool
    /// Data bits 15:0.
    public var subhandle: Int

    /// The interrupt-remapping table index the hardware uses: handle (+ subhandle when SHV).
    public var irteIndex: Int { subhandleValid ? handle + subhandle : handle }
}

/// A message as the x86 interrupt fabric sees it.
public enum X86DecodedMessage: Hashable, Sendable {
    /// A compatibility-format message (address bit 4 clear).
    case compatibility(X86CompatibilityMessage)
    /// An Intel VT-d remappable-format message (address bit 4 set).
    case remappable(IntelRemappableMessage)
    /// Not an interrupt: the address is not 0xFEExxxxx in the low 4 GiB.
    case notAnInterrupt
}

/// Composition and decoding of x86 MSI messages.
public enum X86MSIFormat {
    /// Composes a compatibility-format message for a fixed, edge-triggered interrupt, as
    /// `__irq_msi_compose_msg(cfg, msg, dmar: false)` does: base 0xFEE, destination ID bits 7:0
    /// at address 19:12, the hypervisor's extended destination ID bits 14:8 at address 11:5,
    /// logical bit 2 from the APIC driver, vector in data 7:0, everything else 0.
    ///
    /// - Throws: EINVAL when `destinationAPICID` does not fit (> 0xFF without the extended
    ///   destination ID, > 0x7FFF with it). The kernel WARNs and truncates instead.
    public static func compose(
        vector: Int, destinationAPICID: UInt32, mode: X86DestinationMode = .physical,
        extendedDestinationID: Bool = false
    ) throws(MSIError) -> MSIMessage {
        guard vector >= 0, vector <= 0xFF else {
            throw MSIError(.EINVAL, "__irq_msi_compose_msg", "vector \(vector) is not 0…255")
        }
        var lo = X86Vectors.msiBaseAddressLow | (destinationAPICID & 0xFF) << 12
        if mode == .logical { lo |= 1 << 2 }
        if destinationAPICID > 0xFF {
            guard extendedDestinationID, destinationAPICID < 0x8000 else {
                throw MSIError(.EINVAL, "__irq_msi_compose_msg",
                               "APIC ID 0x\(hexString(destinationAPICID, 1)) needs "
                               + (extendedDestinationID ? "interrupt remapping (> 0x7fff)" : "the extended destination ID or interrupt remapping"))
            }
            lo |= (destinationAPICID >> 8) << 5
        }
        return MSIMessage(addressLo: lo, addressHi: 0, data: UInt32(vector))
    }

    /// Composes Intel VT-d's remappable message for IRTE `handle` and `subhandle`, as
    /// `fill_msi_msg()` does: base 0xFEE, format bit 4, SHV bit 3, handle 14:0 at bits 19:5,
    /// handle bit 15 at bit 2, subhandle in data 15:0, address high 0.
    public static func composeRemappable(handle: Int, subhandle: Int) -> MSIMessage {
        let h = UInt32(truncatingIfNeeded: handle) & 0xFFFF
        let lo = X86Vectors.msiBaseAddressLow | (h & 0x7FFF) << 5 | 1 << 4 | 1 << 3 | (h >> 15) << 2
        return MSIMessage(addressLo: lo, addressHi: 0, data: UInt32(truncatingIfNeeded: subhandle) & 0xFFFF)
    }

    /// Decodes a message the way the x86 interrupt fabric does.
    ///
    /// - Parameters:
    ///   - message: the address and data the device writes.
    ///   - extendedDestinationID: whether address bits 11:5 carry destination bits
    ///     14:8 (the hypervisor feature `virt_ext_dest_id`); otherwise they are ignored.
    public static func decode(_ message: MSIMessage, extendedDestinationID: Bool = false) -> X86DecodedMessage {
        let lo = message.addressLo
        guard message.addressHi == 0, lo & 0xFFF0_0000 == X86Vectors.msiBaseAddressLow else { return .notAnInterrupt }
        if lo & (1 << 4) != 0 {
            let handle = Int((lo >> 5) & 0x7FFF) | Int((lo >> 2) & 1) << 15
            return .remappable(IntelRemappableMessage(
                handle: handle, subhandleValid: lo & (1 << 3) != 0, subhandle: Int(message.data & 0xFFFF)))
        }
        var destination = (lo >> 12) & 0xFF
        if extendedDestinationID { destination |= ((lo >> 5) & 0x7F) << 8 }
        let data = message.data
        return .compatibility(X86CompatibilityMessage(
            destination: destination,
            destinationMode: lo & (1 << 2) != 0 ? .logical : .physical,
            redirectHint: lo & (1 << 3) != 0,
            vector: Int(data & 0xFF),
            deliveryMode: Int((data >> 8) & 0x7),
            activeLow: data & (1 << 14) != 0,
            levelTriggered: data & (1 << 15) != 0))
    }
}
