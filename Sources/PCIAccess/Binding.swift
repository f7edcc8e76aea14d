// Handing a PCI function to a userspace driver and back, the way driverctl does:
// driver_override + unbind + drivers_probe. Plans are computed first (a caller can show them
// before anything is written), then applied; the original driver is remembered in a state file so
// a restoring unbind can give the device back.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// The userspace-I/O drivers a device can be handed to.
public enum UserspaceDriver: String, CaseIterable, Sendable {
    /// vfio-pci: IOMMU-isolated, MSI/MSI-X through eventfds.
    case vfioPCI = "vfio-pci"
    /// uio_pci_generic: no isolation, INTx only.
    case uioPCIGeneric = "uio_pci_generic"
}

/// One write to a sysfs file, relative to the sysfs root.
public struct SysfsWrite: Hashable, Sendable {
    /// Path below the sysfs root, e.g. `bus/pci/drivers_probe`.
    public var relativePath: String
    /// The exact bytes written (no newline added).
    public var value: String

    /// Creates a write.
    public init(_ relativePath: String, _ value: String) {
        self.relativePath = relativePath
        self.value = value
    }

    /// `write "value" to <root>/<path>`, with control characters escaped.
    public func rendered(root: String) -> String {
        let shown = value == "\n" ? "\\n\" (clears it)" : escapingControlCharacters(value) + "\""
        return "write \"\(shown) to \(root)/\(relativePath)"
    }
}

/// Why a device looks in use by its kernel driver.
public struct InUseReason: Hashable, Sendable, CustomStringConvertible {
    /// The kind of evidence.
    public enum Kind: String, Sendable {
        /// The driver has taken interrupts (non-zero /proc/interrupts counts).
        case interrupts
        /// Class 01xx: disks may be mounted through it.
        case storage
        /// Class 02xx: a network interface may be up.
        case network
        /// The boot VGA device.
        case bootDisplay
        /// A PCI-to-PCI bridge (class 0604).
        case bridge
        /// The block device holding `/` is below it.
        case rootFilesystem
    }

    /// The kind of evidence.
    public var kind: Kind
    /// A sentence naming the evidence (IRQ counts, class code, block device).
    public var detail: String

    public var description: String { detail }
}

/// What a bind/unbind would do, computed without touching anything.
public struct BindPlan: Sendable {
    /// The function.
    public var address: PCIAddress
    /// The driver bound now.
    public var currentDriver: String?
    /// The driver it should end up with (nil: unbound, or "whatever the kernel picks").
    public var expectedDriver: String?
    /// The writes, in order.
    public var writes: [SysfsWrite]
    /// Reasons the current driver looks busy: the plan is refused without `force`.
    public var inUse: [InUseReason]
    /// Problems `force` cannot override (the target driver is not loaded, …).
    public var blockers: [String]
    /// Explanations: IOMMU group viability, what each driver gives, leftovers.
    public var notes: [String]
    /// State file to write first (path, contents), for a later restoring unbind.
    public var stateToRecord: (path: String, contents: String)?
    /// State file to delete after the writes.
    public var stateToRemove: String?
    /// Other members of the IOMMU group that must be bound to vfio-pci too before the group
    /// is viable (binding to vfio-pci only).
    public var groupMembersToBind: [GroupMember] = []
    /// A `driver_override` that an unbind without restore leaves in place: the next probe
    /// binds that driver again until a restore clears it.
    public var overrideLeftInPlace: String?

    /// True when there is nothing to write.
    public var isEmpty: Bool { writes.isEmpty }
}

/// How an applied plan ended.
public struct BindOutcome: Sendable {
    /// The driver bound after the writes.
    public var driver: String?
    /// Whether that is the driver the plan expected (always true when it expected "any").
    public var matchesExpectation: Bool
}

/// Why binding could not be done.
public enum BindError: ErrnoCarrying, Equatable, Sendable, CustomStringConvertible {
    /// The function is not in sysfs.
    case noSuchDevice(PCIAddress)
    /// The current driver is in use and `force` was not given.
    case inUse(PCIAddress, driver: String, reasons: [InUseReason])
    /// Something `force` cannot override.
    case blocked(PCIAddress, reasons: [String])
    /// A sysfs write failed.
    case write(FileError)
    /// The state file could not be written or removed.
    case state(path: String, errno: Int32)

    public var errno: KernelErrno? {
        switch self {
        case .noSuchDevice: .ENODEV
        case .inUse: .EBUSY
        case .blocked: .ENODEV
        case .write(let e): e.errno
        case .state(_, let e): KernelErrno(code: e)
        }
    }

