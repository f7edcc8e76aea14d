// A device under the kernel model: the model (MSIDevice) driving a function's MSI-X through
// the tables layer's hardware chips, plus a way to make the function raise a vector. Two
// kinds: the real emulated 82574 behind uio_pci_generic (config through sysfs, BAR0 through
// the UIO map, the MSI-X BAR through sysfs resourceN), and a mock built from that device's own
// config bytes. The same operations run on both (scenarios uio and differential).
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice
import PCIAccess

/// What became of one raise, as far as the function itself shows: it latched the vector's
/// pending bit, or it did not (it sent the message, or — MSI-X disabled — did not use MSI-X at
/// all). Where a message went after leaving a real device cannot be seen from here: the lab's
/// messages name interrupt-remapping entries the guest kernel does not own, and the IOMMU
/// drops them.
enum RaiseOutcome: Equatable, CustomStringConvertible {
    case notPending
    case pending
    var description: String { self == .notPending ? "not pending" : "pending" }
}

/// The function's MSI-X state as the hardware holds it.
struct MSIXSnapshot: Equatable, CustomStringConvertible {
    var command: UInt16
    var control: UInt16
    var entries: [MSIXEntry]
    var pba: [UInt64]
    /// The MSI capability's first four dwords (header + Message Control, address low, address
    /// high, data), empty without one.
    var msi: [UInt32] = []

    var description: String {
        let e = entries.enumerated().map { i, e in
            "\(i):\(hx(e.addressLo))/\(hx(e.data))\(e.masked ? "M" : "")"
        }.joined(separator: " ")
        let m = msi.isEmpty ? "" : " msi [\(msi.map(hx).joined(separator: " "))]"
        return "cmd \(hx(command)) ctrl \(hx(control)) pba \(pba.map(hx)) [\(e)]\(m)"
    }

    /// The differences from `other`, one phrase each.
    func differences(from other: MSIXSnapshot) -> [String] {
        var out: [String] = []
        if command != other.command { out.append("Command \(hx(command)) vs \(hx(other.command))") }
        if control != other.control { out.append("Message Control \(hx(control)) vs \(hx(other.control))") }
        if pba != other.pba { out.append("PBA \(pba.map(hx)) vs \(other.pba.map(hx))") }
        if msi != other.msi { out.append("MSI capability \(msi.map(hx)) vs \(other.msi.map(hx))") }
        for (i, (a, b)) in zip(entries, other.entries).enumerated() where a != b {
            out.append("entry \(i) \(hx(a.addressLo)):\(hx(a.addressHi)):\(hx(a.data)):\(hx(a.vectorControl)) vs "
                + "\(hx(b.addressLo)):\(hx(b.addressHi)):\(hx(b.data)):\(hx(b.vectorControl))")
        }
        return out
    }
}

protocol ModelRig {
    var name: String { get }
    var model: MSIDevice { get }
    var table: MSIXTable { get }
    /// Makes the function signal MSI-X vector `vector` (with MSI on: the cause routed to it,
    /// which sends MSI vector 0); `detail` says more where the rig can.
    func raise(_ vector: Int) throws -> (outcome: RaiseOutcome, detail: String)
    /// The MSI capability's offset, nil without one.
    var msiOffset: Int? { get }
}

extension ModelRig {
    /// Command register, Message Control, every entry and the PBA.
    func snapshot() throws -> MSIXSnapshot {
        MSIXSnapshot(
            command: try table.config.read16(PCIReg.command), control: try table.readControl(),
            entries: try table.readEntries(), pba: try table.readPBA(),
            msi: try msiOffset.map { o in try (0..<4).map { try table.config.read32(o + 4 * $0) } } ?? [])
    }

    /// Sets or clears Function Mask in Message Control (a config write).
    func setFunctionMask(_ on: Bool) throws {
        let c = try table.readControl()
        try table.writeControl(on ? c | PCIReg.MSIX.functionMask : c & ~PCIReg.MSIX.functionMask)
    }

    /// The Linux irq of MSI-X entry `index`.
    func virq(_ index: Int) throws -> Int {
        guard let d = model.descriptor(index: index), d.isAssociated else {
            throw MSIError(.EINVAL, "msilab", "MSI-X entry \(index) has no interrupt")
        }
        return d.virq
    }
}

/// The platform both rigs use: x86 with Intel interrupt remapping and two CPUs, like the guest.
func labPlatform() throws -> MSIPlatform {
    try MSIPlatform(.intelRemapping(cpus: 2))
}

