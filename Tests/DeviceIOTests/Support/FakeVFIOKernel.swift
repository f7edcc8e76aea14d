// A fake kernel that speaks the VFIO/iommufd uAPI on its own descriptors and forwards
// everything else (eventfds, files) to the real kernel. It follows vfio-pci where tests
// depend on it: region info argsz re-query and capability chains, SET_IRQS validation
// (vfio_set_irqs_validate_and_prepare + vfio_pci_set_irqs_ioctl + vfio_pci_set_msi_trigger),
// NORESIZE vs dynamic MSI-X, loopback triggers, the MSI-X table virtualized to 0xFF through
// pread, EIO with memory decoding off, and access refused on a cdev before BIND_IOMMUFD.
#if canImport(Glibc)
import Glibc
#endif
@testable import DeviceIO
import MSIShimCore

/// A BAR of a fake device, backed by a memfd so mmap and pread see the same bytes.
struct FakeBAR {
    var size: Int
    var mmappable = true
    var memfd: Int32 = -1
}

/// A device the fake kernel knows.
struct FakeVFIODevice {
    var address: PCIAddress
    var group: Int
    var cdevName: String?
    var config: [UInt8]
    var bars: [Int: FakeBAR] = [:]
    /// BAR holding the MSI-X table and the table's range in it (virtualized through pread).
    var msixBAR: Int?
    var msixTable: Range<Int> = 0..<0
    var msixMappable = true
    var sparse: [Int: [Range<UInt64>]] = [:]
    var typeCap: [Int: (UInt32, UInt32)] = [:]
    var msiCount = 0
    var msixCount = 0
    var hasDynMSIX = false
    var isPCIe = true
}

/// Faults a test can inject into region info replies.
enum RegionFault {
    case loopingChain, nextOutsideReply, argszGrowsForever
}

final class FakeVFIOKernel: SystemCalls, @unchecked Sendable {
    // @unchecked: all mutable state is inside `state` (a Mutex).
    let real = LinuxSystemCalls()
    let devRoot: String

    enum Handle {
        case container(iommu: UInt?, groups: Set<Int>)
        case group(Int, container: Int32?)
        case device(String, cdev: Bool, bound: Bool, attached: Bool)
        case iommufd(ioas: Set<UInt32>)
    }

    struct Runtime {
        var irqType: Int?
        var allocated = 0
        var ctx: [Int: Int32] = [:]
        var req: Int32?
    }

    struct State {
        var nextFD: Int32 = 50_000
        var handles: [Int32: Handle] = [:]
        var devices: [String: FakeVFIODevice] = [:]
        var runtime: [String: Runtime] = [:]
        var viable: [Int: Bool] = [:]
        var groupMembers: [Int: [String]] = [:]
        var openGroups: Set<Int> = []
        var nextIOAS: UInt32 = 1
        var nextDevID: UInt32 = 1
        var log: [String] = []
        var regionQueries = 0
    }

    let state = PackageMutex(State())
    var vfioPresent = true
    var iommufdPresent = true
    var extensions: Set<UInt> = [VFIO.IOMMUType.type1, VFIO.IOMMUType.type1v2]
    var apiVersion: Int32 = 0
    var regionFaults: [Int: RegionFault] = [:]

    init(devRoot: String) {
        self.devRoot = devRoot
    }

    deinit {
        state.withLock { s in
            for d in s.devices.values { for b in d.bars.values where b.memfd >= 0 { Glibc.close(b.memfd) } }
            for r in s.runtime.values {
                for fd in r.ctx.values { Glibc.close(fd) }
                if let q = r.req { Glibc.close(q) }
            }
        }
    }

    // MARK: - Setup and test hooks

    func add(_ device: FakeVFIODevice, viable: Bool = true) {
        var d = device
        for (i, var bar) in d.bars {
            bar.memfd = anonymousFile(size: roundUpToPage(bar.size), tag: "bar\(i)")
            d.bars[i] = bar
        }
        state.withLock { s in
            s.devices[d.address.description] = d
            s.runtime[d.address.description] = Runtime()
            s.viable[d.group] = viable
            s.groupMembers[d.group, default: []].append(d.address.description)
        }
    }

    func setViable(_ group: Int, _ viable: Bool) { state.withLock { $0.viable[group] = viable } }

