// A PCI function opened through VFIO: the legacy group/container flow or the per-device
// cdev + iommufd flow (Linux 6.6+), device and region info (with the capability chain and
// the argsz re-query), and the config region.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore
import PCIAccess

/// `VFIO_DEVICE_GET_INFO`.
public struct VFIODeviceInfo: Hashable, Sendable {
    /// `flags` (PCI, RESET, CAPS).
    public var flags: VFIO.DeviceFlags
    /// `num_regions`: highest region index + 1 (9 or more for vfio-pci).
    public var regionCount: Int
    /// `num_irqs`: highest IRQ index + 1 (5 for vfio-pci: INTx, MSI, MSI-X, ERR, REQ).
    public var irqCount: Int
}

/// `VFIO_DEVICE_GET_REGION_INFO` with its capabilities decoded.
public struct VFIORegionInfo: Hashable, Sendable {
    /// Region index (BAR0…5, ROM 6, CONFIG 7, VGA 8).
    public var index: Int
    /// READ, WRITE, MMAP, CAPS.
    public var flags: VFIO.RegionFlags
    /// Size in bytes (0 = not implemented).
    public var size: UInt64
    /// Offset of the region in the device file (for pread/pwrite/mmap).
    public var offset: UInt64
    /// `SPARSE_MMAP` areas (region-relative), or nil when the capability is absent.
    public var sparseAreas: [Range<UInt64>]?
    /// `MSIX_MAPPABLE`: the MSI-X BAR may be mmapped whole (MSI-X itself still goes through
    /// SET_IRQS).
    public var msixMappable: Bool
    /// `TYPE` capability: (type, subtype), for device-specific regions.
    public var type: (type: UInt32, subtype: UInt32)?
    /// IDs of capabilities this package does not decode.
    public var otherCapabilities: [UInt16]

    /// Creates region info (the fake kernel's tests build these).
    public init(
        index: Int, flags: VFIO.RegionFlags, size: UInt64, offset: UInt64, sparseAreas: [Range<UInt64>]? = nil,
        msixMappable: Bool = false, type: (type: UInt32, subtype: UInt32)? = nil, otherCapabilities: [UInt16] = []
    ) {
        self.index = index
        self.flags = flags
        self.size = size
        self.offset = offset
        self.sparseAreas = sparseAreas
        self.msixMappable = msixMappable
        self.type = type
        self.otherCapabilities = otherCapabilities
    }

    public static func == (a: VFIORegionInfo, b: VFIORegionInfo) -> Bool {
        a.index == b.index && a.flags == b.flags && a.size == b.size && a.offset == b.offset
            && a.sparseAreas == b.sparseAreas && a.msixMappable == b.msixMappable && a.type?.type == b.type?.type
            && a.type?.subtype == b.type?.subtype && a.otherCapabilities == b.otherCapabilities
    }

    public func hash(into h: inout Hasher) {
        h.combine(index)
        h.combine(offset)
        h.combine(size)
    }