    public var description: String {
        switch self {
        case .noSuchDevice(let a): "\(a): no such PCI device"
        case let .inUse(a, driver, reasons):
            "\(a) is in use by \(driver): " + reasons.map(\.detail).joined(separator: "; ")
        case let .blocked(a, reasons): "\(a): " + reasons.joined(separator: "; ")
        case .write(let e): e.description
        case let .state(path, e): "state file \(path): \(KernelErrno.describeWithReason(e))"
        }
    }
}

/// Plans and applies driver changes through sysfs (`driver_override`, `unbind`,
/// `drivers_probe`), all below the sysfs root.
///
/// The original driver is remembered in `<stateDirectory>/<bdf>` when a device is first
/// handed to a userspace driver (two lines, `driver=` and `override=`), so that a restoring
/// unbind can reinstate the previous `driver_override` and let the original driver probe it
/// again. The caller chooses the state directory; a tmpfs such as `/run` suits it, since, like
/// `driver_override` itself, the record should not survive a reboot.
public struct DriverBinder: Sendable {
    /// The sysfs tree the writes go to.
    public var sysfs: SysfsPCI
    /// The procfs mount point (`/proc` on a live system): mountinfo for the root filesystem.
    public var procRoot: String
    /// Where the original drivers are recorded.
    public var stateDirectory: String
    /// Interrupt counts (swappable for the /proc/interrupts reader).
    public var interrupts: InterruptCountSource

    /// Creates a binder over `sysfs`, keeping its records in `stateDirectory` and reading
    /// `<procRoot>/interrupts` unless `interrupts` is given.
    public init(sysfs: SysfsPCI, procRoot: String = "/proc", stateDirectory: String, interrupts: InterruptCountSource? = nil) {
        self.sysfs = sysfs
        self.procRoot = procRoot
        self.stateDirectory = stateDirectory
        self.interrupts = interrupts ?? .proc(root: procRoot)
    }

    func statePath(_ address: PCIAddress) -> String { stateDirectory + "/" + address.description }

    // MARK: - Plans

    /// Plans handing `address` to `target`.
    public func planBind(_ address: PCIAddress, to target: UserspaceDriver) throws(BindError) -> BindPlan {
        guard sysfs.exists(address) else { throw .noSuchDevice(address) }
        let current = sysfs.driver(of: address)
        let dev = "bus/pci/devices/\(address)"
        var plan = BindPlan(
            address: address, currentDriver: current, expectedDriver: target.rawValue, writes: [], inUse: [],
            blockers: [], notes: [], stateToRecord: nil, stateToRemove: nil)
        plan.notes += driverNotes(address, target: target)
        if target == .vfioPCI { plan.groupMembersToBind = sysfs.vfioGroupBlockers(of: address) }
        if current == target.rawValue {
            plan.notes.append("already bound to \(target.rawValue)")
            return plan
        }
        if access(sysfs.root + "/bus/pci/drivers/\(target.rawValue)", F_OK) != 0 {
            plan.blockers.append("driver \(target.rawValue) is not loaded (binding never loads modules; "
                + "`modprobe \(target.rawValue)` does)")
        }
        if let current, !isUserspaceOrStub(current) { plan.inUse = inUseReasons(address, driver: current) }
        // Remember where the device came from, unless it is already between userspace drivers.
        if access(statePath(address), F_OK) != 0 || current.map({ !isUserspaceOrStub($0) }) == true {
            let override = normalizedOverride(sysfs.attribute("driver_override", of: address))
            plan.stateToRecord = (statePath(address), "driver=\(current ?? "")\noverride=\(override ?? "")\n")
        }
        plan.writes.append(SysfsWrite(dev + "/driver_override", target.rawValue))
        if let current { plan.writes.append(SysfsWrite("bus/pci/drivers/\(current)/unbind", address.description)) }
        plan.writes.append(SysfsWrite("bus/pci/drivers_probe", address.description))
        return plan
    }

