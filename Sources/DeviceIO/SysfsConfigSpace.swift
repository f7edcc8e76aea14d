// Config space through a file descriptor: the sysfs `config` attribute, and (in VFIO.swift)
// the VFIO config region. Both are pread/pwrite at an offset; they differ in who decides
// the readable size and what an error means.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore
import PCIAccess

/// pread/pwrite of 1, 2 or 4 bytes at `base + offset`, with the all-ones check.
struct PositionalConfigIO: Sendable {
    let fd: Int32
    let base: Int64
    let size: Int
    let name: String
    let syscalls: any SystemCalls

    func load(_ offset: Int, width: Int) throws(DeviceAccessError) -> UInt32 {
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        let v = try raw(offset, width: width)
        let allOnes: UInt32 = width == 4 ? .max : (1 << (8 * UInt32(width))) - 1
        if v == allOnes {
            // A missing device reads as all-ones everywhere; a present one has a real vendor ID.
            let vendor = offset == 0 && width >= 2 ? v & 0xFFFF : try raw(0, width: 2)
            if vendor == 0xFFFF { throw DeviceAccessError.deviceGone(name) }
        }
        return v
    }

    func raw(_ offset: Int, width: Int) throws(DeviceAccessError) -> UInt32 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 4)
        defer { buffer.deallocate() }
        buffer.storeBytes(of: 0, as: UInt32.self)
        do {
            try syscalls.preadExactly(
                fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<width]), at: base + Int64(offset))
        } catch {
            throw mapped(error, "read of \(width) bytes at 0x\(hex(offset, width: 2))")
        }
        return UInt32(littleEndian: buffer.load(as: UInt32.self))
    }

    func store(_ offset: Int, width: Int, _ value: UInt32) throws(DeviceAccessError) {
        try DeviceAccessError.check(name, offset: offset, width: width, size: size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 4)
        defer { buffer.deallocate() }
        buffer.storeBytes(of: value.littleEndian, as: UInt32.self)
        do {
            try syscalls.pwriteExactly(
                fd, from: UnsafeRawBufferPointer(rebasing: buffer[0..<width]), at: base + Int64(offset))
        } catch {
            throw mapped(error, "write of \(width) bytes at 0x\(hex(offset, width: 2))")
        }
    }

    func mapped(_ error: SyscallError, _ operation: String) -> DeviceAccessError {
        if error.code == ENODEV { return .deviceGone(name) }
        return .system(name, operation: operation, errno: error.code)
    }
}

/// Config space through `/sys/bus/pci/devices/<bdf>/config`.
///
/// The readable size is what the kernel gives this process: 256 or 4096 bytes for root, the
/// first 64 for anyone else (capabilities then read as "needs root"). Writes need root *and*
/// the write policy: the device must be bound to vfio-pci or uio_pci_generic and the config
/// space opened with ``WriteIntent/allowWrites``; the driver is re-read before every write.
public final class SysfsConfigSpace: ConfigSpaceAccess {
    public let name: String
    /// The device.
    public let address: PCIAddress
    /// The open-time policy decision.
    public let permission: WritePermission
    /// The size sysfs declares for the attribute (256 or 4096).
    public let declaredSize: Int
    let io: PositionalConfigIO
    let sysfs: SysfsPCI
    let intent: WriteIntent

    /// Opens the `config` attribute of `address`. With `.allowWrites` the file is opened
    /// read-write only when the policy grants writes (a kernel-owned device is never opened
    /// for writing).
    public init(address: PCIAddress, environment: DeviceIOEnvironment = .live, intent: WriteIntent = .readOnly) throws {
        let sysfs = environment.sysfs
        let path = sysfs.devicePath(address) + "/config"
        let name = "\(address) config (sysfs)"
        let permission = WritePolicy.evaluate(address: address, sysfs: sysfs, intent: intent)
        let syscalls = environment.syscalls
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: permission.isGranted ? O_RDWR : O_RDONLY)
        } catch {
            if error.code == ENOENT && !sysfs.exists(address) { throw DeviceAccessError.deviceGone(name) }
            throw DeviceAccessError.system(name, operation: "open \(path)", errno: error.code)
        }
        // The kernel truncates unprivileged reads; one read of the declared size tells us how much we get.
        let declared: Int
        var readable: Int
        do {
            declared = max(0, try syscalls.status(fd).size)
            let probe = UnsafeMutableRawBufferPointer.allocate(byteCount: max(declared, 64), alignment: 8)
            defer { probe.deallocate() }
            readable = try syscalls.pread(fd, into: probe, at: 0)
        } catch {
            syscalls.close(fd)
            throw DeviceAccessError.system(name, operation: "read \(path)", errno: error.code)
        }
        readable = readable >= 4096 ? 4096 : readable >= 256 ? 256 : min(readable, 64)
        self.name = name
        self.address = address
        self.permission = permission
        self.declaredSize = declared
        self.sysfs = sysfs
        self.intent = intent
        self.io = PositionalConfigIO(fd: fd, base: 0, size: readable, name: name, syscalls: syscalls)
    }

    deinit { io.syscalls.close(io.fd) }

    public var readableSize: Int { io.size }
    public var isWritable: Bool { permission.isGranted }

    public func read8(_ offset: Int) throws -> UInt8 { UInt8(truncatingIfNeeded: try io.load(offset, width: 1)) }
    public func read16(_ offset: Int) throws -> UInt16 { UInt16(truncatingIfNeeded: try io.load(offset, width: 2)) }
    public func read32(_ offset: Int) throws -> UInt32 { try io.load(offset, width: 4) }

    public func write8(_ offset: Int, _ value: UInt8) throws { try checkWrite(); try io.store(offset, width: 1, UInt32(value)) }
    public func write16(_ offset: Int, _ value: UInt16) throws { try checkWrite(); try io.store(offset, width: 2, UInt32(value)) }
    public func write32(_ offset: Int, _ value: UInt32) throws { try checkWrite(); try io.store(offset, width: 4, value) }

    private func checkWrite() throws(DeviceAccessError) {
        if let reason = permission.reason { throw DeviceAccessError.notWritable(name, reason: reason) }
        if case .denied(let reason) = WritePolicy.evaluate(address: address, sysfs: sysfs, intent: intent) {
            throw DeviceAccessError.notWritable(name, reason: "driver changed since open: " + reason)
        }
    }
}