    /// Decodes a reply of `VFIO_DEVICE_GET_REGION_INFO` (`bytes` = the whole argsz buffer),
    /// walking the capability chain with loop and bounds guards.
    static func parse(_ bytes: [UInt8], context: String) throws(DeviceIOError) -> VFIORegionInfo {
        let ioctl = "VFIO_DEVICE_GET_REGION_INFO"
        guard bytes.count >= VFIO.Layout.regionInfoSize else {
            throw .malformedReply(ioctl, reason: "\(context): reply shorter than the structure")
        }
        var info = VFIORegionInfo(
            index: Int(try bytes.field32(at: 8)), flags: VFIO.RegionFlags(rawValue: try bytes.field32(at: 4)),
            size: try bytes.field64(at: 16), offset: try bytes.field64(at: 24))
        let capOffset = Int(try bytes.field32(at: 12))
        guard info.flags.contains(.caps), capOffset != 0 else { return info }
        var at = capOffset
        var visited = Set<Int>()
        while at != 0 {
            guard at >= VFIO.Layout.regionInfoSize, at + VFIO.Layout.capHeaderSize <= bytes.count else {
                throw .malformedReply(
                    ioctl, reason: "\(context): capability at 0x\(hex(at, width: 1)) lies outside the "
                        + "\(bytes.count)-byte reply")
            }
            guard visited.insert(at).inserted, visited.count <= 64 else {
                throw .malformedReply(ioctl, reason: "\(context): capability chain loops at 0x\(hex(at, width: 1))")
            }
            let id = try bytes.field16(at: at)
            switch id {
            case VFIO.RegionCapability.sparseMMap:
                guard at + VFIO.Layout.sparseHeaderSize <= bytes.count else {
                    throw .malformedReply(ioctl, reason: "\(context): SPARSE_MMAP header leaves the reply")
                }
                let n = Int(try bytes.field32(at: at + 8))
                let areasAt = at + VFIO.Layout.sparseHeaderSize
                guard n <= 4096, areasAt + n * VFIO.Layout.sparseAreaSize <= bytes.count else {
                    throw .malformedReply(ioctl, reason: "\(context): SPARSE_MMAP lists \(n) areas past the reply")
                }
                var areas: [Range<UInt64>] = []
                for k in 0..<n {
                    let o = try bytes.field64(at: areasAt + k * VFIO.Layout.sparseAreaSize)
                    let s = try bytes.field64(at: areasAt + k * VFIO.Layout.sparseAreaSize + 8)
                    if s != 0 && !o.addingReportingOverflow(s).overflow { areas.append(o..<(o + s)) }
                }
                info.sparseAreas = areas
            case VFIO.RegionCapability.type:
                guard at + VFIO.Layout.capTypeSize <= bytes.count else {
                    throw .malformedReply(ioctl, reason: "\(context): TYPE capability leaves the reply")
                }
                info.type = (try bytes.field32(at: at + 8), try bytes.field32(at: at + 12))
            case VFIO.RegionCapability.msixMappable:
                info.msixMappable = true
            default:
                info.otherCapabilities.append(id)
            }
            at = Int(try bytes.field32(at: at + 4))
        }
        return info
    }
}

/// `VFIO_DEVICE_GET_IRQ_INFO`.
public struct VFIOIRQInfo: Hashable, Sendable {
    /// The IRQ index asked about.
    public var index: VFIO.IRQIndex
    /// EVENTFD, MASKABLE, AUTOMASKED, NORESIZE.
    public var flags: VFIO.IRQInfoFlags
    /// Vectors the index supports (0 = the device lacks it).
    public var count: Int
}

/// A PCI function opened through VFIO.
///
/// Open it with ``open(_:flow:intent:environment:)``; then read ``info``, get the config space
/// (``configSpace()``), BAR regions (``bar(_:msix:)``), the MSI-X layout (``msixLayout()``) and
/// interrupts (`VFIOInterrupts.swift`). The descriptors close when the object is released
/// (device first, then group and container, or iommufd).
///
/// Writes (config, BAR stores) are allowed only when opened with ``WriteIntent/allowWrites``:
/// being bound to vfio-pci is necessary (VFIO cannot open anything else) but not sufficient.
public final class VFIODevice: Sendable {
    /// How the device was reached.
    public enum Flow: Sendable, Hashable, CustomStringConvertible {
        /// Try the cdev flow when sysfs lists a `vfio-dev/` node, falling back to the group
        /// flow when the cdev or `/dev/iommu` is missing.
        case automatic
        /// `/dev/vfio/vfio` + `/dev/vfio/<group>`.
        case group
        /// `/dev/vfio/devices/vfioX` + `/dev/iommu` (Linux 6.6+).
        case cdev

        public var description: String {
            switch self {
            case .automatic: "automatic"
            case .group: "group/container"
            case .cdev: "cdev/iommufd"
            }
        }
    }