    /// Writes BAR bytes directly (what the device holds).
    func poke32(_ a: PCIAddress, bar: Int, _ offset: Int, _ value: UInt32) {
        let fd = state.withLock { $0.devices[a.description]?.bars[bar]?.memfd } ?? -1
        var v = value.littleEndian
        _ = Glibc.pwrite(fd, &v, 4, off_t(offset))
    }

    func peek32(_ a: PCIAddress, bar: Int, _ offset: Int) -> UInt32 {
        let fd = state.withLock { $0.devices[a.description]?.bars[bar]?.memfd } ?? -1
        var v: UInt32 = 0
        _ = Glibc.pread(fd, &v, 4, off_t(offset))
        return UInt32(littleEndian: v)
    }

    /// The device raises MSI/MSI-X `vector`: the kernel signals its eventfd, if any.
    @discardableResult
    func fire(_ a: PCIAddress, vector: Int) -> Bool {
        guard let fd = state.withLock({ $0.runtime[a.description]?.ctx[vector] }) else { return false }
        signal(fd)
        return true
    }

    /// The kernel asks for the device back (hot-unplug).
    func requestRelease(_ a: PCIAddress) {
        if let fd = state.withLock({ $0.runtime[a.description]?.req }) { signal(fd) }
    }

    func setMemoryDecode(_ a: PCIAddress, _ on: Bool) {
        state.withLock { s in
            var cmd = s.devices[a.description]!.config.u16(at: PCIReg.command)
            cmd = on ? cmd | PCIReg.Command.memory : cmd & ~PCIReg.Command.memory
            s.devices[a.description]!.config.put16(cmd, at: PCIReg.command)
        }
    }

    func runtime(_ a: PCIAddress) -> Runtime { state.withLock { $0.runtime[a.description] ?? Runtime() } }
    var log: [String] { state.withLock { $0.log } }
    var openFakeHandles: Int { state.withLock { $0.handles.count } }

    private func signal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    // MARK: - SystemCalls

    func open(_ path: String, flags: Int32) throws(SyscallError) -> Int32 {
        let handle: Handle
        if path == devRoot + "/vfio/vfio" {
            guard vfioPresent else { throw SyscallError(ENOENT) }
            handle = .container(iommu: nil, groups: [])
        } else if path.hasPrefix(devRoot + "/vfio/devices/") {
            let name = String(path.dropFirst((devRoot + "/vfio/devices/").count))
            let dev = state.withLock { s in s.devices.values.first { $0.cdevName == name } }
            guard let dev else { throw SyscallError(ENOENT) }
            handle = .device(dev.address.description, cdev: true, bound: false, attached: false)
        } else if path.hasPrefix(devRoot + "/vfio/"), let g = Int(path.dropFirst((devRoot + "/vfio/").count)) {
            guard vfioPresent else { throw SyscallError(ENOENT) }
            let r: Int32 = state.withLock { s in
                guard s.groupMembers[g] != nil else { return ENOENT }
                if s.openGroups.contains(g) { return EBUSY }
                s.openGroups.insert(g)
                return 0
            }
            if r != 0 { throw SyscallError(r) }
            handle = .group(g, container: nil)
        } else if path == devRoot + "/iommu" {
            guard iommufdPresent else { throw SyscallError(ENOENT) }
            handle = .iommufd(ioas: [])
        } else {
            return try real.open(path, flags: flags)
        }
        return state.withLock { s in
            let fd = s.nextFD
            s.nextFD += 1
            s.handles[fd] = handle
            s.log.append("open \(path)")
            return fd
        }
    }

    func close(_ fd: Int32) {
        let handled: Bool = state.withLock { s in
            guard let h = s.handles.removeValue(forKey: fd) else { return false }
            switch h {
            case .container: s.log.append("close container")
            case .group(let g, _): s.log.append("close group \(g)")
            case .device(let name, _, _, _): s.log.append("close device \(name)")
            case .iommufd: s.log.append("close iommufd")
            }
            if case .group(let g, _) = h { s.openGroups.remove(g) }
            if case .device(let name, _, _, _) = h, var rt = s.runtime[name] {
                for efd in rt.ctx.values { Glibc.close(efd) }
                if let q = rt.req { Glibc.close(q) }
                rt = Runtime()
                s.runtime[name] = rt
            }
            return true
        }
        if !handled { real.close(fd) }
    }

