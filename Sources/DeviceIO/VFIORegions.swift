// BARs through VFIO: decide what can be mmapped (whole BAR, the kernel's sparse areas, or
// everything around the page-aligned MSI-X table, as DPDK does), map it, and reach the rest
// with pread/pwrite on the device fd.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// Which parts of a VFIO BAR region get mmapped, and why.
public struct VFIOMappingPlan: Hashable, Sendable, CustomStringConvertible {
    /// How the areas were chosen.
    public enum Strategy: Hashable, Sendable {
        /// The whole BAR is one mapping.
        case whole
        /// The kernel's `SPARSE_MMAP` areas.
        case sparse
        /// The BAR minus the pages of the MSI-X table (no `MSIX_MAPPABLE`).
        case aroundMSIXTable
        /// Nothing is mapped; every access uses pread/pwrite.
        case none
    }

    /// How the areas were chosen.
    public var strategy: Strategy
    /// BAR-relative byte ranges to map (each mapping is rounded up to whole pages).
    public var areas: [Range<Int>]
    /// A sentence saying why.
    public var explanation: String

    public var description: String { explanation }

    /// The plan for `region` when the MSI-X table (if this BAR holds it) occupies `msixTable`.
    ///
    /// Order of decisions: no size → nothing; no `MMAP` flag → nothing (pread/pwrite only);
    /// `SPARSE_MMAP` → exactly the listed areas; MSI-X table here without `MSIX_MAPPABLE` →
    /// the two pieces around the table's pages (none if the table's pages cover the BAR from
    /// offset 0; no second piece if they run to or past the BAR end); otherwise the whole BAR.
    public static func make(region: VFIORegionInfo, msixTable: Range<Int>?, pageSize: Int = systemPageSize) -> VFIOMappingPlan {
        let size = Int(clamping: region.size)
        guard size > 0 else { return VFIOMappingPlan(strategy: .none, areas: [], explanation: "region not implemented") }
        guard region.flags.contains(.mmap) else {
            return VFIOMappingPlan(
                strategy: .none, areas: [],
                explanation: "vfio-pci does not allow mmap of this region (I/O BAR, or a sub-page BAR); "
                    + "all accesses use pread/pwrite")
        }
        let mask = pageSize - 1
        if let sparse = region.sparseAreas {
            let areas = sparse.compactMap { r -> Range<Int>? in
                let lo = Int(clamping: r.lowerBound)
                let hi = min(Int(clamping: r.upperBound), size)
                return lo < hi && lo & mask == 0 ? lo..<hi : nil
            }
            return VFIOMappingPlan(
                strategy: .sparse, areas: areas,
                explanation: "SPARSE_MMAP: mapping the \(areas.count) area(s) the kernel lists; the rest uses pread/pwrite")
        }
        if let table = msixTable, !region.msixMappable {
            let tableStart = table.lowerBound & ~mask
            let tableEnd = (table.upperBound + mask) & ~mask
            var areas: [Range<Int>] = []
            if tableStart > 0 { areas.append(0..<min(tableStart, size)) }
            if tableEnd < size { areas.append(tableEnd..<size) }
            let what = areas.isEmpty
                ? "the MSI-X table's pages cover the whole BAR, so nothing is mapped"
                : "mapping around the MSI-X table's pages 0x\(hex(tableStart, width: 1))-0x\(hex(tableEnd, width: 1))"
            return VFIOMappingPlan(
                strategy: areas.isEmpty ? .none : .aroundMSIXTable, areas: areas,
                explanation: "no MSIX_MAPPABLE: " + what + "; the table itself reads as 0xFF through pread")
        }
        return VFIOMappingPlan(
            strategy: .whole, areas: [0..<size],
            explanation: msixTable != nil ? "MSIX_MAPPABLE: the whole BAR is mapped, the real MSI-X table is visible"
                : "the whole BAR is mapped")
    }
}