    /// The function.
    public let address: PCIAddress
    /// The flow actually used (never `.automatic`).
    public let flow: Flow
    /// The IOMMU group number (group flow), when known.
    public let group: Int?
    /// `VFIO_DEVICE_GET_INFO`.
    public let info: VFIODeviceInfo
    /// The write decision taken at open time.
    public let permission: WritePermission
    /// The IOMMU type set on the container (group flow).
    public let iommuType: UInt?
    let deviceFD: Int32
    /// Descriptors closed after the device fd (group, container / iommufd), in order.
    let auxiliaryFDs: [Int32]
    let environment: DeviceIOEnvironment
    let irqState = PackageMutex(InterruptState())

    var syscalls: any SystemCalls { environment.syscalls }

    init(
        address: PCIAddress, flow: Flow, group: Int?, deviceFD: Int32, auxiliaryFDs: [Int32], iommuType: UInt?,
        permission: WritePermission, environment: DeviceIOEnvironment
    ) throws(DeviceIOError) {
        self.address = address
        self.flow = flow
        self.group = group
        self.deviceFD = deviceFD
        self.auxiliaryFDs = auxiliaryFDs
        self.iommuType = iommuType
        self.permission = permission
        self.environment = environment
        var bytes = [UInt8](repeating: 0, count: VFIO.Layout.deviceInfoSize)
        let flags: VFIO.DeviceFlags
        do throws(DeviceIOError) {
            try bytes.setField32(UInt32(VFIO.Layout.deviceInfoSize), at: 0)
            do {
                _ = try environment.syscalls.ioctl(deviceFD, VFIO.Ioctl.deviceGetInfo, bytes: &bytes)
            } catch {
                throw DeviceIOError.ioctlFailed("VFIO_DEVICE_GET_INFO", errno: error.code, context: "\(address)")
            }
            flags = VFIO.DeviceFlags(rawValue: try bytes.field32(at: 4))
            self.info = VFIODeviceInfo(
                flags: flags, regionCount: Int(try bytes.field32(at: 8)), irqCount: Int(try bytes.field32(at: 12)))
        } catch {
            VFIODevice.closeAll([deviceFD] + auxiliaryFDs, environment.syscalls)
            throw error
        }
        guard flags.contains(.pci), info.regionCount > VFIO.Region.config else {
            VFIODevice.closeAll([deviceFD] + auxiliaryFDs, environment.syscalls)
            throw .malformedReply(
                "VFIO_DEVICE_GET_INFO", reason: "\(address) is not a vfio-pci device (flags 0x\(hex(flags.rawValue, width: 1)), "
                    + "\(info.regionCount) regions)")
        }
    }

    deinit {
        // Dropping the eventfds' registrations is the kernel's job when the device fd closes.
        VFIODevice.closeAll([deviceFD] + auxiliaryFDs, syscalls)
    }

    static func closeAll(_ fds: [Int32], _ syscalls: any SystemCalls) {
        for fd in fds { syscalls.close(fd) }
    }

    // MARK: - Opening