    func ioctl(_ fd: Int32, _ request: UInt, value: UInt) throws(SyscallError) -> Int32 {
        let r: Result<Int32, SyscallError> = state.withLock { s in
            s.log.append(VFIO.Ioctl.name(request) + "(\(value))")
            guard case .container(let iommu, let groups)? = s.handles[fd] else { return .failure(SyscallError(ENOTTY)) }
            switch request {
            case VFIO.Ioctl.checkExtension:
                return .success(extensions.contains(value) ? 1 : 0)
            case VFIO.Ioctl.setIOMMU:
                guard !groups.isEmpty, iommu == nil, extensions.contains(value) else { return .failure(SyscallError(EINVAL)) }
                s.handles[fd] = .container(iommu: value, groups: groups)
                return .success(0)
            default:
                return .failure(SyscallError(ENOTTY))
            }
        }
        return try r.get()
    }

    func ioctl(_ fd: Int32, _ request: UInt, pointer: UnsafeMutableRawPointer?) throws(SyscallError) -> Int32 {
        let r: Result<Int32, SyscallError> = state.withLock { s in
            s.log.append(VFIO.Ioctl.name(request))
            guard let h = s.handles[fd] else { return .failure(SyscallError(EBADF)) }
            switch h {
            case .container:
                return request == VFIO.Ioctl.getAPIVersion ? .success(apiVersion) : .failure(SyscallError(ENOTTY))
            case .group(let g, let container):
                return groupIoctl(&s, fd: fd, group: g, container: container, request, pointer)
            case .iommufd(var ioas):
                guard request == VFIO.Ioctl.iommuIOASAlloc, let p = pointer else { return .failure(SyscallError(ENOTTY)) }
                var b = Array(UnsafeRawBufferPointer(start: p, count: 12))
                guard b.u32(at: 0) >= 12, b.u32(at: 4) == 0 else { return .failure(SyscallError(EINVAL)) }
                let id = s.nextIOAS
                s.nextIOAS += 1
                ioas.insert(id)
                s.handles[fd] = .iommufd(ioas: ioas)
                b.put32(id, at: 8)
                p.copyMemory(from: b, byteCount: 12)
                return .success(0)
            case .device(let name, let cdev, let bound, let attached):
                if cdev && request == VFIO.Ioctl.deviceBindIOMMUFD {
                    guard let p = pointer else { return .failure(SyscallError(EFAULT)) }
                    var b = Array(UnsafeRawBufferPointer(start: p, count: 16))
                    guard !bound, b.u32(at: 0) >= 16, b.u32(at: 4) == 0 else { return .failure(SyscallError(EINVAL)) }
                    guard case .iommufd? = s.handles[Int32(bitPattern: b.u32(at: 8))] else { return .failure(SyscallError(EBADF)) }
                    b.put32(s.nextDevID, at: 12)
                    s.nextDevID += 1
                    p.copyMemory(from: b, byteCount: 16)
                    s.handles[fd] = .device(name, cdev: true, bound: true, attached: false)
                    return .success(0)
                }
                // A cdev grants no device access before BIND_IOMMUFD.
                if cdev && !bound { return .failure(SyscallError(EINVAL)) }
                if cdev && request == VFIO.Ioctl.deviceAttachIOMMUFDPT {
                    guard let p = pointer else { return .failure(SyscallError(EFAULT)) }
                    let b = Array(UnsafeRawBufferPointer(start: p, count: 12))
                    guard b.u32(at: 0) >= 12, b.u32(at: 4) == 0 else { return .failure(SyscallError(EINVAL)) }
                    let known = s.handles.values.contains {
                        if case .iommufd(let ioas) = $0 { return ioas.contains(b.u32(at: 8)) }
                        return false
                    }
                    guard known else { return .failure(SyscallError(ENOENT)) }
                    s.handles[fd] = .device(name, cdev: true, bound: true, attached: true)
                    return .success(0)
                }
                _ = attached
                return deviceIoctl(&s, name: name, request, pointer)
            }
        }
        return try r.get()
    }