/// The real 82574 bound to uio_pci_generic.
final class UIOE1000ERig: ModelRig {
    let name: String
    let address: PCIAddress
    let handle: DeviceHandle
    let bar0: any MMIORegion
    let msixBAR: any MMIORegion
    let model: MSIDevice
    let table: MSIXTable
    /// `/dev/uioX`: INTx events (a read returns the count).
    let uioFD: Int32
    let uioName: String
    /// The MSI capability's offset, nil without one.
    let msiOffset: Int?

    /// `platform`: the machine the model runs on (default: the lab's, with remapping).
    init(_ address: PCIAddress, platform: MSIPlatform? = nil) throws {
        self.address = address
        handle = try DeviceHandle.open(address, intent: .allowWrites)
        guard case .uio(let uio) = handle.backend else {
            throw DeviceIOError.wrongDriver(address, driver: handle.driver, needed: "uio_pci_generic")
        }
        uioName = uio
        uioFD = open("/dev/\(uio)", O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard uioFD >= 0 else { throw DeviceIOError.system(operation: "open /dev/\(uio)", errno: errno) }
        guard let layout = try handle.msixLayout() else {
            throw DeviceIOError.barUnusable(address, bar: 0, reason: "no MSI-X capability")
        }
        bar0 = try handle.bar(0)
        // The table's BAR through sysfs resourceN, as the issue asks (UIO maps it too).
        let msix = try SysfsBAR.map(address, bar: layout.tableBAR, intent: .allowWrites)
        msixBAR = msix
        name = "real \(address) (\(handle.backend); \(bar0.name); \(msix.name))"
        let config = handle.config
        let bars: [Int: any MMIORegion] = [0: bar0, layout.tableBAR: msix]
        let region: @Sendable (Int) throws -> any MMIORegion = { bir in
            guard let r = bars[bir] else {
                throw DeviceIOError.barUnusable(address, bar: bir, reason: "not mapped by msilab")
            }
            return r
        }
        let irqLine = Int(readText("/sys/bus/pci/devices/\(address)/irq")?.trimmingWhitespace() ?? "") ?? 0
        let hardware = try PCIFunctionHardware.discover(config: config, intxIRQ: irqLine, region: region)
        model = MSIDevice(name: address.description, platform: try platform ?? labPlatform(), pci: hardware)
        guard let cap = try config.capabilityList().first(PCICapabilityID.msix) else {
            throw DeviceIOError.barUnusable(address, bar: 0, reason: "no MSI-X capability")
        }
        msiOffset = try config.capabilityList().first(PCICapabilityID.msi)?.offset
        table = try MSIXTable(config: config, capOffset: cap.offset, region: region)
        // As a driver's probe would: memory decoding and bus mastering (QEMU drops the
        // device's message writes while Bus Master is off), then the NIC's interrupt logic in
        // a known state.
        let command = try config.read16(PCIReg.command)
        try config.write16(PCIReg.command, command | PCIReg.Command.memory | PCIReg.Command.busMaster)
        try E1000E.quiesce(bar0)
    }

    func raise(_ vector: Int) throws -> (outcome: RaiseOutcome, detail: String) {
        // The send arms the vector's throttling timer; a raise or a mask before it ran out
        // would meet QEMU 7.2's late duplicate message (E1000E.letThrottlingTimersExpire).
        defer { E1000E.letThrottlingTimersExpire() }
        try E1000E.raise(bar0, vector: vector)
        if try msiEnabled() {
            // MSI (no per-vector mask on the 82574): the device sends vector 0's message at
            // once. The cause stays in ICR until acknowledged, and QEMU sends no new message
            // for a cause still pending, so acknowledge it as a driver would.
            try bar0.write32(E1000E.icr, E1000E.causes[vector])
            try bar0.write32(E1000E.imc, E1000E.causes[vector])
            return (.notPending, "MSI sent (cause \(E1000E.causeNames[vector]) acknowledged)")
        }
        if try table.readControl() & PCIReg.MSIX.enable == 0 {
            // MSI-X off: the 82574 signals through INTx (QEMU's e1000e never calls msix_notify
            // then), and uio_pci_generic's handler counts it and masks INTx (Command bit 10).
            // Handle it as a UIO driver does: wait for the event, acknowledge the cause (or it
            // would still be asserted in ICR when MSI-X comes back), re-arm INTx through the
            // UIO fd.
            let events = pollReadable([uioFD], timeoutMs: 1000).isEmpty ? nil : readUIOCount()
            try bar0.write32(E1000E.icr, E1000E.causes[vector])
            try bar0.write32(E1000E.imc, E1000E.causes[vector])
            // uio_pci_generic has no irqcontrol: a write to /dev/uioX fails; userspace re-arms
            // INTx by clearing Command.INTX_DISABLE itself (Documentation/driver-api/uio-howto).
            let command = try table.config.read16(PCIReg.command)
            let masked = command & PCIReg.Command.intxDisable != 0
            if masked { try table.config.write16(PCIReg.command, command & ~PCIReg.Command.intxDisable) }
            let pending = try table.isPending(vector)
            return (pending ? .pending : .notPending,
                "INTx (MSI-X disabled): \(uioName) event count \(events.map(String.init) ?? "none within 1 s"), "
                    + "INTx masked by uio_pci_generic \(masked), re-armed through Command; PBA bit \(vector) "
                    + (pending ? "set" : "clear"))
        }
        // QEMU handles the ICS write synchronously; the PBA read after it sees the result.
        let pending = try table.isPending(vector)
        return (pending ? .pending : .notPending, pending ? "PBA bit \(vector) set" : "PBA bit \(vector) clear")
    }

    deinit { close(uioFD) }

    /// MSI Enable in the function's MSI capability.
    func msiEnabled() throws -> Bool {
        guard let msiOffset else { return false }
        return try table.config.read16(msiOffset + PCIReg.MSI.flags) & PCIReg.MSI.enable != 0
    }

    /// The UIO event count (a 4-byte read), nil when nothing is there.
    func readUIOCount() -> UInt32? {
        var count: UInt32 = 0
        let n = withUnsafeMutableBytes(of: &count) { read(uioFD, $0.baseAddress, 4) }
        return n == 4 ? count : nil
    }

    /// The function's config space as bytes (what `lspci -xxxx` would dump).
    func configBytes() throws -> [UInt8] {
        try (0..<(handle.config.readableSize / 4)).flatMap { i -> [UInt8] in
            let v = try handle.config.read32(4 * i)
            return [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8),
                    UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 24)]
        }
    }
}