    /// Opens `address` through VFIO.
    ///
    /// Checks, before touching `/dev`, that the function exists and is bound to vfio-pci.
    /// The group flow then: opens the container, checks `VFIO_GET_API_VERSION`, picks TYPE1v2
    /// (or TYPE1) with `VFIO_CHECK_EXTENSION`, opens the group, requires it to be viable (the
    /// error names every other member bound to a kernel driver), attaches it to the container,
    /// sets the IOMMU and asks for the device fd. The cdev flow opens
    /// `/dev/vfio/devices/vfioX` (from sysfs `vfio-dev/`), binds it to a fresh iommufd,
    /// allocates an IOAS and attaches the device to it.
    ///
    /// `environment` says where sysfs and `/dev` are (``DeviceIOEnvironment/live`` for the
    /// running system); there is no default, so a caller always knows which tree it opens.
    public static func open(
        _ address: PCIAddress, flow: Flow = .automatic, intent: WriteIntent = .readOnly,
        environment: DeviceIOEnvironment
    ) throws(DeviceIOError) -> VFIODevice {
        let sysfs = environment.sysfs
        guard sysfs.exists(address) else { throw .noSuchDevice(address) }
        let driver = sysfs.driver(of: address)
        guard driver == "vfio-pci" else { throw .wrongDriver(address, driver: driver, needed: "vfio-pci") }
        let permission = WritePolicy.evaluate(driver: driver, intent: intent, address: address)
        switch flow {
        case .group:
            return try openGroupFlow(address, permission: permission, environment: environment)
        case .cdev:
            return try openCdevFlow(address, permission: permission, environment: environment)
        case .automatic:
            if cdevName(address, sysfs: sysfs) != nil {
                do {
                    return try openCdevFlow(address, permission: permission, environment: environment)
                } catch .noDeviceCdev {
                    // No /dev/iommu or no cdev node: the group flow may still work.
                }
            }
            return try openGroupFlow(address, permission: permission, environment: environment)
        }
    }

    /// The `vfioX` name under `<device>/vfio-dev/`, if the kernel has device cdevs.
    public static func cdevName(_ address: PCIAddress, sysfs: SysfsPCI) -> String? {
        listDirectory(sysfs.devicePath(address) + "/vfio-dev").filter { $0.hasPrefix("vfio") }.sorted().first
    }

