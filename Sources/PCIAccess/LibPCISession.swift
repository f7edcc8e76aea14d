// One libpci `struct pci_access`, confined behind a Mutex.
//
// Lock rule: every libpci call on this access happens inside `state.withLock`, and no
// `pci_dev` pointer leaves it; callers get values. libpci calls that can reach the error
// callback go through the CMSIShim guarded wrappers. After such an error the access is
// poisoned: it is cleaned up at once and every later call throws `.poisoned`.
#if canImport(Glibc)
import Glibc
#endif
import CMSIShim
import CPCI
public import MSIShimCore

/// Where libpci reads devices from.
public enum LibPCIMethod: Hashable, Sendable {
    /// The running system through libpci's default method (linux-sysfs). `sysfsRoot` is the
    /// sysfs mount point; libpci reads `<sysfsRoot>/bus/pci` (tests point it at a fake tree).
    case live(sysfsRoot: String = "/sys")
    /// A `lspci -x` dump through libpci's dump method, exactly what `lspci -F path` reads.
    case dump(path: String)
}

/// A failure reported by libpci (its error callback), or a use of a poisoned session.
public enum LibPCIError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    /// libpci's error callback fired during `operation`; the message is libpci's own.
    case failed(operation: String, message: String)
    /// An earlier error left the `pci_access` unusable; `message` is that first error.
    case poisoned(message: String)
    /// No device with this address in the session.
    case noSuchDevice(PCIAddress)
    /// `pci_alloc` returned nothing.
    case outOfMemory

    public var errno: KernelErrno? {
        switch self {
        case .failed, .poisoned: .EIO
        case .noSuchDevice: .ENODEV
        case .outOfMemory: .ENOMEM
        }
    }

    public var description: String {
        switch self {
        case let .failed(operation, message): "libpci: \(operation): \(message)"
        case let .poisoned(message): "libpci access unusable after an earlier error: \(message)"
        case let .noSuchDevice(address): "no PCI device \(address)"
        case .outOfMemory: "libpci: out of memory"
        }
    }
}

/// What `pci_fill_info` reports about one function.
public struct LibPCIDeviceFields: Hashable, Sendable {
    /// Vendor ID.
    public var vendorID: UInt16
    /// Device ID.
    public var deviceID: UInt16
    /// Base class << 8 | subclass (`device_class`).
    public var classCode: UInt16
    /// Programming interface byte of the class code.
    public var programmingInterface: UInt8
    /// Revision ID.
    public var revision: UInt8
    /// BAR values as libpci holds them (`base_addr[]`: address with the flag bits, the
    /// 64-bit value in the lower register's slot).
    public var baseAddresses: [UInt64]
    /// Region sizes; nil when the method does not know them (dumps).
    public var sizes: [UInt64]?
    /// The kernel's resource flags per region (`PCI_IORESOURCE_*`, from sysfs `resource`);
    /// nil when unknown (dumps).
    public var resourceFlags: [UInt64]? = nil
}

/// A libpci session: one `pci_access` with its scanned device list.
///
/// Thread-safe: all access to libpci is serialised by a Mutex (libpci itself is not).
public final class LibPCISession: Sendable {
    /// How this session reads devices (live sysfs or a dump file).
    public let method: LibPCIMethod
    /// Every function libpci found, sorted by address.
    public let addresses: [PCIAddress]
    private let state: PackageMutex<State>