    private func groupIoctl(
        _ s: inout State, fd: Int32, group: Int, container: Int32?, _ request: UInt, _ pointer: UnsafeMutableRawPointer?
    ) -> Result<Int32, SyscallError> {
        guard let p = pointer else { return .failure(SyscallError(EFAULT)) }
        switch request {
        case VFIO.Ioctl.groupGetStatus:
            var b = Array(UnsafeRawBufferPointer(start: p, count: 8))
            guard b.u32(at: 0) >= 8 else { return .failure(SyscallError(EINVAL)) }
            b.put32((s.viable[group] == true ? VFIO.GroupFlags.viable : 0)
                | (container != nil ? VFIO.GroupFlags.containerSet : 0), at: 4)
            p.copyMemory(from: b, byteCount: 8)
            return .success(0)
        case VFIO.Ioctl.groupSetContainer:
            let cfd = p.load(as: Int32.self)
            guard container == nil, case .container(let iommu, var groups)? = s.handles[cfd] else {
                return .failure(SyscallError(EINVAL))
            }
            groups.insert(group)
            s.handles[cfd] = .container(iommu: iommu, groups: groups)
            s.handles[fd] = .group(group, container: cfd)
            return .success(0)
        case VFIO.Ioctl.groupGetDeviceFD:
            guard let cfd = container, case .container(let iommu, _)? = s.handles[cfd], iommu != nil,
                  s.viable[group] == true else { return .failure(SyscallError(EINVAL)) }
            let name = String(cString: p.assumingMemoryBound(to: CChar.self))
            guard s.groupMembers[group]?.contains(name) == true else { return .failure(SyscallError(ENODEV)) }
            let dfd = s.nextFD
            s.nextFD += 1
            s.handles[dfd] = .device(name, cdev: false, bound: true, attached: true)
            return .success(dfd)
        default:
            return .failure(SyscallError(ENOTTY))
        }
    }

    private func deviceIoctl(
        _ s: inout State, name: String, _ request: UInt, _ pointer: UnsafeMutableRawPointer?
    ) -> Result<Int32, SyscallError> {
        guard let dev = s.devices[name] else { return .failure(SyscallError(ENODEV)) }
        if request == VFIO.Ioctl.deviceReset { return .success(0) }
        guard let p = pointer else { return .failure(SyscallError(EFAULT)) }
        let argsz = Int(p.load(as: UInt32.self))
        switch request {
        case VFIO.Ioctl.deviceGetInfo:
            guard argsz >= 16 else { return .failure(SyscallError(EINVAL)) }
            var b = [UInt8](repeating: 0, count: 16)
            b.put32(UInt32(argsz), at: 0)
            b.put32(VFIO.DeviceFlags.pci.rawValue | VFIO.DeviceFlags.reset.rawValue, at: 4)
            b.put32(UInt32(VFIO.Region.count), at: 8)
            b.put32(5, at: 12)
            p.copyMemory(from: b, byteCount: 16)
            return .success(0)
        case VFIO.Ioctl.deviceGetRegionInfo:
            return regionInfo(&s, dev, p, argsz: argsz)
        case VFIO.Ioctl.deviceGetIRQInfo:
            var b = Array(UnsafeRawBufferPointer(start: p, count: 16))
            let index = Int(b.u32(at: 8))
            guard argsz >= 16, index < 5, index != 3 || dev.isPCIe else { return .failure(SyscallError(EINVAL)) }
            var flags = VFIO.IRQInfoFlags.eventfd
            if index == 0 { flags.formUnion([.maskable, .automasked]) }
            else if index != 2 || !dev.hasDynMSIX { flags.insert(.noResize) }
            b.put32(flags.rawValue, at: 4)
            b.put32(UInt32(irqCount(dev, index)), at: 12)
            p.copyMemory(from: b, byteCount: 16)
            return .success(0)
        case VFIO.Ioctl.deviceSetIRQs:
            return setIRQs(&s, dev, p, argsz: argsz)
        default:
            return .failure(SyscallError(ENOTTY))
        }
    }

    private func irqCount(_ dev: FakeVFIODevice, _ index: Int) -> Int {
        switch index {
        case 0: dev.config[PCIReg.interruptPin] != 0 ? 1 : 0
        case 1: dev.msiCount
        case 2: dev.msixCount
        case 3: dev.isPCIe ? 1 : 0
        default: 1
        }
    }

    // MARK: Region info (capability chain, argsz protocol)

