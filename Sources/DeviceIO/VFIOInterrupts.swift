// MSI and MSI-X through VFIO: one eventfd per vector, armed with VFIO_DEVICE_SET_IRQS.
// vfio-pci programs the real MSI-X table / MSI capability itself; userspace only chooses
// which vectors exist and where they signal.
//
// Lock rule: VFIODevice.irqState is held across each SET_IRQS so the recorded state always
// matches what the kernel was last told.
#if canImport(Glibc)
import Glibc
#endif
import MSIShimCore
import CMSIShim
public import PCIAccess

/// An eventfd: the kernel adds 1 per interrupt; reading returns and clears the count.
public final class EventFD: Sendable {
    /// The descriptor (non-blocking, close-on-exec).
    public let fd: Int32
    let syscalls: any SystemCalls

    /// Creates a non-blocking eventfd.
    public init(syscalls: any SystemCalls = LinuxSystemCalls()) throws(DeviceIOError) {
        do {
            fd = try syscalls.eventfd(initial: 0, flags: MSISHIM_EFD_NONBLOCK | MSISHIM_EFD_CLOEXEC)
        } catch {
            throw .system(operation: "eventfd", errno: error.code)
        }
        self.syscalls = syscalls
    }

    deinit { syscalls.close(fd) }

    /// Reads (and clears) the count without blocking: 0 when nothing arrived (EAGAIN).
    /// An eventfd read is always exactly 8 bytes.
    public func take() throws(DeviceIOError) -> UInt64 {
        var value: UInt64 = 0
        let n: Int
        do {
            n = try withUnsafeMutableBytes(of: &value) { b throws(SyscallError) in try syscalls.read(fd, into: b) }
        } catch {
            if error.code == EAGAIN { return 0 }
            throw .system(operation: "read eventfd \(fd)", errno: error.code)
        }
        guard n == 8 else { throw .system(operation: "read eventfd \(fd) returned \(n) bytes", errno: EIO) }
        return value
    }

    /// Adds `count` (what the kernel does on an interrupt); for tests and benchmarks.
    public func signal(_ count: UInt64 = 1) throws(DeviceIOError) {
        var value = count
        do {
            _ = try withUnsafeBytes(of: &value) { b throws(SyscallError) in try syscalls.write(fd, from: b) }
        } catch {
            throw .system(operation: "write eventfd \(fd)", errno: error.code)
        }
    }
}

extension MSIKind {
    /// The VFIO IRQ index of this kind.
    public var index: VFIO.IRQIndex { self == .msi ? .msi : .msix }
    /// "MSI" or "MSI-X", for messages.
    public var displayName: String { self == .msi ? "MSI" : "MSI-X" }
}

/// What ``VFIODevice/attachVector(_:kind:)`` had to do.
public enum VectorAttachment: Sendable {
    /// The vector got its eventfd with a single-vector SET_IRQS.
    case attached(EventFD)
    /// The index was `NORESIZE` and too small: it was disabled and re-enabled with
    /// `newCount` vectors (interrupts arriving in between are lost), then the vector attached.
    case grewByReenabling(EventFD, oldCount: Int, newCount: Int)

    /// The vector's eventfd.
    public var eventFD: EventFD {
        switch self {
        case .attached(let e), .grewByReenabling(let e, _, _): e
        }
    }
}

/// What the device's IRQ side looks like from here (guarded by `VFIODevice.irqState`).
struct InterruptState: Sendable {
    /// The MSI/MSI-X index currently enabled, if any.
    var active: MSIKind?
    /// Vectors the kernel allocated when enabling (start + count of the enabling call).
    var allocated = 0
    /// Vector → eventfd.
    var vectors: [Int: EventFD] = [:]
    /// The request (hot-unplug) notifier.
    var request: EventFD?
}

extension VFIODevice {
    /// `VFIO_DEVICE_GET_IRQ_INFO` for an index.
    public func irqInfo(_ index: VFIO.IRQIndex) throws(DeviceIOError) -> VFIOIRQInfo {
        var bytes = [UInt8](repeating: 0, count: VFIO.Layout.irqInfoSize)
        try bytes.setField32(UInt32(VFIO.Layout.irqInfoSize), at: 0)
        try bytes.setField32(UInt32(index.rawValue), at: 8)
        do {
            _ = try syscalls.ioctl(deviceFD, VFIO.Ioctl.deviceGetIRQInfo, bytes: &bytes)
        } catch {
            throw .ioctlFailed("VFIO_DEVICE_GET_IRQ_INFO", errno: error.code, context: "\(address) index \(index)")
        }
        return VFIOIRQInfo(
            index: index, flags: VFIO.IRQInfoFlags(rawValue: try bytes.field32(at: 4)), count: Int(try bytes.field32(at: 12)))
    }

