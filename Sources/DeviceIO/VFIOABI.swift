// The VFIO and iommufd uAPI as this package uses it: constants, and the byte layouts of the
// structures (little-endian u32/u64 fields; see include/uapi/linux/vfio.h). Structures are
// built and parsed as byte arrays so the live kernel and the test fake speak the same bytes.
import CMSIShim

/// VFIO uAPI constants (include/uapi/linux/vfio.h), grouped by object.
public enum VFIO {
    /// `VFIO_API_VERSION`: the only version there has ever been.
    public static let apiVersion: Int32 = 0

    /// IOMMU types for `VFIO_CHECK_EXTENSION` / `VFIO_SET_IOMMU`.
    public enum IOMMUType {
        /// `VFIO_TYPE1_IOMMU`.
        public static let type1: UInt = 1
        /// `VFIO_TYPE1v2_IOMMU` (preferred).
        public static let type1v2: UInt = 3
        /// `VFIO_NOIOMMU_IOMMU` (unsafe mode; not used here).
        public static let noIOMMU: UInt = 8
    }

    /// Fixed region indices of a vfio-pci device.
    public enum Region {
        /// `VFIO_PCI_BAR0_REGION_INDEX` (BAR n is n).
        public static let bar0 = 0
        /// `VFIO_PCI_ROM_REGION_INDEX`.
        public static let rom = 6
        /// `VFIO_PCI_CONFIG_REGION_INDEX` (never mmappable).
        public static let config = 7
        /// `VFIO_PCI_VGA_REGION_INDEX`.
        public static let vga = 8
        /// Regions every vfio-pci device reports (BAR0…VGA).
        public static let count = 9
    }