/// A VFIO BAR as one `MMIORegion`: mmapped windows where the plan allows,
/// pread/pwrite on the device fd elsewhere.
///
/// Through pread/pwrite vfio-pci virtualizes the MSI-X table range: reads return 0xFF bytes
/// and writes are dropped. Only a mapping shows the real table (see ``isMapped(_:)``).
/// With memory decoding off (Command.MEM = 0) pread/pwrite fail with EIO (reported as such);
/// touching a mapping then raises SIGBUS in the kernel's design, so check
/// ``VFIODevice/memoryDecodeEnabled()`` before using a BAR whose decode state is unknown.
public final class VFIOBARRegion: MMIORegion, @unchecked Sendable {
    // @unchecked: immutable after init; windows are MappedRegions (see their notes).
    public let name: String
    public let size: Int
    /// The BAR index.
    public let index: Int
    /// The region info it was built from.
    public let region: VFIORegionInfo
    /// What was mapped and why.
    public let plan: VFIOMappingPlan
    let device: VFIODevice
    let windows: [(range: Range<Int>, region: MappedRegion)]
    let whole: MappedRegion?
    let presence: DevicePresence

    init(device: VFIODevice, index: Int, region: VFIORegionInfo, plan: VFIOMappingPlan) throws {
        let name = "\(device.address) BAR\(index) (vfio)"
        let writeRefusal = device.permission.reason
        var windows: [(range: Range<Int>, region: MappedRegion)] = []
        let protection = writeRefusal == nil ? PROT_READ | PROT_WRITE : PROT_READ
        for area in plan.areas {
            let length = roundUpToPage(area.count)
            let p: UnsafeMutableRawPointer
            do {
                p = try device.syscalls.mmap(
                    length: length, protection: protection, flags: MAP_SHARED, fd: device.deviceFD,
                    offset: Int64(region.offset) + Int64(area.lowerBound))
            } catch {
                throw DeviceAccessError.system(
                    name, operation: "mmap of 0x\(hex(area.lowerBound, width: 1))-0x\(hex(area.upperBound, width: 1))",
                    errno: error.code)
            }
            let owner = MappingOwner(address: p, length: length, fd: nil, syscalls: device.syscalls)
            windows.append((area, MappedRegion(
                name: name, base: p, size: area.count, writeRefusal: writeRefusal, owner: owner)))
        }
        self.name = name
        self.size = Int(clamping: region.size)
        self.index = index
        self.region = region
        self.plan = plan
        self.device = device
        self.windows = windows
        self.whole = windows.count == 1 && windows[0].range == 0..<Int(clamping: region.size) ? windows[0].region : nil
        let config = try? device.configSpace()
        self.presence = DevicePresence { (try? config?.read16(PCIReg.vendorID)).map { $0 != 0xFFFF } ?? false }
    }

    public var isWritable: Bool { device.permission.isGranted }

    /// Whether every byte of `range` is reached through a mapping (true: real device memory;
    /// false: pread/pwrite, where the MSI-X table reads as 0xFF).
    public func isMapped(_ range: Range<Int>) -> Bool {
        windows.contains { $0.range.lowerBound <= range.lowerBound && range.upperBound <= $0.range.upperBound }
    }

    /// The BAR-relative ranges that are mapped.
    public var mappedRanges: [Range<Int>] { windows.map(\.range) }

    public func read32(_ offset: Int) throws -> UInt32 {
        if let whole { return try whole.read32(offset) }
        try DeviceAccessError.check(name, offset: offset, width: 4, size: size)
        if let w = window(offset, 4) { return try w.region.read32(offset - w.range.lowerBound) }
        return UInt32(truncatingIfNeeded: try slowRead(offset, width: 4))
    }

    public func read64(_ offset: Int) throws -> UInt64 {
        if let whole { return try whole.read64(offset) }
        try DeviceAccessError.check(name, offset: offset, width: 8, size: size)
        if let w = window(offset, 8) { return try w.region.read64(offset - w.range.lowerBound) }
        return try slowRead(offset, width: 8)
    }

    public func write32(_ offset: Int, _ value: UInt32) throws {
        if let whole { return try whole.write32(offset, value) }
        if let reason = device.permission.reason { throw DeviceAccessError.notWritable(name, reason: reason) }
        try DeviceAccessError.check(name, offset: offset, width: 4, size: size)
        if let w = window(offset, 4) { return try w.region.write32(offset - w.range.lowerBound, value) }
        try slowWrite(offset, width: 4, UInt64(value))
    }