    /// Plans detaching `address` from its driver; with `restore`, plans giving it back to the
    /// driver recorded at bind time (or, without a record, to whatever the kernel picks).
    public func planUnbind(_ address: PCIAddress, restore: Bool) throws(BindError) -> BindPlan {
        guard sysfs.exists(address) else { throw .noSuchDevice(address) }
        let current = sysfs.driver(of: address)
        let dev = "bus/pci/devices/\(address)"
        let override = normalizedOverride(sysfs.attribute("driver_override", of: address))
        var plan = BindPlan(
            address: address, currentDriver: current, expectedDriver: nil, writes: [], inUse: [], blockers: [],
            notes: [], stateToRecord: nil, stateToRemove: nil)
        if let current, !isUserspaceOrStub(current) { plan.inUse = inUseReasons(address, driver: current) }
        guard restore else {
            guard let current else {
                plan.notes.append("not bound to any driver")
                return plan
            }
            plan.writes.append(SysfsWrite("bus/pci/drivers/\(current)/unbind", address.description))
            plan.overrideLeftInPlace = override
            return plan
        }
        let record = readState(address)
        let original = record?.driver
        plan.expectedDriver = original
        if let record {
            plan.notes.append("recorded original driver: \(record.driver ?? "none")"
                + (record.override.map { ", driver_override '\($0)'" } ?? ""))
        } else {
            plan.notes.append("no record of the original driver (\(statePath(address)) is missing): clearing "
                + "driver_override and letting the kernel choose")
        }
        if current != nil && current == original && override == record?.override {
            plan.notes.append("already bound to its original driver")
            if record != nil { plan.stateToRemove = statePath(address) }
            return plan
        }
        plan.writes.append(SysfsWrite(dev + "/driver_override", record?.override ?? "\n"))
        if let current { plan.writes.append(SysfsWrite("bus/pci/drivers/\(current)/unbind", address.description)) }
        if original != nil || record == nil {
            plan.writes.append(SysfsWrite("bus/pci/drivers_probe", address.description))
        }
        if record != nil { plan.stateToRemove = statePath(address) }
        return plan
    }

    // MARK: - Applying

    /// Applies `plan`: refuses when it has blockers, or in-use reasons without `force`; records
    /// state, performs the writes in order, removes state, then reads back the driver.
    @discardableResult
    public func apply(_ plan: BindPlan, force: Bool) throws(BindError) -> BindOutcome {
        if !plan.blockers.isEmpty { throw .blocked(plan.address, reasons: plan.blockers) }
        if !plan.inUse.isEmpty && !force {
            throw .inUse(plan.address, driver: plan.currentDriver ?? "?", reasons: plan.inUse)
        }
        if let state = plan.stateToRecord { try writeState(state.path, state.contents) }
        for w in plan.writes {
            do {
                try sysfs.writeFile(relative: w.relativePath, w.value)
            } catch {
                throw .write(error)
            }
        }
        if let path = plan.stateToRemove, unlink(path) != 0, errno != ENOENT {
            throw .state(path: path, errno: errno)
        }
        let now = sysfs.driver(of: plan.address)
        return BindOutcome(driver: now, matchesExpectation: plan.expectedDriver == nil || now == plan.expectedDriver)
    }

    // MARK: - In use?

    /// Reasons the device looks in use by `driver`: interrupts that fired, a storage or network
    /// class, the boot display, a bridge, or the block device holding `/`.
    public func inUseReasons(_ address: PCIAddress, driver: String) -> [InUseReason] {
        var reasons: [InUseReason] = []
        let counts = interrupts.read()
        var irqs = sysfs.msiIRQs(of: address).map(\.irq)
        if let line = sysfs.attribute("irq", of: address).flatMap({ Int($0) }), line > 0, irqs.isEmpty,
           let row = counts.row(irq: line), row.label.contains(driver) {
            irqs.append(line)
        }
        let fired = irqs.compactMap { counts.row(irq: $0) }.filter { $0.total > 0 }
        if !fired.isEmpty {
            let list = fired.prefix(4).map { "IRQ \($0.irq) (\($0.label)): \($0.total)" }.joined(separator: ", ")
            reasons.append(InUseReason(
                kind: .interrupts, detail: "\(driver) has taken interrupts: \(list)\(fired.count > 4 ? ", …" : "")"))
        }
        let cls = sysfs.attribute("class", of: address).flatMap { UInt32($0.dropFirst(2), radix: 16) } ?? 0
        switch cls >> 16 {
        case 0x01: reasons.append(InUseReason(kind: .storage, detail: "a storage controller (class 0x\(hex(cls, width: 6)))"))
        case 0x02: reasons.append(InUseReason(kind: .network, detail: "a network controller (class 0x\(hex(cls, width: 6)))"))
        case 0x03 where sysfs.attribute("boot_vga", of: address) == "1":
            reasons.append(InUseReason(kind: .bootDisplay, detail: "the boot display"))
        case 0x06 where (cls >> 8) & 0xFF == 0x04:
            reasons.append(InUseReason(kind: .bridge, detail: "a PCI bridge: devices behind it would lose their path"))
        default: break
        }
        if let root = rootFilesystemDevice(), holds(address, blockDevice: root, depth: 0) {
            reasons.append(InUseReason(kind: .rootFilesystem, detail: "it holds the root filesystem (block device \(root))"))
        }
        return reasons
    }