    /// `vfio_region_info.flags`.
    public struct RegionFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `VFIO_REGION_INFO_FLAG_READ`.
        public static let read = RegionFlags(rawValue: 1 << 0)
        /// `VFIO_REGION_INFO_FLAG_WRITE`.
        public static let write = RegionFlags(rawValue: 1 << 1)
        /// `VFIO_REGION_INFO_FLAG_MMAP`.
        public static let mmap = RegionFlags(rawValue: 1 << 2)
        /// `VFIO_REGION_INFO_FLAG_CAPS`: a capability chain follows.
        public static let caps = RegionFlags(rawValue: 1 << 3)
    }

    /// Region-info capability IDs.
    public enum RegionCapability {
        /// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`: the mmappable areas.
        public static let sparseMMap: UInt16 = 1
        /// `VFIO_REGION_INFO_CAP_TYPE`: (type, subtype) of a device-specific region.
        public static let type: UInt16 = 2
        /// `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`: the MSI-X BAR may be mapped whole.
        public static let msixMappable: UInt16 = 3
    }

    /// IRQ indices of a vfio-pci device.
    public enum IRQIndex: Int, Sendable, CaseIterable, CustomStringConvertible {
        /// `VFIO_PCI_INTX_IRQ_INDEX`.
        case intx = 0
        /// `VFIO_PCI_MSI_IRQ_INDEX`.
        case msi = 1
        /// `VFIO_PCI_MSIX_IRQ_INDEX`.
        case msix = 2
        /// `VFIO_PCI_ERR_IRQ_INDEX` (AER error notification, PCIe only).
        case err = 3
        /// `VFIO_PCI_REQ_IRQ_INDEX`: the kernel asks for the device back.
        case req = 4

        public var description: String {
            switch self {
            case .intx: "INTx"
            case .msi: "MSI"
            case .msix: "MSI-X"
            case .err: "ERR"
            case .req: "REQ"
            }
        }
    }

    /// `vfio_irq_info.flags`.
    public struct IRQInfoFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `VFIO_IRQ_INFO_EVENTFD`: signalled through eventfds.
        public static let eventfd = IRQInfoFlags(rawValue: 1 << 0)
        /// `VFIO_IRQ_INFO_MASKABLE` (INTx only on vfio-pci).
        public static let maskable = IRQInfoFlags(rawValue: 1 << 1)
        /// `VFIO_IRQ_INFO_AUTOMASKED`: masked after each interrupt (INTx).
        public static let automasked = IRQInfoFlags(rawValue: 1 << 2)
        /// Growing the number of vectors needs disable + re-enable.
        public static let noResize = IRQInfoFlags(rawValue: 1 << 3)
    }

    /// `vfio_irq_set.flags`: exactly one data type and one action.
    public struct IRQSetFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `VFIO_IRQ_SET_DATA_NONE`: no data (loopback trigger, or disable with count 0).
        public static let dataNone = IRQSetFlags(rawValue: 1 << 0)
        /// `VFIO_IRQ_SET_DATA_BOOL`: one byte per vector.
        public static let dataBool = IRQSetFlags(rawValue: 1 << 1)
        /// `VFIO_IRQ_SET_DATA_EVENTFD`: one s32 fd per vector (−1 removes).
        public static let dataEventfd = IRQSetFlags(rawValue: 1 << 2)
        /// `VFIO_IRQ_SET_ACTION_MASK` (not implemented for MSI/MSI-X by vfio-pci).
        public static let actionMask = IRQSetFlags(rawValue: 1 << 3)
        /// `VFIO_IRQ_SET_ACTION_UNMASK` (not implemented for MSI/MSI-X by vfio-pci).
        public static let actionUnmask = IRQSetFlags(rawValue: 1 << 4)
        /// `VFIO_IRQ_SET_ACTION_TRIGGER`.
        public static let actionTrigger = IRQSetFlags(rawValue: 1 << 5)
        /// `VFIO_IRQ_SET_DATA_TYPE_MASK`.
        public static let dataTypeMask: IRQSetFlags = [.dataNone, .dataBool, .dataEventfd]
        /// `VFIO_IRQ_SET_ACTION_TYPE_MASK`.
        public static let actionTypeMask: IRQSetFlags = [.actionMask, .actionUnmask, .actionTrigger]
    }

    /// `vfio_device_info.flags`.
    public struct DeviceFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `VFIO_DEVICE_FLAGS_RESET`: `VFIO_DEVICE_RESET` works.
        public static let reset = DeviceFlags(rawValue: 1 << 0)
        /// `VFIO_DEVICE_FLAGS_PCI`: a vfio-pci device.
        public static let pci = DeviceFlags(rawValue: 1 << 1)
        /// `VFIO_REGION_INFO_FLAG_CAPS`: a capability chain follows.
        public static let caps = DeviceFlags(rawValue: 1 << 7)
    }

    /// `vfio_group_status.flags`.
    public enum GroupFlags {
        /// `VFIO_GROUP_FLAGS_VIABLE`: every device of the group is usable by userspace.
        public static let viable: UInt32 = 1 << 0
        /// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
        public static let containerSet: UInt32 = 1 << 1
    }

    /// ioctl request numbers (all `_IO(';', n)`).
    public enum Ioctl {
        /// `VFIO_GET_API_VERSION`.
        public static let getAPIVersion = UInt(MSISHIM_VFIO_GET_API_VERSION)
        /// `VFIO_CHECK_EXTENSION`.
        public static let checkExtension = UInt(MSISHIM_VFIO_CHECK_EXTENSION)
        /// `VFIO_SET_IOMMU`.
        public static let setIOMMU = UInt(MSISHIM_VFIO_SET_IOMMU)
        /// `VFIO_GROUP_GET_STATUS`.
        public static let groupGetStatus = UInt(MSISHIM_VFIO_GROUP_GET_STATUS)
        /// `VFIO_GROUP_SET_CONTAINER`.
        public static let groupSetContainer = UInt(MSISHIM_VFIO_GROUP_SET_CONTAINER)
        /// `VFIO_GROUP_UNSET_CONTAINER`.
        public static let groupUnsetContainer = UInt(MSISHIM_VFIO_GROUP_UNSET_CONTAINER)
        /// `VFIO_GROUP_GET_DEVICE_FD`.
        public static let groupGetDeviceFD = UInt(MSISHIM_VFIO_GROUP_GET_DEVICE_FD)
        /// `VFIO_DEVICE_GET_INFO`.
        public static let deviceGetInfo = UInt(MSISHIM_VFIO_DEVICE_GET_INFO)
        /// `VFIO_DEVICE_GET_REGION_INFO`.
        public static let deviceGetRegionInfo = UInt(MSISHIM_VFIO_DEVICE_GET_REGION_INFO)
        /// `VFIO_DEVICE_GET_IRQ_INFO`.
        public static let deviceGetIRQInfo = UInt(MSISHIM_VFIO_DEVICE_GET_IRQ_INFO)
        /// `VFIO_DEVICE_SET_IRQS`.
        public static let deviceSetIRQs = UInt(MSISHIM_VFIO_DEVICE_SET_IRQS)
        /// `VFIO_DEVICE_RESET`.
        public static let deviceReset = UInt(MSISHIM_VFIO_DEVICE_RESET)
        /// `VFIO_DEVICE_BIND_IOMMUFD` (cdev, 6.6+).
        public static let deviceBindIOMMUFD = UInt(MSISHIM_VFIO_DEVICE_BIND_IOMMUFD)
        /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (cdev, 6.6+).
        public static let deviceAttachIOMMUFDPT = UInt(MSISHIM_VFIO_DEVICE_ATTACH_IOMMUFD_PT)
        /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (cdev, 6.6+).
        public static let deviceDetachIOMMUFDPT = UInt(MSISHIM_VFIO_DEVICE_DETACH_IOMMUFD_PT)
        /// `IOMMU_DESTROY` (iommufd).
        public static let iommuDestroy = UInt(MSISHIM_IOMMU_DESTROY)
        /// `IOMMU_IOAS_ALLOC` (iommufd).
        public static let iommuIOASAlloc = UInt(MSISHIM_IOMMU_IOAS_ALLOC)

        /// The ioctl's uAPI name, for messages.
        public static func name(_ request: UInt) -> String {
            switch request {
            case getAPIVersion: "VFIO_GET_API_VERSION"
            case checkExtension: "VFIO_CHECK_EXTENSION"
            case setIOMMU: "VFIO_SET_IOMMU"
            case groupGetStatus: "VFIO_GROUP_GET_STATUS"
            case groupSetContainer: "VFIO_GROUP_SET_CONTAINER"
            case groupUnsetContainer: "VFIO_GROUP_UNSET_CONTAINER"
            case groupGetDeviceFD: "VFIO_GROUP_GET_DEVICE_FD"
            case deviceGetInfo: "VFIO_DEVICE_GET_INFO"
            case deviceGetRegionInfo: "VFIO_DEVICE_GET_REGION_INFO"
            case deviceGetIRQInfo: "VFIO_DEVICE_GET_IRQ_INFO"
            case deviceSetIRQs: "VFIO_DEVICE_SET_IRQS"
            case deviceReset: "VFIO_DEVICE_RESET"
            case deviceBindIOMMUFD: "VFIO_DEVICE_BIND_IOMMUFD"
            case deviceAttachIOMMUFDPT: "VFIO_DEVICE_ATTACH_IOMMUFD_PT"
            case deviceDetachIOMMUFDPT: "VFIO_DEVICE_DETACH_IOMMUFD_PT"
            case iommuDestroy: "IOMMU_DESTROY"
            case iommuIOASAlloc: "IOMMU_IOAS_ALLOC"
            default: "ioctl 0x\(String(request, radix: 16))"
            }
        }
    }

    /// Sizes in bytes of the uAPI structures this package builds and reads (the fields each
    /// holds are listed per size; offsets follow from them, every field being 4 bytes unless noted).
    public enum Layout {
        /// `vfio_group_status`: argsz, flags.
        public static let groupStatusSize = 8
        /// `vfio_device_info`: argsz, flags, num_regions, num_irqs, cap_offset, pad.
        public static let deviceInfoSize = 24
        /// `vfio_region_info`: argsz, flags, index, cap_offset, size (u64), offset (u64).
        public static let regionInfoSize = 32
        /// `vfio_info_cap_header`: id (u16), version (u16), next (u32).
        public static let capHeaderSize = 8
        /// `vfio_region_info_cap_sparse_mmap` up to `areas`: header, nr_areas, reserved.
        public static let sparseHeaderSize = 16
        /// `vfio_region_sparse_mmap_area`: offset (u64), size (u64).
        public static let sparseAreaSize = 16
        /// `vfio_region_info_cap_type`: header, type, subtype.
        public static let capTypeSize = 16
        /// `vfio_irq_info`: argsz, flags, index, count.
        public static let irqInfoSize = 16
        /// `vfio_irq_set` up to `data`: argsz, flags, index, start, count.
        public static let irqSetHeaderSize = 20
        /// `vfio_device_bind_iommufd` (6.6 layout): argsz, flags, iommufd, out_devid.
        public static let bindIOMMUFDSize = 16
        /// `vfio_device_attach_iommufd_pt` (6.6 layout): argsz, flags, pt_id.
        public static let attachPTSize = 12
        /// `iommu_ioas_alloc`: size, flags, out_ioas_id.
        public static let ioasAllocSize = 12
    }
}