    static func openGroupFlow(
        _ address: PCIAddress, permission: WritePermission, environment: DeviceIOEnvironment
    ) throws(DeviceIOError) -> VFIODevice {
        let sysfs = environment.sysfs
        let sys = environment.syscalls
        guard let group = sysfs.iommuGroup(of: address) else {
            throw .noIOMMU(
                address, reason: "it has no iommu_group: the kernel runs without an IOMMU (boot with intel_iommu=on "
                    + "or amd_iommu=on; a QEMU guest needs -device intel-iommu)")
        }
        let containerPath = environment.vfioContainerPath
        let container: Int32
        do {
            container = try sys.open(containerPath, flags: O_RDWR)
        } catch {
            if error.code == ENOENT {
                throw .vfioUnavailable(reason: "no \(containerPath): load the modules (modprobe vfio-pci)")
            }
            throw .from(error, path: containerPath, operation: "open")
        }
        // In closing order, as `deinit` closes them: the group (inserted in front once open),
        // then the container.
        var fds: [Int32] = [container]
        func fail(_ e: DeviceIOError) -> DeviceIOError {
            closeAll(fds, sys)
            return e
        }
        do {
            let version = try sys.ioctl(container, VFIO.Ioctl.getAPIVersion, pointer: nil)
            guard version == VFIO.apiVersion else {
                throw fail(.vfioUnavailable(reason: "VFIO API version \(version), this package speaks \(VFIO.apiVersion)"))
            }
        } catch let e as DeviceIOError {
            throw e
        } catch {
            throw fail(.ioctlFailed("VFIO_GET_API_VERSION", errno: (error as? SyscallError)?.code ?? EIO, context: ""))
        }
        var iommuType: UInt = 0
        for type in [VFIO.IOMMUType.type1v2, VFIO.IOMMUType.type1] {
            if let r = try? sys.ioctl(container, VFIO.Ioctl.checkExtension, value: type), r > 0 {
                iommuType = type
                break
            }
        }
        guard iommuType != 0 else {
            throw fail(.noIOMMU(address, reason: "the VFIO container supports neither TYPE1v2 nor TYPE1 (is "
                + "vfio_iommu_type1 loaded? no-IOMMU mode is not supported)"))
        }
        let groupPath = environment.vfioGroupPath(group)
        let groupFD: Int32
        do {
            groupFD = try sys.open(groupPath, flags: O_RDWR)
        } catch {
            switch error.code {
            case ENOENT: throw fail(.vfioUnavailable(reason: "no \(groupPath) although \(address) is bound to vfio-pci"))
            case EBUSY: throw fail(.groupBusy(group: group))
            default: throw fail(.from(error, path: groupPath, operation: "open"))
            }
        }
        fds.insert(groupFD, at: 0)
        var status = [UInt8](repeating: 0, count: VFIO.Layout.groupStatusSize)
        let groupFlags: UInt32
        do throws(DeviceIOError) {
            try status.setField32(UInt32(VFIO.Layout.groupStatusSize), at: 0)
            do {
                _ = try sys.ioctl(groupFD, VFIO.Ioctl.groupGetStatus, bytes: &status)
            } catch {
                throw DeviceIOError.ioctlFailed("VFIO_GROUP_GET_STATUS", errno: error.code, context: "group \(group)")
            }
            groupFlags = try status.field32(at: 4)
        } catch {
            throw fail(error)
        }
        guard groupFlags & VFIO.GroupFlags.viable != 0 else {
            var blockers = sysfs.vfioGroupBlockers(of: address)
            if blockers.isEmpty {
                blockers = sysfs.iommuGroupMembers(of: address).filter { $0 != address }
                    .map { GroupMember(address: $0, driver: sysfs.driver(of: $0)) }
            }
            throw fail(.groupNotViable(group: group, device: address, blockers: blockers))
        }
        var containerArg = container
        do {
            _ = try withUnsafeMutableBytes(of: &containerArg) { p throws(SyscallError) in
                try sys.ioctl(groupFD, VFIO.Ioctl.groupSetContainer, pointer: p.baseAddress)
            }
            _ = try sys.ioctl(container, VFIO.Ioctl.setIOMMU, value: iommuType)
        } catch {
            throw fail(.ioctlFailed("VFIO_GROUP_SET_CONTAINER/VFIO_SET_IOMMU", errno: error.code, context: "group \(group)"))
        }
        var name = Array(address.description.utf8CString).map { UInt8(bitPattern: $0) }
        let deviceFD: Int32
        do {
            deviceFD = try sys.ioctl(groupFD, VFIO.Ioctl.groupGetDeviceFD, bytes: &name)
        } catch {
            throw fail(.ioctlFailed("VFIO_GROUP_GET_DEVICE_FD", errno: error.code, context: "\(address) in group \(group)"))
        }
        return try VFIODevice(
            address: address, flow: .group, group: group, deviceFD: deviceFD, auxiliaryFDs: fds, iommuType: iommuType,
            permission: permission, environment: environment)
    }