    /// Encodes and issues one `VFIO_DEVICE_SET_IRQS`.
    func setIRQs(
        _ index: VFIO.IRQIndex, flags: VFIO.IRQSetFlags, start: Int, count: Int, eventfds: [Int32] = []
    ) throws(DeviceIOError) {
        let size = VFIO.Layout.irqSetHeaderSize + 4 * eventfds.count
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.setField32(UInt32(size), at: 0)
        try bytes.setField32(flags.rawValue, at: 4)
        try bytes.setField32(UInt32(index.rawValue), at: 8)
        try bytes.setField32(UInt32(start), at: 12)
        try bytes.setField32(UInt32(count), at: 16)
        for (i, fd) in eventfds.enumerated() { try bytes.setField32(UInt32(bitPattern: fd), at: 20 + 4 * i) }
        do {
            _ = try syscalls.ioctl(deviceFD, VFIO.Ioctl.deviceSetIRQs, bytes: &bytes)
        } catch {
            throw .ioctlFailed(
                "VFIO_DEVICE_SET_IRQS", errno: error.code,
                context: "\(address) \(index) start \(start) count \(count) flags 0x\(hex(flags.rawValue, width: 2))")
        }
    }

    private func checkedInfo(_ kind: MSIKind, vector: Int? = nil, count: Int? = nil) throws(DeviceIOError) -> VFIOIRQInfo {
        let info = try irqInfo(kind.index)
        guard info.count > 0, info.flags.contains(.eventfd) else {
            throw .interrupt("\(address) has no \(kind.displayName) vectors through VFIO")
        }
        if let vector, !(0..<info.count).contains(vector) {
            throw .interrupt("\(address): \(kind.displayName) vector \(vector) is out of range (0-\(info.count - 1))")
        }
        if let count, !(1...info.count).contains(count) {
            throw .interrupt("\(address): \(count) \(kind.displayName) vectors requested, the device has \(info.count)")
        }
        return info
    }

    /// Enables `kind` with `count` vectors, one new eventfd each, in a single SET_IRQS
    /// (DATA_EVENTFD | ACTION_TRIGGER, start 0): "arm all". Fails if another index is enabled.
    @discardableResult
    public func enableInterrupts(_ kind: MSIKind, count: Int) throws(DeviceIOError) -> [EventFD] {
        _ = try checkedInfo(kind, count: count)
        return try irqState.withLock { state throws(DeviceIOError) -> [EventFD] in
            if let active = state.active {
                throw .interrupt("\(address): \(active.displayName) is already enabled; disable it first")
            }
            var fds: [EventFD] = []
            for _ in 0..<count { fds.append(try EventFD(syscalls: syscalls)) }
            try setIRQs(kind.index, flags: [.dataEventfd, .actionTrigger], start: 0, count: count, eventfds: fds.map(\.fd))
            state.active = kind
            state.allocated = count
            state.vectors = Dictionary(uniqueKeysWithValues: fds.enumerated().map { ($0.offset, $0.element) })
            return fds
        }
    }