// MARK: - Little-endian fields of uAPI structures held as bytes

extension Array where Element == UInt8 {
    /// Throws unless `width` bytes at `offset` lie inside the structure: a field outside it is a
    /// bug in the caller or a malformed kernel reply, never a silent zero.
    func checkField(_ offset: Int, width: Int) throws(DeviceIOError) {
        guard offset >= 0, offset <= count - width else {
            throw .malformedReply(
                "VFIO structure", reason: "a \(width)-byte field at offset \(offset) lies outside its \(count) bytes")
        }
    }

    /// The little-endian 16-bit field at `offset`.
    func field16(at offset: Int) throws(DeviceIOError) -> UInt16 {
        try checkField(offset, width: 2)
        return UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    /// The little-endian 32-bit field at `offset`.
    func field32(at offset: Int) throws(DeviceIOError) -> UInt32 {
        try checkField(offset, width: 4)
        return (0..<4).reduce(UInt32(0)) { v, k in v | UInt32(self[offset + k]) << (8 * UInt32(k)) }
    }

    /// The little-endian 64-bit field at `offset`.
    func field64(at offset: Int) throws(DeviceIOError) -> UInt64 {
        try checkField(offset, width: 8)
        return (0..<8).reduce(UInt64(0)) { v, k in v | UInt64(self[offset + k]) << (8 * UInt64(k)) }
    }

    /// Stores `value` little-endian in the 32-bit field at `offset`; nothing is written when the
    /// field does not fit.
    mutating func setField32(_ value: UInt32, at offset: Int) throws(DeviceIOError) {
        try checkField(offset, width: 4)
        for k in 0..<4 { self[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }
}

extension SystemCalls {
    /// ioctl with a structure built as bytes: the bytes are copied into aligned memory, passed,
    /// and copied back (the kernel writes replies into the same structure).
    func ioctl(_ fd: Int32, _ request: UInt, bytes: inout [UInt8]) throws(SyscallError) -> Int32 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(bytes.count, 8), alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        buffer.copyBytes(from: bytes)
        let r = try ioctl(fd, request, pointer: buffer.baseAddress)
        bytes = Array(buffer.prefix(bytes.count))
        return r
    }
}