    private func regionInfo(_ s: inout State, _ dev: FakeVFIODevice, _ p: UnsafeMutableRawPointer, argsz: Int)
        -> Result<Int32, SyscallError>
    {
        s.regionQueries += 1
        let index = Int(p.load(fromByteOffset: 8, as: UInt32.self))
        guard argsz >= 32, index < VFIO.Region.count else { return .failure(SyscallError(EINVAL)) }
        var flags = VFIO.RegionFlags()
        var size: UInt64 = 0
        var caps: [[UInt8]] = []
        if index < 6, let bar = dev.bars[index] {
            size = UInt64(bar.size)
            flags = [.read, .write]
            if bar.mmappable {
                flags.insert(.mmap)
                if let sparse = dev.sparse[index] {
                    var c = [UInt8](repeating: 0, count: 16 + 16 * sparse.count)
                    c.put16(VFIO.RegionCapability.sparseMMap, at: 0)
                    c.put16(1, at: 2)
                    c.put32(UInt32(sparse.count), at: 8)
                    for (k, r) in sparse.enumerated() {
                        c.put64(r.lowerBound, at: 16 + 16 * k)
                        c.put64(r.upperBound - r.lowerBound, at: 24 + 16 * k)
                    }
                    caps.append(c)
                }
                if dev.msixBAR == index && dev.msixMappable {
                    var c = [UInt8](repeating: 0, count: 8)
                    c.put16(VFIO.RegionCapability.msixMappable, at: 0)
                    c.put16(1, at: 2)
                    caps.append(c)
                }
            }
        } else if index == VFIO.Region.config {
            size = UInt64(dev.config.count)
            flags = [.read, .write]
        }
        if let (t, st) = dev.typeCap[index] {
            var c = [UInt8](repeating: 0, count: 16)
            c.put16(VFIO.RegionCapability.type, at: 0)
            c.put16(1, at: 2)
            c.put32(t, at: 8)
            c.put32(st, at: 12)
            caps.append(c)
        }
        var reply = [UInt8](repeating: 0, count: 32)
        var total = 32 + caps.reduce(0) { $0 + $1.count }
        if regionFaults[index] == .argszGrowsForever { total = argsz + 8 }
        reply.put32(UInt32(argsz), at: 0)
        reply.put32(UInt32(index), at: 8)
        reply.put64(size, at: 16)
        reply.put64(UInt64(index) << 40, at: 24)
        if !caps.isEmpty { flags.insert(.caps) }
        reply.put32(flags.rawValue, at: 4)
        if !caps.isEmpty {
            if argsz < total {
                reply.put32(UInt32(total), at: 0)
                reply.put32(0, at: 12)
            } else {
                // Chain the capabilities after the structure, as vfio_info_cap_shift leaves them.
                var at = 32
                var chain: [UInt8] = []
                for (k, var c) in caps.enumerated() {
                    let next = k + 1 < caps.count ? at + c.count : 0
                    c.put32(UInt32(next), at: 4)
                    chain += c
                    at += c.count
                }
                switch regionFaults[index] {
                case .loopingChain?: chain.put32(32, at: 4)
                case .nextOutsideReply?: chain.put32(0x1000, at: 4)
                default: break
                }
                reply.put32(32, at: 12)
                reply += chain
            }
        }
        p.copyMemory(from: reply, byteCount: min(reply.count, argsz))
        return .success(0)
    }

    // MARK: SET_IRQS, as vfio-pci validates and applies it