    static func openCdevFlow(
        _ address: PCIAddress, permission: WritePermission, environment: DeviceIOEnvironment
    ) throws(DeviceIOError) -> VFIODevice {
        let sys = environment.syscalls
        guard let cdev = cdevName(address, sysfs: environment.sysfs) else {
            throw .noDeviceCdev(
                address, reason: "no vfio-dev/ directory in sysfs: the kernel is older than 6.6 or built without "
                    + "CONFIG_VFIO_DEVICE_CDEV; use the group flow")
        }
        let cdevPath = environment.vfioDeviceCdevPath(cdev)
        let deviceFD: Int32
        do {
            deviceFD = try sys.open(cdevPath, flags: O_RDWR)
        } catch {
            if error.code == ENOENT {
                // Linux 6.1-6.5 list vfio-dev/vfioX in sysfs (a class device) without any cdev.
                throw .noDeviceCdev(
                    address, reason: "no \(cdevPath): sysfs lists vfio-dev/\(cdev) (Linux 6.1+ does), but the kernel "
                        + "has no VFIO device cdevs (Linux 6.6+ with CONFIG_VFIO_DEVICE_CDEV; or devtmpfs is not "
                        + "mounted); use the group flow")
            }
            throw .from(error, path: cdevPath, operation: "open")
        }
        let iommufd: Int32
        do {
            iommufd = try sys.open(environment.iommufdPath, flags: O_RDWR)
        } catch {
            sys.close(deviceFD)
            if error.code == ENOENT {
                throw .noDeviceCdev(address, reason: "no \(environment.iommufdPath): the kernel has no iommufd "
                    + "(CONFIG_IOMMUFD); use the group flow")
            }
            throw .from(error, path: environment.iommufdPath, operation: "open")
        }
        func fail(_ e: DeviceIOError) -> DeviceIOError {
            closeAll([deviceFD, iommufd], sys)
            return e
        }
        do throws(DeviceIOError) {
            var bind = [UInt8](repeating: 0, count: VFIO.Layout.bindIOMMUFDSize)
            try bind.setField32(UInt32(VFIO.Layout.bindIOMMUFDSize), at: 0)
            try bind.setField32(UInt32(bitPattern: iommufd), at: 8)
            do {
                _ = try sys.ioctl(deviceFD, VFIO.Ioctl.deviceBindIOMMUFD, bytes: &bind)
            } catch {
                throw DeviceIOError.ioctlFailed("VFIO_DEVICE_BIND_IOMMUFD", errno: error.code, context: "\(cdevPath)")
            }
            var alloc = [UInt8](repeating: 0, count: VFIO.Layout.ioasAllocSize)
            try alloc.setField32(UInt32(VFIO.Layout.ioasAllocSize), at: 0)
            do {
                _ = try sys.ioctl(iommufd, VFIO.Ioctl.iommuIOASAlloc, bytes: &alloc)
            } catch {
                throw DeviceIOError.ioctlFailed("IOMMU_IOAS_ALLOC", errno: error.code, context: environment.iommufdPath)
            }
            let ioas = try alloc.field32(at: 8)
            var attach = [UInt8](repeating: 0, count: VFIO.Layout.attachPTSize)
            try attach.setField32(UInt32(VFIO.Layout.attachPTSize), at: 0)
            try attach.setField32(ioas, at: 8)
            do {
                _ = try sys.ioctl(deviceFD, VFIO.Ioctl.deviceAttachIOMMUFDPT, bytes: &attach)
            } catch {
                throw DeviceIOError.ioctlFailed(
                    "VFIO_DEVICE_ATTACH_IOMMUFD_PT", errno: error.code,
                    context: "IOAS \(ioas)" + (error.code == EBUSY ? ", device resetting" : ""))
            }
        } catch {
            throw fail(error)
        }
        return try VFIODevice(
            address: address, flow: .cdev, group: environment.sysfs.iommuGroup(of: address), deviceFD: deviceFD,
            auxiliaryFDs: [iommufd], iommuType: nil, permission: permission, environment: environment)
    }

    // MARK: - Regions

    /// `VFIO_DEVICE_GET_REGION_INFO` for `index`, re-issued with the size the kernel asks for
    /// when the capabilities do not fit (as often as needed, up to 8 times, while the size
    /// grows; a size that keeps growing is a malformed reply).
    public func regionInfo(_ index: Int) throws(DeviceIOError) -> VFIORegionInfo {
        var argsz = VFIO.Layout.regionInfoSize
        for _ in 0..<8 {
            var bytes = [UInt8](repeating: 0, count: argsz)
            try bytes.setField32(UInt32(argsz), at: 0)
            try bytes.setField32(UInt32(index), at: 8)
            do {
                _ = try syscalls.ioctl(deviceFD, VFIO.Ioctl.deviceGetRegionInfo, bytes: &bytes)
            } catch {
                throw .ioctlFailed("VFIO_DEVICE_GET_REGION_INFO", errno: error.code, context: "\(address) region \(index)")
            }
            let wanted = Int(try bytes.field32(at: 0))
            let flags = VFIO.RegionFlags(rawValue: try bytes.field32(at: 4))
            if flags.contains(.caps) && wanted > argsz {
                guard wanted <= 1 << 20 else {
                    throw .malformedReply(
                        "VFIO_DEVICE_GET_REGION_INFO", reason: "region \(index): argsz \(wanted) is implausibly large")
                }
                argsz = wanted
                continue
            }
            return try VFIORegionInfo.parse(bytes, context: "\(address) region \(index)")
        }
        throw .malformedReply("VFIO_DEVICE_GET_REGION_INFO", reason: "region \(index): argsz keeps growing")
    }