    /// A libpci pointer owned by this session. Sendable only so the Mutex-protected state
    /// can be; the pointee is touched only while `state` is locked (see the lock rule above).
    private struct Handle<Pointee>: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Pointee>
    }

    private struct State: Sendable {
        var access: Handle<pci_access>?
        var devices: [PCIAddress: Handle<pci_dev>] = [:]
        var poison: String?
        var warnings: [String] = []
        var vendorNames: [UInt16: String?] = [:]
        var deviceNames: [UInt32: String?] = [:]
        var classNames: [UInt16: String?] = [:]
    }

    /// Allocates a `pci_access`, points it at `method`, runs `pci_init` and `pci_scan_bus`.
    /// Dump paths should be checked with ``LSPCIDump/read(path:collectBytes:)`` first:
    /// libpci's messages carry no line numbers and it mis-handles some offsets.
    public init(method: LibPCIMethod) throws(LibPCIError) {
        self.method = method
        guard let access = pci_alloc() else { throw .outOfMemory }
        msishim_pci_install_handlers(access)
        var err = [CChar](repeating: 0, count: 512)
        func fail(_ operation: String) -> LibPCIError {
            let message = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            pci_cleanup(access)
            return .failed(operation: operation, message: message)
        }
        switch method {
        case .live(let root):
            if root != "/sys" {
                guard msishim_pci_set_param(access, "sysfs.path", root + "/bus/pci", &err, err.count) >= 0 else {
                    throw fail("set sysfs.path")
                }
                access.pointee.method = UInt32(PCI_ACCESS_SYS_BUS_PCI.rawValue)
            }
        case .dump(let path):
            access.pointee.method = UInt32(PCI_ACCESS_DUMP.rawValue)
            guard msishim_pci_set_param(access, "dump.name", path, &err, err.count) >= 0 else {
                throw fail("set dump.name")
            }
        }
        guard msishim_pci_init(access, &err, err.count) >= 0 else { throw fail("init") }
        guard msishim_pci_scan_bus(access, &err, err.count) >= 0 else { throw fail("scan") }

        var devices: [PCIAddress: UnsafeMutablePointer<pci_dev>] = [:]
        var dev = access.pointee.devices
        var skipped: [String] = []
        while let d = dev {
            let p = d.pointee
            if let address = PCIAddress(domain: UInt32(bitPattern: p.domain), bus: p.bus, device: p.dev, function: p.func) {
                // A duplicate address (possible in a dump) keeps the first; dumps are checked
                // for duplicates before libpci reads them.
                if devices[address] == nil { devices[address] = d }
            } else {
                skipped.append("libpci listed an invalid address \(p.domain):\(p.bus):\(p.dev).\(p.func); skipped")
            }
            dev = p.next
        }
        addresses = devices.keys.sorted()
        var initial = State(access: Handle(pointer: access), devices: devices.mapValues { Handle(pointer: $0) })
        initial.warnings = skipped + Self.drainWarnings()
        state = PackageMutex(initial)
    }

    deinit {
        state.withLock { s in
            if let access = s.access { pci_cleanup(access.pointer) }
            s.access = nil
        }
    }

    /// Warnings libpci emitted so far (never printed by the library); clears them.
    public func takeWarnings() -> [String] {
        state.withLock { s in
            s.warnings += Self.drainWarnings()
            defer { s.warnings = [] }
            return s.warnings
        }
    }

    /// Whether an earlier libpci error made the session unusable.
    public var isPoisoned: Bool { state.withLock { $0.poison != nil } }

    // MARK: Device fields

    /// IDs, class, revision, BARs and (live only) region sizes, through `pci_fill_info`.
    public func fields(of address: PCIAddress) throws(LibPCIError) -> LibPCIDeviceFields {
        try withDevice(address, "fill_info") { dev, err throws(LibPCIError) in
            var want = Int32(PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_CLASS_EXT | PCI_FILL_BASES)
            if case .live = method { want |= Int32(PCI_FILL_SIZES | PCI_FILL_IO_FLAGS) }
            var known: Int32 = 0
            guard msishim_pci_fill_info(dev, want, &known, &err, err.count) >= 0 else { throw .failed(operation: "fill_info", message: "") }
            let p = dev.pointee
            let bases = withUnsafeBytes(of: p.base_addr) { Array($0.bindMemory(to: UInt64.self)) }
            let sizes = known & Int32(PCI_FILL_SIZES) != 0
                ? withUnsafeBytes(of: p.size) { Array($0.bindMemory(to: UInt64.self)) } : nil
            let flags = known & Int32(PCI_FILL_IO_FLAGS) != 0
                ? withUnsafeBytes(of: p.flags) { Array($0.bindMemory(to: UInt64.self)) } : nil
            return LibPCIDeviceFields(
                vendorID: p.vendor_id, deviceID: p.device_id, classCode: p.device_class,
                programmingInterface: p.prog_if, revision: p.rev_id, baseAddresses: bases, sizes: sizes,
                resourceFlags: flags)
        }
    }

    /// A string property libpci fills on Linux (`PCI_FILL_DRIVER`, `PCI_FILL_IOMMU_GROUP`);
    /// nil when absent or unknown (always nil for dumps).
    public func stringProperty(_ property: UInt32, of address: PCIAddress) throws(LibPCIError) -> String? {
        try withDevice(address, "fill_info") { dev, err throws(LibPCIError) in
            var known: Int32 = 0
            guard msishim_pci_fill_info(dev, Int32(bitPattern: property), &known, &err, err.count) >= 0 else {
                throw .failed(operation: "fill_info", message: "")
            }
            guard let s = pci_get_string_property(dev, property) else { return nil }
            return String(cString: s)
        }
    }

    /// The kernel driver libpci reports (`PCI_FILL_DRIVER`); a cross-check for udev's answer.
    public func driverProperty(of address: PCIAddress) throws(LibPCIError) -> String? {
        try stringProperty(UInt32(PCI_FILL_DRIVER), of: address)
    }

    /// The IOMMU group libpci reports (`PCI_FILL_IOMMU_GROUP`).
    public func iommuGroupProperty(of address: PCIAddress) throws(LibPCIError) -> String? {
        try stringProperty(UInt32(PCI_FILL_IOMMU_GROUP), of: address)
    }

    // MARK: Config space

    /// Reads `count` config bytes at `offset` into `buffer`. Returns false when libpci cannot
    /// read that range (beyond the dump's bytes, or beyond the 64 bytes sysfs gives a
    /// non-root reader); throws only for libpci errors.
    public func readConfig(
        _ address: PCIAddress, offset: Int, into buffer: UnsafeMutableRawBufferPointer
    ) throws(LibPCIError) -> Bool {
        guard buffer.count > 0 else { return true }
        return try withDevice(address, "read config") { dev, err throws(LibPCIError) in
            let r = msishim_pci_read_block(
                dev, Int32(offset), buffer.baseAddress!.assumingMemoryBound(to: UInt8.self),  // allowed: count > 0
                Int32(buffer.count), &err, err.count)
            guard r >= 0 else { throw .failed(operation: "read config", message: "") }
            return r == 1
        }
    }

    /// Reads `count` config bytes at `offset`; nil when not readable.
    public func readConfig(_ address: PCIAddress, offset: Int, count: Int) throws(LibPCIError) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let result: Result<Bool, LibPCIError> = bytes.withUnsafeMutableBytes { buffer in
            do throws(LibPCIError) { return .success(try readConfig(address, offset: offset, into: buffer)) } catch {
                return .failure(error)
            }
        }
        return try result.get() ? bytes : nil
    }

    /// Writes config bytes through libpci. Dumps are refused here (libpci would call its
    /// error callback). The caller decides whether writing is allowed at all.
    public func writeConfig(_ address: PCIAddress, offset: Int, bytes: [UInt8]) throws(LibPCIError) -> Bool {
        if case .dump(let path) = method {
            throw .failed(operation: "write config", message: "writing to dump \(path) is not supported")
        }
        var copy = bytes
        return try withDevice(address, "write config") { dev, err throws(LibPCIError) in
            let r = copy.withUnsafeMutableBufferPointer { b in
                msishim_pci_write_block(dev, Int32(offset), b.baseAddress, Int32(b.count), &err, err.count)
            }
            guard r >= 0 else { throw .failed(operation: "write config", message: "") }
            return r == 1
        }
    }

    /// How many config bytes libpci can read for this device: 4096, 256, 64 for a non-root
    /// sysfs reader, or (dumps) exactly as many as the dump gives. Reads at most a few dwords.
    public func readableConfigSize(_ address: PCIAddress) throws(LibPCIError) -> Int {
        var word: UInt32 = 0
        func canRead(_ offset: Int, _ count: Int) throws(LibPCIError) -> Bool {
            if count <= 4 {
                return try withUnsafeMutableBytes(of: &word) { b throws(LibPCIError) in
                    try readConfig(address, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<count]))
                }
            }
            return try readConfig(address, offset: offset, count: count) != nil
        }
        if try canRead(4092, 4) { return 4096 }
        if case .dump = method {
            // Dumps may end anywhere: find the largest readable prefix (memcpy-cheap).
            var lo = 0
            var hi = 4096  // readable(lo) holds, readable(hi) does not
            if try canRead(252, 4) {
                if try !canRead(256, 1) { return 256 }
                lo = 256
            }
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if try canRead(mid - 1, 1) { lo = mid } else { hi = mid }
            }
            return lo
        }
        if try canRead(252, 4) { return 256 }
        if try canRead(124, 4) { return 128 }
        if try canRead(60, 4) { return 64 }
        return 0
    }

    // MARK: Names (libpci's name database: udev hwdb, then pci.ids, as lspci uses it)

    /// Vendor name, or nil when the database does not know the ID.
    public func vendorName(_ vendor: UInt16) throws(LibPCIError) -> String? {
        try withAccess("lookup vendor name") { s, access, err throws(LibPCIError) in
            if let cached = s.vendorNames[vendor] { return cached }
            let name = try Self.lookup(access, &err, Int32(PCI_LOOKUP_VENDOR.rawValue), Int32(vendor), 0)
            s.vendorNames[vendor] = name
            return name
        }
    }

    /// Device name, or nil when unknown.
    public func deviceName(vendor: UInt16, device: UInt16) throws(LibPCIError) -> String? {
        let key = UInt32(vendor) << 16 | UInt32(device)
        return try withAccess("lookup device name") { s, access, err throws(LibPCIError) in
            if let cached = s.deviceNames[key] { return cached }
            let name = try Self.lookup(access, &err, Int32(PCI_LOOKUP_DEVICE.rawValue), Int32(vendor), Int32(device))
            s.deviceNames[key] = name
            return name
        }
    }

    /// Class name ("Ethernet controller"; "Unclassified device [00ff]" for an unknown
    /// subclass of a known class), or nil when unknown.
    public func className(_ classCode: UInt16) throws(LibPCIError) -> String? {
        try withAccess("lookup class name") { s, access, err throws(LibPCIError) in
            if let cached = s.classNames[classCode] { return cached }
            let name = try Self.lookup(access, &err, Int32(PCI_LOOKUP_CLASS.rawValue), Int32(classCode), 0)
            s.classNames[classCode] = name
            return name
        }
    }

    private static func lookup(
        _ access: UnsafeMutablePointer<pci_access>, _ err: inout [CChar], _ kind: Int32, _ a1: Int32, _ a2: Int32
    ) throws(LibPCIError) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        var out: UnsafePointer<CChar>? = nil
        let flags = kind | Int32(PCI_LOOKUP_NO_NUMBERS.rawValue)
        guard msishim_pci_lookup(access, &buf, Int32(buf.count), flags, a1, a2, 0, 0, &out, &err, err.count) >= 0 else {
            throw .failed(operation: "lookup name", message: "")
        }
        return out.map { String(cString: $0) }
    }

    // MARK: Lock helpers

    /// Runs `body` under the lock with the state, the access and an error buffer for the
    /// guarded wrappers. A libpci error (body throws `.failed` with an empty message) gets
    /// the buffer's message, and poisons the session: the access is cleaned up at once.
    private func withAccess<R>(
        _ operation: String,
        _ body: (inout State, UnsafeMutablePointer<pci_access>, inout [CChar]) throws(LibPCIError) -> R
    ) throws(LibPCIError) -> R {
        let result: Result<R, LibPCIError> = state.withLock { s in
            if let poison = s.poison { return .failure(.poisoned(message: poison)) }
            guard let access = s.access?.pointer else { return .failure(.poisoned(message: "session closed")) }
            var err = [CChar](repeating: 0, count: 512)
            do throws(LibPCIError) {
                let r = try body(&s, access, &err)
                let warnings = Self.drainWarnings()
                if !warnings.isEmpty { s.warnings += warnings }
                return .success(r)
            } catch {
                guard case .failed(let op, let message) = error, message.isEmpty else { return .failure(error) }
                let text = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                s.poison = text
                s.warnings += Self.drainWarnings()
                pci_cleanup(access)
                s.access = nil
                s.devices = [:]
                return .failure(.failed(operation: op, message: text))
            }
        }
        return try result.get()
    }

    private func withDevice<R>(
        _ address: PCIAddress, _ operation: String,
        _ body: (UnsafeMutablePointer<pci_dev>, inout [CChar]) throws(LibPCIError) -> R
    ) throws(LibPCIError) -> R {
        try withAccess(operation) { s, _, err throws(LibPCIError) in
            guard let dev = s.devices[address]?.pointer else { throw .noSuchDevice(address) }
            return try body(dev, &err)
        }
    }

    private static func drainWarnings() -> [String] {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = msishim_pci_take_warnings(&buf, buf.count)
        guard n > 0 else { return [] }
        let text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "\n").map(String.init)
    }
}