    private func setIRQs(_ s: inout State, _ dev: FakeVFIODevice, _ p: UnsafeMutableRawPointer, argsz: Int)
        -> Result<Int32, SyscallError>
    {
        let minsz = 20
        guard argsz >= minsz else { return .failure(SyscallError(EINVAL)) }
        let header = Array(UnsafeRawBufferPointer(start: p, count: minsz))
        let flags = VFIO.IRQSetFlags(rawValue: header.u32(at: 4))
        let index = Int(header.u32(at: 8))
        let start = Int(header.u32(at: 12))
        let count = Int(header.u32(at: 16))
        // vfio_set_irqs_validate_and_prepare
        guard index < 5, flags.subtracting(VFIO.IRQSetFlags.dataTypeMask.union(.actionTypeMask)).isEmpty,
              UInt64(count) < UInt64(UInt32.max) - UInt64(start) else { return .failure(SyscallError(EINVAL)) }
        let max = irqCount(dev, index)
        guard start < max, start + count <= max else { return .failure(SyscallError(EINVAL)) }
        let dataSize: Int
        switch flags.intersection(.dataTypeMask) {
        case .dataNone: dataSize = 0
        case .dataBool: dataSize = 1
        case .dataEventfd: dataSize = 4
        default: return .failure(SyscallError(EINVAL))
        }
        if dataSize > 0 && argsz - minsz < count * dataSize { return .failure(SyscallError(EINVAL)) }
        let data = Array(UnsafeRawBufferPointer(start: p + minsz, count: count * dataSize))
        // vfio_pci_set_irqs_ioctl: exactly one action, one that the index implements
        let action = flags.intersection(.actionTypeMask)
        guard action == .actionTrigger else { return .failure(SyscallError(ENOTTY)) }
        let name = dev.address.description
        var rt = s.runtime[name] ?? Runtime()
        defer { s.runtime[name] = rt }
        if index == 4 || index == 3 {
            guard start == 0, count <= 1 else { return .failure(SyscallError(EINVAL)) }
            if flags.contains(.dataNone) {
                if let q = rt.req { if count > 0 { signal(q) } else { Glibc.close(q); rt.req = nil } }
                return .success(0)
            }
            guard count == 1 else { return .failure(SyscallError(EINVAL)) }
            if flags.contains(.dataEventfd) {
                let fd = Int32(bitPattern: data.u32(at: 0))
                if let q = rt.req { Glibc.close(q) }
                rt.req = nil
                if fd >= 0 {
                    let d = dup(fd)
                    guard d >= 0 else { return .failure(SyscallError(EBADF)) }
                    rt.req = d
                }
            }
            return .success(0)
        }
        guard index == 1 || index == 2 else { return .failure(SyscallError(ENOTTY)) }
        // vfio_pci_set_msi_trigger
        if rt.irqType == index && count == 0 && flags.contains(.dataNone) {
            for fd in rt.ctx.values { Glibc.close(fd) }
            rt = Runtime(irqType: nil, allocated: 0, ctx: [:], req: rt.req)
            return .success(0)
        }
        guard rt.irqType == index || rt.irqType == nil else { return .failure(SyscallError(EINVAL)) }
        if flags.contains(.dataEventfd) {
            if rt.irqType == nil {
                guard start + count > 0 else { return .failure(SyscallError(EINVAL)) }
                rt.irqType = index
                rt.allocated = start + count
            }
            for k in 0..<count {
                let vector = start + k
                let fd = Int32(bitPattern: data.u32(at: 4 * k))
                if let old = rt.ctx.removeValue(forKey: vector) { Glibc.close(old) }
                if fd < 0 { continue }
                if vector >= rt.allocated {
                    guard index == 2 && dev.hasDynMSIX else { return .failure(SyscallError(EINVAL)) }
                    rt.allocated = vector + 1
                }
                let d = dup(fd)
                guard d >= 0 else { return .failure(SyscallError(EBADF)) }
                rt.ctx[vector] = d
            }
            return .success(0)
        }
        guard rt.irqType == index else { return .failure(SyscallError(EINVAL)) }
        for vector in start..<(start + count) {
            guard let fd = rt.ctx[vector] else { continue }
            if flags.contains(.dataNone) || (flags.contains(.dataBool) && data[vector - start] != 0) { signal(fd) }
        }
        return .success(0)
    }

    // MARK: - Region I/O

