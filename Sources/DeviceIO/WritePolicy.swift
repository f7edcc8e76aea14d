// The one rule of this layer: nothing writes to a device a kernel driver owns.
//
// A hardware backend is writable only when (1) the caller asked for writes explicitly and
// (2) the device is bound to a userspace-I/O driver (vfio-pci or uio_pci_generic). The driver
// is checked when the backend is opened and again before each write where that is cheap
// (config writes through sysfs re-read the `driver` link; MMIO writes trust the open-time check
// because a readlink per store would cost more than the store).
public import MSIShimCore
public import PCIAccess

/// Whether the caller wants to write to the device.
public enum WriteIntent: Sendable, Hashable {
    /// Reads only; every write throws `DeviceAccessError.notWritable`.
    case readOnly
    /// Writes are wanted; they are still refused unless the device is bound to a userspace-I/O
    /// driver (see ``WritePolicy``).
    case allowWrites
}

/// The outcome of the write policy for one device: writable, or why not.
public enum WritePermission: Sendable, Hashable {
    /// Writes may reach the device.
    case granted
    /// Writes are refused; the reason names the owner and what to do.
    case denied(reason: String)

    /// Whether writes are allowed.
    public var isGranted: Bool { self == .granted }

    /// The refusal reason, or nil when granted.
    public var reason: String? {
        if case .denied(let r) = self { return r }
        return nil
    }
}

/// Decides whether a hardware backend may write, from the bound driver and the caller's intent.
public enum WritePolicy {
    /// The drivers that hand a device to userspace: only devices bound to these are writable.
    public static let userspaceDrivers: Set<String> = Set(UserspaceDriver.allCases.map(\.rawValue))

    /// The policy for a device bound to `driver` (nil = no driver).
    public static func evaluate(driver: String?, intent: WriteIntent, address: PCIAddress) -> WritePermission {
        guard let driver else {
            return .denied(reason: "\(address) is not bound to any driver; only a device bound to a userspace "
                + "driver (vfio-pci or uio_pci_generic) may be written")
        }
        guard userspaceDrivers.contains(driver) else {
            return .denied(reason: "\(address) is owned by kernel driver '\(driver)'; writing would race with it. "
                + "Only a device handed to a userspace driver (vfio-pci or uio_pci_generic) may be written")
        }
        guard intent == .allowWrites else {
            return .denied(reason: "opened read-only; open it with write intent (WriteIntent.allowWrites) to "
                + "modify this \(driver) device")
        }
        return .granted
    }

    /// The policy for a device, reading its driver from sysfs.
    public static func evaluate(address: PCIAddress, sysfs: SysfsPCI, intent: WriteIntent) -> WritePermission {
        evaluate(driver: sysfs.driver(of: address), intent: intent, address: address)
    }
}

/// A config-space backend wrapped so that it obeys the write policy: reads pass through;
/// writes are refused unless the policy grants them at open time *and* the device is still
/// bound to a userspace driver at the time of the write.
///
/// Use it around any backend that can technically write (the libpci backend opened with
/// writes allowed, a sysfs `config` file opened read-write): the wrapper, not the backend,
/// decides.
public struct PolicyGuardedConfigSpace<Base: ConfigSpaceAccess>: ConfigSpaceAccess {
    /// The wrapped backend.
    public let base: Base
    /// The device, for the per-write driver check.
    public let address: PCIAddress
    /// Where the driver link is read.
    public let sysfs: SysfsPCI
    /// The decision taken at open time.
    public let permission: WritePermission
    let intent: WriteIntent

    /// Wraps `base`, evaluating the policy now.
    public init(base: Base, address: PCIAddress, sysfs: SysfsPCI, intent: WriteIntent) {
        self.base = base
        self.address = address
        self.sysfs = sysfs
        self.intent = intent
        let p = WritePolicy.evaluate(address: address, sysfs: sysfs, intent: intent)
        self.permission = base.isWritable || !p.isGranted
            ? p : .denied(reason: "the underlying backend (\(base.name)) was opened read-only")
    }

    public var name: String { base.name }
    public var readableSize: Int { base.readableSize }
    public var isWritable: Bool { permission.isGranted }

    public func read8(_ offset: Int) throws -> UInt8 { try base.read8(offset) }
    public func read16(_ offset: Int) throws -> UInt16 { try base.read16(offset) }
    public func read32(_ offset: Int) throws -> UInt32 { try base.read32(offset) }

    public func write8(_ offset: Int, _ value: UInt8) throws {
        try checkWrite()
        try base.write8(offset, value)
    }

    public func write16(_ offset: Int, _ value: UInt16) throws {
        try checkWrite()
        try base.write16(offset, value)
    }

    public func write32(_ offset: Int, _ value: UInt32) throws {
        try checkWrite()
        try base.write32(offset, value)
    }

    func checkWrite() throws(DeviceAccessError) {
        if let reason = permission.reason { throw DeviceAccessError.notWritable(name, reason: reason) }
        // Re-check: the device may have been rebound to a kernel driver since it was opened.
        if case .denied(let reason) = WritePolicy.evaluate(address: address, sysfs: sysfs, intent: intent) {
            throw DeviceAccessError.notWritable(name, reason: "driver changed since open: " + reason)
        }
    }
}
