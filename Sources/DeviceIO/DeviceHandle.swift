// One entry point for upper layers: open a PCI function through whichever backend its
// driver allows, and get its config space, BARs and MSI-X layout with the write policy
// applied.
public import MSIShimCore

/// An opened PCI function: config space, BARs, MSI-X layout, and the write decision.
///
/// ```swift
/// let dev = try DeviceHandle.open(address, intent: .allowWrites)
/// let layout = try dev.msixLayout()            // validated table/PBA placement, or nil
/// let bar = try dev.bar(layout!.tableBAR)      // any MMIORegion
/// try bar.write32(layout!.tableOffset + 12, 1) // throws notWritable unless vfio-pci/uio + allowWrites
/// ```
public struct DeviceHandle: Sendable {
    /// Which kernel interface a handle uses.
    public enum Backend: Sendable, Hashable, CustomStringConvertible {
        /// VFIO (group or cdev flow).
        case vfio(VFIODevice.Flow)
        /// UIO (`uioX`) for BARs it maps, sysfs `resourceN` for the rest; sysfs `config`.
        case uio(String)
        /// sysfs `config` and `resourceN` (read-only unless bound to a userspace driver).
        case sysfs

        public var description: String {
            switch self {
            case .vfio(let flow): "vfio (\(flow))"
            case .uio(let name): "uio (\(name)) + sysfs"
            case .sysfs: "sysfs"
            }
        }
    }

    /// What to open with.
    public enum Choice: Sendable, Hashable {
        /// VFIO for vfio-pci, UIO for uio_pci_generic, sysfs otherwise.
        case automatic
        /// VFIO with the given flow (the device must be bound to vfio-pci).
        case vfio(VFIODevice.Flow)
        /// UIO (the device must have a UIO device).
        case uio
        /// sysfs `config` and `resourceN`.
        case sysfs
    }

    /// The function.
    public let address: PCIAddress
    /// The backend in use.
    public let backend: Backend
    /// The driver bound at open time.
    public let driver: String?
    /// Config space (`ConfigSpaceAccess`), writable per ``permission``.
    public let config: any ConfigSpaceAccess
    /// The write decision (granted only for vfio-pci / uio_pci_generic with write intent).
    public let permission: WritePermission
    /// The VFIO device, when the backend is VFIO (for interrupts and region details).
    public let vfio: VFIODevice?
    /// The UIO device, when the backend is UIO.
    public let uio: UIODevice?
    let intent: WriteIntent
    let environment: DeviceIOEnvironment

    /// Opens `address`. The driver is checked here; writes are possible only with
    /// `.allowWrites` on a device bound to vfio-pci or uio_pci_generic.
    public static func open(
        _ address: PCIAddress, using choice: Choice = .automatic, intent: WriteIntent = .readOnly,
        environment: DeviceIOEnvironment = .live
    ) throws -> DeviceHandle {
        let sysfs = environment.sysfs
        guard sysfs.exists(address) else { throw DeviceIOError.noSuchDevice(address) }
        let driver = sysfs.driver(of: address)
        var resolved = choice
        if choice == .automatic {
            switch driver {
            case "vfio-pci": resolved = .vfio(.automatic)
            case "uio_pci_generic": resolved = .uio
            default: resolved = .sysfs
            }
        }
        switch resolved {
        case .vfio(let flow):
            let device = try VFIODevice.open(address, flow: flow, intent: intent, environment: environment)
            return DeviceHandle(
                address: address, backend: .vfio(device.flow), driver: driver, config: try device.configSpace(),
                permission: device.permission, vfio: device, uio: nil, intent: intent, environment: environment)
        case .uio:
            let uio = try UIODevice(address, environment: environment)
            let config = try SysfsConfigSpace(address: address, environment: environment, intent: intent)
            return DeviceHandle(
                address: address, backend: .uio(uio.uioName), driver: driver, config: config,
                permission: config.permission, vfio: nil, uio: uio, intent: intent, environment: environment)
        case .sysfs, .automatic:
            let config = try SysfsConfigSpace(address: address, environment: environment, intent: intent)
            return DeviceHandle(
                address: address, backend: .sysfs, driver: driver, config: config, permission: config.permission,
                vfio: nil, uio: nil, intent: intent, environment: environment)
        }
    }

    /// Whether writes can reach the device.
    public var isWritable: Bool { permission.isGranted }

    /// The six BARs (sysfs `resource`, or VFIO region sizes with the BAR registers).
    public func bars() throws -> [PCIBAR] {
        if let vfio { return try vfio.bars() }
        guard let bars = PCIBAR.fromSysfs(address, sysfs: environment.sysfs) else {
            throw DeviceIOError.noSuchDevice(address)
        }
        return bars
    }

    /// The validated MSI-X layout, or nil without an MSI-X capability. Throws
    /// `MSIXLayoutError` for an unusable layout (reserved BIR, past the BAR end, overlap…).
    public func msixLayout() throws -> MSIXLayout? {
        guard let cap = try config.capabilityList().first(PCICapabilityID.msix) else { return nil }
        return try MSIXLayout.validate(MSIXCapability(config: config, at: cap.offset), bars: bars())
    }

    /// BAR `index` as an `MMIORegion`. UIO falls back to sysfs `resourceN`
    /// when the UIO device does not map that BAR.
    public func bar(_ index: Int) throws -> any MMIORegion {
        if let vfio { return try vfio.bar(index) }
        if let uio {
            do {
                return try uio.mapBAR(index, intent: intent)
            } catch DeviceIOError.uioNoMaps, DeviceIOError.uioBARNotMapped {
                return try SysfsBAR.map(address, bar: index, intent: intent, environment: environment)
            }
        }
        return try SysfsBAR.map(address, bar: index, intent: intent, environment: environment)
    }
}

/// The BAR region holding the MSI-X table, and whether reads through it show the real table.
public struct MSIXTableAccess: Sendable {
    /// The region of the table's BAR (table at `layout.tableOffset`).
    public let region: any MMIORegion
    /// The layout it was opened for.
    public let layout: MSIXLayout
    /// True when the table is mapped (sysfs, UIO, or a VFIO mapping); false when VFIO reaches
    /// it through pread/pwrite, where vfio-pci returns 0xFF bytes and drops writes.
    public let isReal: Bool
    /// A sentence explaining `isReal`.
    public let note: String
}

extension DeviceHandle {
    /// Opens the BAR of the MSI-X table and says whether the real table is visible.
    ///
    /// Through VFIO the table is real only when vfio-pci lets the BAR be mapped over it
    /// (`MSIX_MAPPABLE`, or a sparse area covering it); otherwise reads return all-ones and
    /// the table can only be inspected through sysfs `resourceN` (as root, on a kernel that has
    /// those files). With VFIO, vfio-pci owns the table's programming (SET_IRQS) either way.
    public func msixTable(_ layout: MSIXLayout) throws -> MSIXTableAccess {
        let region = try bar(layout.tableBAR)
        guard let vfioBAR = region as? VFIOBARRegion else {
            return MSIXTableAccess(region: region, layout: layout, isReal: true, note: "the table's BAR is mapped directly")
        }
        let real = vfioBAR.isMapped(layout.tableRange)
        let note = real
            ? "vfio-pci maps the table's pages (\(vfioBAR.plan.explanation))"
            : "vfio-pci does not map the table's pages: reads through pread return 0xFF bytes and writes are "
                + "dropped (\(vfioBAR.plan.explanation)); read the real table through sysfs resource\(layout.tableBAR)"
        return MSIXTableAccess(region: region, layout: layout, isReal: real, note: note)
    }
}