    /// The config region as a `ConfigSpaceAccess` (pread/pwrite at the region
    /// offset; vfio-pci virtualizes parts of it). Writable only with write intent.
    public func configSpace() throws(DeviceIOError) -> VFIOConfigSpace {
        let region = try regionInfo(VFIO.Region.config)
        return VFIOConfigSpace(device: self, region: region)
    }

    /// The six BARs, decoded from the config BAR registers with the sizes VFIO reports.
    public func bars() throws -> [PCIBAR] {
        let config = try configSpace()
        let registers = try PCIBAR.registers(from: config)
        let sizes = try (0..<6).map { i throws(DeviceIOError) in try regionInfo(i).size }
        return PCIBAR.decode(registers: registers, sizes: sizes)
    }

    /// The validated MSI-X layout, or nil when the function has no MSI-X capability.
    public func msixLayout() throws -> MSIXLayout? {
        let config = try configSpace()
        guard let cap = try config.capabilityList().first(PCICapabilityID.msix) else { return nil }
        return try MSIXLayout.validate(MSIXCapability(config: config, at: cap.offset), bars: bars())
    }

    /// `VFIO_DEVICE_RESET` (function-level reset), when the device supports it.
    public func reset() throws(DeviceIOError) {
        guard info.flags.contains(.reset) else {
            throw .ioctlFailed("VFIO_DEVICE_RESET", errno: ENOTTY, context: "\(address) does not support reset")
        }
        do {
            _ = try syscalls.ioctl(deviceFD, VFIO.Ioctl.deviceReset, pointer: nil)
        } catch {
            throw .ioctlFailed("VFIO_DEVICE_RESET", errno: error.code, context: "\(address)")
        }
    }
}

/// The VFIO config region of a device as config space.
public struct VFIOConfigSpace: ConfigSpaceAccess {
    /// The device (kept alive by this value).
    public let device: VFIODevice
    /// The config region's info.
    public let region: VFIORegionInfo
    let io: PositionalConfigIO

    init(device: VFIODevice, region: VFIORegionInfo) {
        self.device = device
        self.region = region
        self.io = PositionalConfigIO(
            fd: device.deviceFD, base: Int64(region.offset), size: Int(region.size),
            name: "\(device.address) config (vfio)", syscalls: device.syscalls)
    }

    public var name: String { io.name }
    public var readableSize: Int { io.size }
    public var isWritable: Bool { device.permission.isGranted }

    public func read8(_ offset: Int) throws -> UInt8 { UInt8(truncatingIfNeeded: try io.load(offset, width: 1)) }
    public func read16(_ offset: Int) throws -> UInt16 { UInt16(truncatingIfNeeded: try io.load(offset, width: 2)) }
    public func read32(_ offset: Int) throws -> UInt32 { try io.load(offset, width: 4) }

    public func write8(_ offset: Int, _ value: UInt8) throws { try checkWrite(); try io.store(offset, width: 1, UInt32(value)) }
    public func write16(_ offset: Int, _ value: UInt16) throws { try checkWrite(); try io.store(offset, width: 2, UInt32(value)) }
    public func write32(_ offset: Int, _ value: UInt32) throws { try checkWrite(); try io.store(offset, width: 4, value) }

    private func checkWrite() throws(DeviceAccessError) {
        if let reason = device.permission.reason { throw DeviceAccessError.notWritable(name, reason: reason) }
    }
}