    private func locate(_ fd: Int32, _ offset: Int64, _ length: Int) -> Result<(FakeVFIODevice, Int, Int), SyscallError> {
        state.withLock { s in
            guard case .device(let name, let cdev, let bound, _)? = s.handles[fd], let dev = s.devices[name] else {
                return .failure(SyscallError(EBADF))
            }
            if cdev && !bound { return .failure(SyscallError(EINVAL)) }
            let index = Int(offset >> 40)
            let within = Int(offset & ((1 << 40) - 1))
            let size = index == VFIO.Region.config ? dev.config.count : (dev.bars[index]?.size ?? 0)
            guard within + length <= size else { return .failure(SyscallError(EINVAL)) }
            return .success((dev, index, within))
        }
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int {
        guard isFake(fd) else { return try real.pread(fd, into: buffer, at: offset) }
        let (dev, index, within) = try locate(fd, offset, buffer.count).get()
        if index == VFIO.Region.config {
            let current = state.withLock { $0.devices[dev.address.description]!.config }
            buffer.copyBytes(from: current[within..<(within + buffer.count)])
            return buffer.count
        }
        guard decodeOn(dev) else { throw SyscallError(EIO) }
        let n = Glibc.pread(dev.bars[index]!.memfd, buffer.baseAddress, buffer.count, off_t(within))
        if dev.msixBAR == index {
            // vfio-pci virtualizes the MSI-X table through read(): all-ones bytes.
            for k in 0..<buffer.count where dev.msixTable.contains(within + k) { buffer[k] = 0xFF }
        }
        return n
    }

    func pwrite(_ fd: Int32, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(SyscallError) -> Int {
        guard isFake(fd) else { return try real.pwrite(fd, from: buffer, at: offset) }
        let (dev, index, within) = try locate(fd, offset, buffer.count).get()
        if index == VFIO.Region.config {
            state.withLock { s in
                for k in 0..<buffer.count { s.devices[dev.address.description]!.config[within + k] = buffer[k] }
            }
            return buffer.count
        }
        guard decodeOn(dev) else { throw SyscallError(EIO) }
        for k in 0..<buffer.count where !(dev.msixBAR == index && dev.msixTable.contains(within + k)) {
            var byte = buffer[k]
            _ = Glibc.pwrite(dev.bars[index]!.memfd, &byte, 1, off_t(within + k))  // table writes are dropped
        }
        return buffer.count
    }

    private func decodeOn(_ dev: FakeVFIODevice) -> Bool {
        let current = state.withLock { $0.devices[dev.address.description]!.config }
        return current.u16(at: PCIReg.command) & PCIReg.Command.memory != 0
    }

    func mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int64) throws(SyscallError)
        -> UnsafeMutableRawPointer
    {
        guard isFake(fd) else {
            return try real.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
        }
        let index = Int(offset >> 40)
        let within = Int(offset & ((1 << 40) - 1))
        let dev: FakeVFIODevice = try state.withLock { s throws(SyscallError) -> FakeVFIODevice in
            s.log.append("mmap region \(index) 0x\(hex(within, width: 1))+0x\(hex(length, width: 1))")
            guard case .device(let name, _, _, _)? = s.handles[fd], let d = s.devices[name] else { throw SyscallError(EBADF) }
            return d
        }
        guard index < 6, let bar = dev.bars[index], bar.mmappable, within & (systemPageSize - 1) == 0,
              within + length <= roundUpToPage(bar.size) else { throw SyscallError(EINVAL) }
        if let sparse = dev.sparse[index],
           !sparse.contains(where: { $0.lowerBound <= UInt64(within) && UInt64(within + length) <= roundUpToPage(Int($0.upperBound)) }) {
            throw SyscallError(EINVAL)
        }
        if dev.msixBAR == index && !dev.msixMappable && dev.sparse[index] == nil {
            // Pre-4.16 vfio-pci refused mappings that cover the MSI-X table's pages.
            let lo = dev.msixTable.lowerBound & ~(systemPageSize - 1)
            let hi = roundUpToPage(dev.msixTable.upperBound)
            if within < hi && lo < within + length { throw SyscallError(EINVAL) }
        }
        return try real.mmap(length: length, protection: protection, flags: flags, fd: bar.memfd, offset: Int64(within))
    }

    func munmap(_ address: UnsafeMutableRawPointer, length: Int) { real.munmap(address, length: length) }
    func eventfd(initial: UInt32, flags: Int32) throws(SyscallError) -> Int32 { try real.eventfd(initial: initial, flags: flags) }

    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> Int {
        guard !isFake(fd) else { throw SyscallError(EINVAL) }
        return try real.read(fd, into: buffer)
    }

    func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(SyscallError) -> Int {
        guard !isFake(fd) else { throw SyscallError(EINVAL) }
        return try real.write(fd, from: buffer)
    }

    func status(_ fd: Int32) throws(SyscallError) -> FileStatus {
        guard !isFake(fd) else { return FileStatus(size: 0, isRegularFile: false, isOnSysfs: false) }
        return try real.status(fd)
    }

    private func isFake(_ fd: Int32) -> Bool { state.withLock { $0.handles[fd] != nil } }
}

/// An unlinked temporary file of `size` zero bytes (what memfd_create would give).
func anonymousFile(size: Int, tag: String) -> Int32 {
    var template = Array("/tmp/msishim-\(tag)-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    _ = ftruncate(fd, off_t(size))
    return fd
}