    public func write64(_ offset: Int, _ value: UInt64) throws {
        if let whole { return try whole.write64(offset, value) }
        if let reason = device.permission.reason { throw DeviceAccessError.notWritable(name, reason: reason) }
        try DeviceAccessError.check(name, offset: offset, width: 8, size: size)
        if let w = window(offset, 8) { return try w.region.write64(offset - w.range.lowerBound, value) }
        try slowWrite(offset, width: 8, value)
    }

    private func window(_ offset: Int, _ width: Int) -> (range: Range<Int>, region: MappedRegion)? {
        windows.first { $0.range.lowerBound <= offset && offset + width <= $0.range.upperBound }
    }

    private func slowRead(_ offset: Int, width: Int) throws -> UInt64 {
        var value: UInt64 = 0
        do {
            try withUnsafeMutableBytes(of: &value) { b throws(SyscallError) in
                try device.syscalls.preadExactly(
                    device.deviceFD, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<width]),
                    at: Int64(region.offset) + Int64(offset))
            }
        } catch {
            throw mapped(error, "read of \(width) bytes at 0x\(hex(offset, width: 1))")
        }
        value = UInt64(littleEndian: value)
        let allOnes: UInt64 = width == 8 ? .max : 0xFFFF_FFFF
        if value == allOnes && !presence.isPresent() { throw DeviceAccessError.deviceGone(name) }
        return value
    }

    private func slowWrite(_ offset: Int, width: Int, _ value: UInt64) throws {
        var v = value.littleEndian
        do {
            try withUnsafeBytes(of: &v) { b throws(SyscallError) in
                try device.syscalls.pwriteExactly(
                    device.deviceFD, from: UnsafeRawBufferPointer(rebasing: b[0..<width]),
                    at: Int64(region.offset) + Int64(offset))
            }
        } catch {
            throw mapped(error, "write of \(width) bytes at 0x\(hex(offset, width: 1))")
        }
    }

    private func mapped(_ e: SyscallError, _ what: String) -> DeviceAccessError {
        if e.code == ENODEV { return .deviceGone(name) }
        if e.code == EIO {
            return .system(name, operation: what + " (memory decoding is off: set Command.MEM in config space)", errno: EIO)
        }
        return .system(name, operation: what, errno: e.code)
    }
}

extension VFIODevice {
    /// Maps BAR `index` following ``VFIOMappingPlan/make(region:msixTable:pageSize:)``, with the
    /// MSI-X table range taken from `msix` when it lives in this BAR.
    public func bar(_ index: Int, msix: MSIXLayout?) throws -> VFIOBARRegion {
        guard (0...5).contains(index) else {
            throw DeviceIOError.barUnusable(address, bar: index, reason: "BAR index must be 0-5")
        }
        let region = try regionInfo(index)
        guard region.size > 0 else {
            throw DeviceIOError.barUnusable(address, bar: index, reason: "not implemented (size 0)")
        }
        let table = msix.flatMap { $0.tableBAR == index ? $0.tableRange : nil }
        return try VFIOBARRegion(device: self, index: index, region: region, plan: .make(region: region, msixTable: table))
    }

    /// Maps BAR `index`, finding the MSI-X layout itself (a device whose layout does not
    /// validate is mapped as if it had no MSI-X table).
    public func bar(_ index: Int) throws -> VFIOBARRegion {
        try bar(index, msix: try? msixLayout())
    }

    /// Whether Command.MEM is set (BAR accesses fail with EIO, mappings fault, while it is off).
    public func memoryDecodeEnabled() throws -> Bool {
        try configSpace().read16(PCIReg.command) & PCIReg.Command.memory != 0
    }

    /// Sets Command.MEM (needs write intent), as DPDK does before using BARs.
    public func enableMemoryDecode() throws {
        let config = try configSpace()
        let command = try config.read16(PCIReg.command)
        if command & PCIReg.Command.memory == 0 { try config.write16(PCIReg.command, command | PCIReg.Command.memory) }
    }
}