/// A mock built from a real function's config bytes.
final class MockRig: ModelRig {
    let name: String
    let device: MockPCIDevice
    let model: MSIDevice
    let table: MSIXTable
    let msiOffset: Int?

    /// `platform`: the machine (default: the lab's, with remapping); `node`: the device's NUMA node.
    init(config: [UInt8], address: PCIAddress, platform: MSIPlatform? = nil, node: Int = -1) throws {
        device = try MockPCIDevice.fromConfig(config, address: address)
        let platform = try platform ?? labPlatform()
        device.attach(sink: platform)
        name = "mock \(address) (from \(config.count) config bytes)"
        let mock = device
        let region: @Sendable (Int) throws -> any MMIORegion = { bir in
            guard let r = mock.bar(bir) else {
                throw DeviceAccessError.unsupported("mock BAR\(bir)", what: "an unimplemented BAR")
            }
            return r
        }
        let pin = try device.config.read8(PCIReg.interruptPin)
        let hardware = try PCIFunctionHardware.discover(
            config: device.config, intxIRQ: pin != 0 ? Int(try device.config.read8(PCIReg.interruptLine)) : 0,
            region: region)
        model = MSIDevice(name: "mock \(address)", platform: platform, pci: hardware, node: node)
        guard let cap = try device.config.capabilityList().first(PCICapabilityID.msix) else {
            throw DeviceAccessError.unsupported("mock \(address)", what: "a function without MSI-X")
        }
        table = try MSIXTable(config: device.config, capOffset: cap.offset, region: region)
        msiOffset = try device.config.capabilityList().first(PCICapabilityID.msi)?.offset
        // Same starting Command as the real rig after its probe.
        let command = try device.config.read16(PCIReg.command)
        try device.config.write16(PCIReg.command, command | PCIReg.Command.memory | PCIReg.Command.busMaster)
    }

    func raise(_ vector: Int) throws -> (outcome: RaiseOutcome, detail: String) {
        // The device's own choice, above the MSI-X logic the mock models: with MSI-X off an
        // 82574 signals through INTx and never asks its MSI-X logic (which would latch the
        // event as pending: !Enable counts as masked there, rule 5). With MSI on, it sends
        // MSI vector 0 whatever the cause.
        if let o = msiOffset, try device.config.read16(o + PCIReg.MSI.flags) & PCIReg.MSI.enable != 0 {
            switch device.fireMSI(0) {
            case .sent(_, let delivery): return (.notPending, "MSI sent, \(delivery)")
            case .pending: return (.pending, "MSI pending")
            case .dropped(let why): return (.notPending, "MSI not signalled: \(why)")
            }
        }
        if try table.readControl() & PCIReg.MSIX.enable == 0 {
            return (.notPending, "INTx (MSI-X disabled; the mock's MSI-X logic is not asked)")
        }
        switch device.fireMSIX(vector) {
        case .sent(_, let delivery): return (.notPending, "sent, \(delivery)")
        case .pending: return (.pending, "pending")
        case .dropped(let why): return (.notPending, "not signalled: \(why)")
        }
    }
}
