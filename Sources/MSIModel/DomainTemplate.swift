// struct msi_domain_template and the per-device domain it becomes.

/// The irq chip behind a per-device MSI domain.
public enum MSIDomainChip: Sendable {
    /// `pci_msi_template.chip` ("PCI-MSI"): masks through the MSI mask register.
    case pciMSI
    /// `pci_msix_template.chip` ("PCI-MSIX"): masks through the entry's vector control.
    case pciMSIX
    /// A device chip (IMS or another device-specific message store).
    case device(any IMSChip)
}

/// `struct msi_domain_template`: what a per-device MSI domain is created from.
public struct MSIDomainTemplate: Sendable {
    /// `chip.name`, e.g. "PCI-MSIX"; the domain is named `<prefix><chipName>-<device>`.
    public var chipName: String
    /// `info.bus_token`.
    public var busToken: IRQDomainBusToken
    /// `info.flags` as the template asks; the parent masks them (`init_dev_msi_info`).
    public var flags: MSIDomainFlags
    /// The chip implementation.
    public var chip: MSIDomainChip
    /// Which `irq_chip` callbacks the chip provides (checked by `pci_create_ims_domain()`).
    public var chipOperations: IRQChipOperations

    /// A template from its parts; see the factory methods for the kernel's templates.
    public init(chipName: String, busToken: IRQDomainBusToken, flags: MSIDomainFlags, chip: MSIDomainChip,
                chipOperations: IRQChipOperations) {
        self.chipName = chipName
        self.busToken = busToken
        self.flags = flags
        self.chip = chip
        self.chipOperations = chipOperations
    }

    /// `MSI_COMMON_FLAGS` of drivers/pci/msi/irqdomain.c: FREE_MSI_DESCS | ACTIVATE_EARLY |
    /// DEV_SYSFS, plus MUST_REACTIVATE with `CONFIG_GENERIC_IRQ_RESERVATION_MODE` (x86).
    public static func pciCommonFlags(reservationMode: Bool) -> MSIDomainFlags {
        var f: MSIDomainFlags = [.freeDescriptors, .activateEarly, .deviceSysfs]
        if reservationMode { f.insert(.mustReactivate) }
        return f
    }

    /// `pci_msi_template`.
    public static func pciMSI(reservationMode: Bool = true) -> MSIDomainTemplate {
        MSIDomainTemplate(chipName: "PCI-MSI", busToken: .pciDeviceMSI,
                          flags: pciCommonFlags(reservationMode: reservationMode).union(.multiPCIMSI),
                          chip: .pciMSI, chipOperations: [.mask, .unmask, .writeMessage])
    }

    /// `pci_msix_template`.
    public static func pciMSIX(reservationMode: Bool = true) -> MSIDomainTemplate {
        MSIDomainTemplate(chipName: "PCI-MSIX", busToken: .pciDeviceMSIX,
                          flags: pciCommonFlags(reservationMode: reservationMode).union([.pciMSIX, .pciMSIXAllocDynamic]),
                          chip: .pciMSIX, chipOperations: [.mask, .unmask, .writeMessage])
    }

    /// An IMS template for `chip`, as a v6.2…v6.9 driver would write it: bus token
    /// PCI_DEVICE_IMS, ALLOC_SIMPLE_MSI_DESCS | FREE_MSI_DESCS (required by
    /// `pci_create_ims_domain()`) plus `extraFlags`, and the chip's callbacks.
    public static func ims(chip: any IMSChip, extraFlags: MSIDomainFlags = []) -> MSIDomainTemplate {
        MSIDomainTemplate(chipName: chip.name, busToken: .pciDeviceIMS,
                          flags: MSIDomainFlags([.allocSimpleDescriptors, .freeDescriptors]).union(extraFlags),
                          chip: .device(chip), chipOperations: chip.operations)
    }
}

/// A per-device MSI domain as created (`struct irq_domain` + `struct msi_domain_info`).
public struct MSIDeviceDomainInfo: Sendable, CustomStringConvertible {
    /// The domain id (`domid`) it occupies on the device.
    public var id: MSIDomainID
    /// `<parent prefix><chip>-<device>`, e.g. "IR-PCI-MSIX-0000:3d:00.0".
    public var name: String
    /// `info->bus_token`.
    public var busToken: IRQDomainBusToken
    /// The flags after the parent's restriction and requirements.
    public var flags: MSIDomainFlags
    /// `info.hwsize`: the index space is 0…hwsize-1.
    public var hwsize: Int
    /// The chip callbacks the template provided.
    public var chipOperations: IRQChipOperations

    /// A human-readable form.
    public var description: String { "\(name) (\(busToken), hwsize \(hwsize), flags \(flags))" }
}

/// The internal domain: its info plus the chip.
struct DeviceDomain: Sendable {
    var info: MSIDeviceDomainInfo
    var chip: MSIDomainChip

    var imsChip: (any IMSChip)? {
        if case .device(let c) = chip { return c }
        return nil
    }
}