    /// Gives `vector` an eventfd, enabling the index if needed.
    ///
    /// Inside the allocated range (or on a device that can grow MSI-X dynamically: no
    /// `NORESIZE`) it is one single-vector SET_IRQS. Past the allocated range of a `NORESIZE`
    /// index, the index is disabled and re-enabled with `vector + 1` vectors, re-arming every
    /// existing eventfd — interrupts in between are lost — and the result says so.
    public func attachVector(_ vector: Int, kind: MSIKind) throws(DeviceIOError) -> VectorAttachment {
        let info = try checkedInfo(kind, vector: vector)
        return try irqState.withLock { state throws(DeviceIOError) -> VectorAttachment in
            if let active = state.active, active != kind {
                throw .interrupt("\(address): \(active.displayName) is enabled; disable it before using \(kind.displayName)")
            }
            let efd = try EventFD(syscalls: syscalls)
            if state.active == nil {
                // Enabling allocates start + count vectors; only `vector` gets a trigger.
                try setIRQs(kind.index, flags: [.dataEventfd, .actionTrigger], start: vector, count: 1, eventfds: [efd.fd])
                state.active = kind
                state.allocated = vector + 1
                state.vectors[vector] = efd
                return .attached(efd)
            }
            if vector < state.allocated || !info.flags.contains(.noResize) {
                try setIRQs(kind.index, flags: [.dataEventfd, .actionTrigger], start: vector, count: 1, eventfds: [efd.fd])
                state.allocated = max(state.allocated, vector + 1)
                state.vectors[vector] = efd
                return .attached(efd)
            }
            let oldCount = state.allocated
            let newCount = vector + 1
            try setIRQs(kind.index, flags: [.dataNone, .actionTrigger], start: 0, count: 0)
            state.active = nil
            state.allocated = 0
            var fds = [Int32](repeating: -1, count: newCount)
            for (v, e) in state.vectors where v < newCount { fds[v] = e.fd }
            fds[vector] = efd.fd
            do throws(DeviceIOError) {
                try setIRQs(kind.index, flags: [.dataEventfd, .actionTrigger], start: 0, count: newCount, eventfds: fds)
            } catch {
                state.vectors = [:]  // the kernel now has the index disabled: mirror it
                throw error
            }
            state.active = kind
            state.allocated = newCount
            state.vectors[vector] = efd
            return .grewByReenabling(efd, oldCount: oldCount, newCount: newCount)
        }
    }

    /// Removes `vector`'s eventfd (SET_IRQS with fd −1); the index stays enabled.
    public func detachVector(_ vector: Int, kind: MSIKind) throws(DeviceIOError) {
        try irqState.withLock { state throws(DeviceIOError) in
            guard state.active == kind else { throw .interrupt("\(address): \(kind.displayName) is not enabled") }
            try setIRQs(kind.index, flags: [.dataEventfd, .actionTrigger], start: vector, count: 1, eventfds: [-1])
            state.vectors[vector] = nil
        }
    }

    /// Software loopback: asks the kernel to signal `vector`'s eventfd (DATA_NONE | TRIGGER),
    /// as if the device had raised it. Selftests use this to check the eventfd path.
    public func triggerVector(_ vector: Int, kind: MSIKind) throws(DeviceIOError) {
        try irqState.withLock { state throws(DeviceIOError) in
            guard state.active == kind else { throw .interrupt("\(address): \(kind.displayName) is not enabled") }
            try setIRQs(kind.index, flags: [.dataNone, .actionTrigger], start: vector, count: 1)
        }
    }

    /// Disables the index (count 0, DATA_NONE | TRIGGER) and drops every eventfd.
    public func disableInterrupts(_ kind: MSIKind) throws(DeviceIOError) {
        try irqState.withLock { state throws(DeviceIOError) in
            guard state.active == kind else { return }
            try setIRQs(kind.index, flags: [.dataNone, .actionTrigger], start: 0, count: 0)
            state.active = nil
            state.allocated = 0
            state.vectors = [:]
        }
    }

    /// Interrupts counted on `vector` since the last call (non-blocking read of its eventfd);
    /// nil when the vector has no eventfd.
    public func takeEventCount(_ vector: Int) throws(DeviceIOError) -> UInt64? {
        guard let efd = irqState.withLock({ $0.vectors[vector] }) else { return nil }
        return try efd.take()
    }

    /// The eventfd of `vector`, if attached.
    public func eventFD(forVector vector: Int) -> EventFD? {
        irqState.withLock { $0.vectors[vector] }
    }

    /// The enabled MSI kind and the number of allocated vectors.
    public var interruptStatus: (kind: MSIKind?, allocated: Int) {
        irqState.withLock { ($0.active, $0.allocated) }
    }

    /// Registers an eventfd on `VFIO_PCI_REQ_IRQ_INDEX`: the kernel signals it when it wants
    /// the device back (hot-unplug, unbind) and waits until the device fd is closed.
    @discardableResult
    public func enableReleaseRequestNotification() throws(DeviceIOError) -> EventFD {
        let efd = try EventFD(syscalls: syscalls)
        try setIRQs(.req, flags: [.dataEventfd, .actionTrigger], start: 0, count: 1, eventfds: [efd.fd])
        irqState.withLock { $0.request = efd }
        return efd
    }

    /// Whether the kernel has asked for the device back since the last call.
    public func releaseRequested() throws(DeviceIOError) -> Bool {
        guard let efd = irqState.withLock({ $0.request }) else { return false }
        return try efd.take() > 0
    }
}