    /// `major:minor` of the filesystem mounted at `/`, from `<procRoot>/self/mountinfo`.
    func rootFilesystemDevice() -> String? {
        guard let text = readText(procRoot + "/self/mountinfo") else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 4, f[4] == "/", !f[2].hasPrefix("0:") { return String(f[2]) }
        }
        return nil
    }

    /// Whether `<sysfs>/dev/block/<dev>` sits below the function (directly, or through the
    /// `slaves` of a device-mapper / md device).
    func holds(_ address: PCIAddress, blockDevice: String, depth: Int) -> Bool {
        let link = sysfs.root + "/dev/block/" + blockDevice
        if let target = readLinkTarget(link), target.contains("/\(address)/") { return true }
        guard depth < 3 else { return false }
        for slave in listDirectory(link + "/slaves") {
            if let target = readLinkTarget(link + "/slaves/" + slave), target.contains("/\(address)/") { return true }
            if let dev = readText(link + "/slaves/" + slave + "/dev")?.trimmingWhitespace(),
               holds(address, blockDevice: dev, depth: depth + 1) {
                return true
            }
        }
        return false
    }

    // MARK: - Notes

    func driverNotes(_ address: PCIAddress, target: UserspaceDriver) -> [String] {
        switch target {
        case .uioPCIGeneric:
            return ["uio_pci_generic gives no IOMMU isolation (the device can DMA anywhere) and only INTx "
                + "interrupts: MSI-X tables can be mapped and inspected, not received"]
        case .vfioPCI:
            guard let group = sysfs.iommuGroup(of: address) else {
                return ["no IOMMU group: vfio-pci will bind, but /dev/vfio/<group> will not exist until the "
                    + "IOMMU is enabled (intel_iommu=on / amd_iommu=on)"]
            }
            let others = sysfs.iommuGroupMembers(of: address).filter { $0 != address }
            if others.isEmpty { return ["IOMMU group \(group) holds only this device: viable once bound"] }
            let blockers = sysfs.vfioGroupBlockers(of: address)
            if blockers.isEmpty {
                return ["IOMMU group \(group) also holds " + others.map(\.description).joined(separator: ", ")
                    + ": each is unbound, on vfio/pci-stub or a bridge, so the group is viable once this is bound"]
            }
            return ["IOMMU group \(group) is viable only when every member is bound to vfio-pci (or pci-stub, or "
                + "unbound): also bind " + blockers.map { "\($0.address) (now \($0.driver ?? "unbound"))" }
                    .joined(separator: ", ")]
        }
    }

    // MARK: - State

    struct StateRecord: Equatable {
        var driver: String?
        var override: String?
    }

    func readState(_ address: PCIAddress) -> StateRecord? {
        guard let text = readText(statePath(address)) else { return nil }
        var record = StateRecord()
        for line in text.split(separator: "\n") {
            if line.hasPrefix("driver=") { record.driver = line.dropFirst(7).isEmpty ? nil : String(line.dropFirst(7)) }
            if line.hasPrefix("override=") {
                record.override = line.dropFirst(9).isEmpty ? nil : String(line.dropFirst(9))
            }
        }
        return record
    }

    func writeState(_ path: String, _ contents: String) throws(BindError) {
        // mkdir -p: /run may be missing (minimal initramfs) or the directory may be new.
        var dir = stateDirectory.hasPrefix("/") ? "" : "."
        for part in stateDirectory.split(separator: "/") {
            dir += "/" + part
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw .state(path: dir, errno: errno) }
        }
        // Atomic, so that an interrupted bind never leaves a half-written record for unbind.
        do {
            try writeFileAtomically(path, Array(contents.utf8))
        } catch {
            throw .state(path: path, errno: error.code)
        }
    }

    func isUserspaceOrStub(_ driver: String) -> Bool {
        UserspaceDriver(rawValue: driver) != nil || driver == "pci-stub" || driver.hasPrefix("vfio")
    }

    /// sysfs prints `(null)` for an unset driver_override.
    func normalizedOverride(_ value: String?) -> String? {
        guard let v = value?.trimmingWhitespace(), !v.isEmpty, v != "(null)" else { return nil }
        return v
    }
}

