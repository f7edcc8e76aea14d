// A fake sysfs/dev/proc tree in a temporary folder: directories, attribute files and the
// symlinks (driver, iommu_group) the kernel would create.
#if canImport(Glibc)
import Glibc
#endif
@testable import DeviceIO
import MSIShimCore
import Testing
import PCIAccess

/// A temporary directory removed when the value is released.
final class TempDir {
    let path: String

    init() {
        var template = Array("/tmp/msishim-io-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = p.map { String(cString: $0) } ?? "/tmp/msishim-io-failed"
    }

    deinit { removeTree(path) }
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if st.st_mode & S_IFMT == S_IFDIR {
        for name in listDirectory(path) { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

func makeDirectories(_ path: String) {
    var current = ""
    for part in path.split(separator: "/") {
        current += "/" + part
        mkdir(current, 0o755)
    }
}

func writeBytes(_ path: String, _ bytes: [UInt8]) {
    makeDirectories(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "cannot create \(path)")
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

func writeText(_ path: String, _ text: String) { writeBytes(path, Array(text.utf8)) }

func fileBytes(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

func symlinkAt(_ target: String, _ link: String) {
    makeDirectories(String(link[..<(link.lastIndex(of: "/") ?? link.endIndex)]))
    unlink(link)
    symlink(target, link)
}

/// One PCI function to put in the fake tree.
struct FakeFunction {
    var address: PCIAddress
    var driver: String?
    var config: [UInt8]
    /// Text of the `resource` file (6 BAR lines + ROM).
    var resource: String = ""
    var classCode: UInt32 = 0x00FF00
    var iommuGroup: Int?
    var msiIRQs: [Int] = []
    var legacyIRQ: Int = 0
    var driverOverride: String = "(null)"
    /// BAR index → contents of the `resourceN` file (a regular file standing in for the BAR).
    var resourceFiles: [Int: [UInt8]] = [:]
    var wcFiles: Set<Int> = []
    var vfioDev: String?
    var bootVGA: Bool = false
}

/// A fake `/sys` + `/dev` + `/proc` in a temporary folder.
final class FakeTree {
    let dir = TempDir()
    var sysfs: String { dir.path + "/sys" }
    var dev: String { dir.path + "/dev" }
    var proc: String { dir.path + "/proc" }
    var state: String { dir.path + "/run/msictl" }  // parents missing, like /run in an initramfs

    init() {
        makeDirectories(sysfs + "/bus/pci/devices")
        makeDirectories(sysfs + "/bus/pci/drivers")
        makeDirectories(dev)
        makeDirectories(proc + "/self")
        writeText(sysfs + "/bus/pci/drivers_probe", "")
        writeText(proc + "/interrupts", "           CPU0       CPU1\n")
        writeText(proc + "/self/mountinfo", "22 1 0:21 / / rw,relatime - overlay overlay rw\n")
    }

    func environment(syscalls: any SystemCalls = LinuxSystemCalls()) -> DeviceIOEnvironment {
        DeviceIOEnvironment(syscalls: syscalls, sysfsRoot: sysfs, devRoot: dev, procRoot: proc)
    }

    /// A driver binder over this tree, recording state in its state folder.
    func binder() -> DriverBinder {
        DriverBinder(sysfs: SysfsPCI(root: sysfs), procRoot: proc, stateDirectory: state)
    }

    func devicePath(_ a: PCIAddress) -> String { sysfs + "/bus/pci/devices/" + a.description }

    func addDriver(_ name: String) {
        makeDirectories(sysfs + "/bus/pci/drivers/" + name)
        writeText(sysfs + "/bus/pci/drivers/\(name)/bind", "")
        writeText(sysfs + "/bus/pci/drivers/\(name)/unbind", "")
    }

    func add(_ f: FakeFunction) {
        let d = devicePath(f.address)
        makeDirectories(d)
        writeBytes(d + "/config", f.config)
        writeText(d + "/resource", f.resource)
        writeText(d + "/class", "0x" + hex(f.classCode, width: 6) + "\n")
        writeText(d + "/irq", "\(f.legacyIRQ)\n")
        writeText(d + "/driver_override", f.driverOverride + "\n")
        if f.bootVGA { writeText(d + "/boot_vga", "1\n") }
        for (bar, bytes) in f.resourceFiles { writeBytes(d + "/resource\(bar)", bytes) }
        for bar in f.wcFiles { writeBytes(d + "/resource\(bar)_wc", f.resourceFiles[bar] ?? []) }
        for irq in f.msiIRQs { writeText(d + "/msi_irqs/\(irq)", "msix\n") }
        setDriver(f.address, f.driver)
        if let g = f.iommuGroup {
            let groupDir = sysfs + "/kernel/iommu_groups/\(g)"
            makeDirectories(groupDir + "/devices")
            symlinkAt(groupDir, d + "/iommu_group")
            symlinkAt(d, groupDir + "/devices/" + f.address.description)
        }
        if let v = f.vfioDev { makeDirectories(d + "/vfio-dev/" + v) }
    }

    func setDriver(_ a: PCIAddress, _ driver: String?) {
        let link = devicePath(a) + "/driver"
        unlink(link)
        if let driver {
            addDriver(driver)
            symlink(sysfs + "/bus/pci/drivers/" + driver, link)
        }
    }

    func setInterrupts(_ text: String) { writeText(proc + "/interrupts", text) }
}

/// A config space builder: header, BARs, an MSI-X and an MSI capability.
struct ConfigBuilder {
    var bytes = [UInt8](repeating: 0, count: 256)

    init(vendor: UInt16 = 0x1af4, device: UInt16 = 0x1041, size: Int = 256) {
        bytes = [UInt8](repeating: 0, count: size)
        put16(PCIReg.vendorID, vendor)
        put16(PCIReg.deviceID, device)
        put16(PCIReg.command, PCIReg.Command.memory)
    }

    mutating func put16(_ at: Int, _ v: UInt16) { bytes.put16(v, at: at) }
    mutating func put32(_ at: Int, _ v: UInt32) { bytes.put32(v, at: at) }

    mutating func bar(_ index: Int, _ value: UInt32) { put32(PCIReg.bar0 + 4 * index, value) }

    /// Adds an MSI-X capability at `at` (next pointer `next`).
    mutating func msix(at: Int, next: Int = 0, entries: Int, tableBIR: Int, tableOffset: UInt32, pbaBIR: Int, pbaOffset: UInt32) {
        addCapability(at: at, id: PCICapabilityID.msix, next: next)
        put16(at + PCIReg.MSIX.flags, UInt16(entries - 1))
        put32(at + PCIReg.MSIX.table, tableOffset | UInt32(tableBIR))
        put32(at + PCIReg.MSIX.pba, pbaOffset | UInt32(pbaBIR))
    }

    /// Adds a 64-bit MSI capability capable of `1 << log2Count` vectors.
    mutating func msi(at: Int, next: Int = 0, log2Count: Int) {
        addCapability(at: at, id: PCICapabilityID.msi, next: next)
        put16(at + PCIReg.MSI.flags, PCIReg.MSI.is64Bit | UInt16(log2Count << 1))
    }

    mutating func addCapability(at: Int, id: UInt8, next: Int) {
        put16(PCIReg.status, PCIReg.Status.capabilityList)
        if bytes[PCIReg.capabilityListPointer] == 0 { bytes[PCIReg.capabilityListPointer] = UInt8(at) }
        bytes[at] = id
        bytes[at + 1] = UInt8(next)
    }
}

/// A `resource` file: (start, size, flags) per BAR; missing entries are zero lines.
func resourceText(_ bars: [Int: (start: UInt64, size: UInt64, flags: UInt64)]) -> String {
    (0..<7).map { i -> String in
        guard let b = bars[i] else { return "0x0000000000000000 0x0000000000000000 0x0000000000000000" }
        return "0x\(hex(b.start, width: 16)) 0x\(hex(b.start + b.size - 1, width: 16)) 0x\(hex(b.flags, width: 16))"
    }.joined(separator: "\n") + "\n"
}

let memFlags: UInt64 = 0x0004_0200  // IORESOURCE_MEM | SIZEALIGN
let mem64PrefetchFlags: UInt64 = 0x0014_2200  // MEM | PREFETCH | MEM_64 | SIZEALIGN
let ioFlags: UInt64 = 0x0004_0101  // IO

/// A syscall layer that fails chosen opens (EACCES and friends cannot be produced for root
/// with file modes) and forwards everything else.
struct FailingOpens: SystemCalls {
    let base: any SystemCalls
    let failures: [String: Int32]

    func open(_ path: String, flags: Int32) throws(SyscallError) -> Int32 {
        for (suffix, code) in failures where path.hasSuffix(suffix) { throw SyscallError(code) }
        return try base.open(path, flags: flags)
    }
    func close(_ fd: Int32) { base.close(fd) }
    func ioctl(_ fd: Int32, _ r: UInt, pointer: UnsafeMutableRawPointer?) throws(SyscallError) -> Int32 {
        try base.ioctl(fd, r, pointer: pointer)
    }
    func ioctl(_ fd: Int32, _ r: UInt, value: UInt) throws(SyscallError) -> Int32 { try base.ioctl(fd, r, value: value) }
    func pread(_ fd: Int32, into b: UnsafeMutableRawBufferPointer, at o: Int64) throws(SyscallError) -> Int {
        try base.pread(fd, into: b, at: o)
    }
    func pwrite(_ fd: Int32, from b: UnsafeRawBufferPointer, at o: Int64) throws(SyscallError) -> Int {
        try base.pwrite(fd, from: b, at: o)
    }
    func read(_ fd: Int32, into b: UnsafeMutableRawBufferPointer) throws(SyscallError) -> Int { try base.read(fd, into: b) }
    func write(_ fd: Int32, from b: UnsafeRawBufferPointer) throws(SyscallError) -> Int { try base.write(fd, from: b) }
    func mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int64) throws(SyscallError)
        -> UnsafeMutableRawPointer
    {
        if let code = failures["mmap"] { throw SyscallError(code) }
        return try base.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
    }
    func munmap(_ a: UnsafeMutableRawPointer, length: Int) { base.munmap(a, length: length) }
    func eventfd(initial: UInt32, flags: Int32) throws(SyscallError) -> Int32 { try base.eventfd(initial: initial, flags: flags) }
    func status(_ fd: Int32) throws(SyscallError) -> FileStatus { try base.status(fd) }
}

/// The error `body` throws, or nil (records an issue when nothing is thrown).
func thrownError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> (any Error)? {
    do {
        _ = try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
