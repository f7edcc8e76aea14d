// NTB peer interrupts (drivers/ntb/msi.c): a host lets its NTB peer raise its MSI-X
// interrupts by writing their messages through a memory window. The code path of patch 21/32
// of the series behind this project ("NTB/msi: Convert to msi_on_each_desc()"), which walks
// the device's ASSOCIATED descriptors under the descriptor lock.
//
// One NTB device, one peer: ntb_msi_init (the context), ntb_msi_setup_mws (the inbound window
// over the MSI address range, based on the first ASSOCIATED descriptor's message),
// ntbm_msi_request_threaded_irq (the first descriptor without an action: request it, check
// its message lies in the window, publish (offset, data), hook write_msi_msg),
// ntbm_msi_free_irq, the write_msi_msg callback (ntb_msi_write_msg: re-publish, then tell the
// client), and the peer's side: a 32-bit write of the published data at the published offset
// of its outbound window, which the NTB forwards to base + offset on this host — an MSI write
// the platform delivers like any device's.
import MSIShimCore

/// `struct ntb_msi_desc`: what the peer needs to raise one interrupt — where in its memory
/// window to write, and what.
public struct NTBMSIDescriptor: Hashable, Sendable {
    /// `addr_offset`: the message address minus the window base.
    public var addressOffset: UInt64
    /// `data`: the message data.
    public var data: UInt32

    /// A descriptor.
    public init(addressOffset: UInt64, data: UInt32) {
        self.addressOffset = addressOffset
        self.data = data
    }
}

/// What `ntb_mw_get_align()` reports for the peer's memory window.
public struct NTBWindowAlignment: Hashable, Sendable {
    /// `addr_align`: the translated address is rounded down to this (a power of two).
    public var address: UInt64
    /// `size_align`: the window size is rounded up to this.
    public var size: UInt64
    /// `size_max`: the largest window the hardware translates.
    public var maximumSize: UInt64

    /// Alignment and limits; the defaults are a typical Intel NTB's (4 KiB, 4 KiB, 1 MiB).
    public init(address: UInt64 = 0x1000, size: UInt64 = 0x1000, maximumSize: UInt64 = 0x10_0000) {
        self.address = address
        self.size = size
        self.maximumSize = maximumSize
    }
}

/// The inbound window `ntb_msi_setup_mws()` set up.
public struct NTBMemoryWindow: Hashable, Sendable {
    /// `base_addr`: the (aligned) message address the window starts at.
    public var base: UInt64
    /// `end_addr`: `base` + the smallest window size the loop recorded. The loop starts that
    /// minimum at 32 KiB and only lowers it, while every size it computes is at least 32 KiB,
    /// so this is always `base + 0x8000`: descriptors must lie in the first 32 KiB.
    public var end: UInt64
    /// The size translated (`ntb_mw_set_trans(…, addr, mw_size)`): what a peer write may reach.
    public var translatedSize: UInt64
}

/// An interrupt `ntbm_msi_request_threaded_irq()` handed out.
public struct NTBMSIRequest: Hashable, Sendable {
    /// The Linux interrupt (the return value).
    public var virq: Int
    /// The descriptor's index (the MSI-X entry).
    public var index: Int
    /// What was published to the peer (`*msi_desc`).
    public var descriptor: NTBMSIDescriptor
}

/// `ntb->msi` for one NTB device and its one peer: the MSI interrupts of `device` (the NTB's
/// PCI function) that the peer may raise through the memory window.
///
/// Thread-safe. Lock order: the device, then this client (the `write_msi_msg` callback runs
/// under the device lock); the `descChanged` callback runs with both held and must not call back into
/// the device or the client.
public final class NTBMSIClient: Sendable {
    /// The NTB's PCI function (`ntb->pdev`).
    public let device: MSIDevice
    /// The client's `desc_changed(ctx)`: told whenever a published descriptor was rewritten.
    let descChanged: (@Sendable () -> Void)?

    struct State {
        var window: NTBMemoryWindow?
        /// What the peer holds, by Linux interrupt: the descriptor's index and the published
        /// (offset, data).
        var published: [Int: (index: Int, descriptor: NTBMSIDescriptor)] = [:]
        /// `write_msi_msg` callbacks run so far (each ends in `desc_changed`).
        var changes = 0
        /// WARN_ONs of drivers/ntb/msi.c (a moved message outside the window, a free of an
        /// interrupt this client did not hand out).
        var warnings = WarningLog()
    }

    let state = PackageMutex(State())

    /// `ntb_msi_init(ntb, desc_changed)`: a context for `device`, one peer. `descChanged` is
    /// called after a requested interrupt's message was rewritten and re-published.
    public init(device: MSIDevice, descChanged: (@Sendable () -> Void)? = nil) {
        self.device = device
        self.descChanged = descChanged
    }

    /// The window set up by ``setupMemoryWindows(_:)``, nil before.
    public var window: NTBMemoryWindow? { state.withLock { $0.window } }

    /// How many times `write_msi_msg` re-published a descriptor (and called `desc_changed`).
    public var changeCount: Int { state.withLock { $0.changes } }

    /// WARNs recorded by the NTB code, oldest first.
    public var warnings: [MSIWarning] { state.withLock { $0.warnings.entries } }

    /// What the peer holds for `virq`, nil when nothing was published for it.
    public func published(virq: Int) -> NTBMSIDescriptor? { state.withLock { $0.published[virq]?.descriptor } }

    /// What the peer holds for the descriptor at `index`, with its Linux interrupt.
    public func published(index: Int) -> (virq: Int, descriptor: NTBMSIDescriptor)? {
        state.withLock { s in s.published.first { $0.value.index == index }.map { ($0.key, $0.value.descriptor) } }
    }

    /// `ntb_msi_setup_mws()`: the window base is the first ASSOCIATED descriptor's message
    /// address rounded down to the address alignment; the translated size is 32 KiB rounded
    /// up to the size alignment, at least the maximum size; the MSI window is its first
    /// 32 KiB (see ``NTBMemoryWindow/end``).
    /// - Throws: EINVAL when the device has no associated descriptor (the kernel dereferences
    ///   the NULL `msi_first_desc()` result) or the alignment is not a power of two.
    @discardableResult
    public func setupMemoryWindows(_ alignment: NTBWindowAlignment = NTBWindowAlignment()) throws(MSIError) -> NTBMemoryWindow {
        let fn = "ntb_msi_setup_mws"
        guard alignment.address != 0, alignment.address & (alignment.address - 1) == 0, alignment.size != 0 else {
            throw MSIError(.EINVAL, fn, "the address alignment must be a power of two and the size alignment non-zero")
        }
        let first = try device.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            try d.first(.associated)
        }
        guard let first else { throw MSIError(.EINVAL, fn, "\(device.name) has no associated MSI descriptor") }
        let base = first.message.address & ~(alignment.address - 1)
        let minimum: UInt64 = 0x8000
        var size = (minimum + alignment.size - 1) / alignment.size * alignment.size
        size = max(size, alignment.maximumSize)
        let window = NTBMemoryWindow(base: base, end: base + min(minimum, size), translatedSize: size)
        state.withLock { $0.window = window }
        return window
    }

    /// `ntb_msi_set_desc()`: the published form of `message`, nil (the kernel's -EFAULT) when
    /// its address is outside the window.
    static func descriptor(for message: MSIMessage, in window: NTBMemoryWindow?) -> NTBMSIDescriptor? {
        guard let window, message.address >= window.base, message.address < window.end else { return nil }
        return NTBMSIDescriptor(addressOffset: message.address - window.base, data: message.data)
    }

    /// `ntbm_msi_request_threaded_irq()`: under the descriptor lock, walks the device's
    /// ASSOCIATED descriptors (`msi_for_each_desc`), skips those whose interrupt has an action,
    /// requests the first free one with `handler`, publishes its message (`ntb_msi_set_desc`;
    /// a message outside the window frees the interrupt again and the walk goes on) and hooks
    /// `write_msi_msg` so that a rewrite is re-published.
    /// - Throws: ENODEV when no descriptor is free (or none lies in the window).
    public func requestIRQ(handler: IRQHandler? = nil) throws(MSIError) -> NTBMSIRequest {
        let window = state.withLock { $0.window }
        return try device.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> NTBMSIRequest in
            var entry = try d.first(.associated)
            while let e = entry {
                defer { entry = try? d.next(.associated) }
                guard !d.hasAction(e.virq) else { continue }
                do throws(MSIError) { try d.requestIRQ(e.virq, handler: handler) } catch { continue }
                // request_irq activated the interrupt: read the message it wrote.
                guard let message = d.descriptor(index: e.index)?.message,
                      let published = Self.descriptor(for: message, in: window) else {
                    try? d.freeIRQ(e.virq)
                    continue
                }
                let virq = e.virq
                try d.setMessageWrittenCallback(index: e.index) { [weak self] desc in self?.messageWritten(virq, desc) }
                state.withLock { $0.published[virq] = (e.index, published) }
                return NTBMSIRequest(virq: virq, index: e.index, descriptor: published)
            }
            throw MSIError(.ENODEV, "ntbm_msi_request_threaded_irq", "no free MSI descriptor of \(d.name) lies in the window")
        }
    }

    /// `ntb_msi_write_msg()`, the `write_msi_msg` callback: re-publish (WARN and keep the old
    /// descriptor when the new message is outside the window), then `desc_changed`.
    func messageWritten(_ virq: Int, _ desc: MSIDescriptor) {
        state.withLock { s in
            if let published = Self.descriptor(for: desc.message, in: s.window), let old = s.published[virq] {
                s.published[virq] = (old.index, published)
            } else {
                s.warnings.warn("ntb_msi_write_msg",
                                "IRQ \(virq): MSI Address not within the memory window (\(desc.message)); the peer keeps the old descriptor")
            }
            s.changes += 1
        }
        descChanged?()
    }

    /// `ntbm_msi_free_irq()`: unhooks `write_msi_msg`, drops what was published (WARN when this
    /// client did not hand the interrupt out), then `free_irq()`.
    /// - Throws: EINVAL when `virq` is not one of the device's default-domain interrupts (the
    ///   kernel dereferences a NULL descriptor), and `free_irq`'s errors.
    public func freeIRQ(_ virq: Int) throws(MSIError) {
        try device.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            guard let (domain, index) = d.location(virq), domain == .default else {
                throw MSIError(.EINVAL, "ntbm_msi_free_irq", "irq \(virq) is not an MSI interrupt of \(d.name)")
            }
            try d.setMessageWrittenCallback(index: index, nil)
            let known = state.withLock { s in s.published.removeValue(forKey: virq) != nil }
            if !known { state.withLock { $0.warnings.warn("ntbm_msi_free_irq", "irq \(virq) was not requested through NTB") } }
            try d.freeIRQ(virq)
        }
    }

    /// The peer raises an interrupt (`ntb_msi_peer_trigger()` on the other host): a 32-bit write
    /// of `descriptor.data` at `descriptor.addressOffset` of its outbound window, which the NTB
    /// forwards to `base + offset` here; the platform delivers it as it would a device's
    /// message.
    /// - Throws: EINVAL before ``setupMemoryWindows(_:)``; EFAULT for an offset outside the
    ///   translated window (the peer's write would leave its mapping).
    public func peerTrigger(_ descriptor: NTBMSIDescriptor) throws(MSIError) -> DeliveryResult {
        guard let window = state.withLock({ $0.window }) else {
            throw MSIError(.EINVAL, "ntb_msi_peer_trigger", "no memory window (ntb_msi_setup_mws not called)")
        }
        guard descriptor.addressOffset & 3 == 0, descriptor.addressOffset < window.translatedSize else {
            throw MSIError(.EFAULT, "ntb_msi_peer_trigger",
                           "offset 0x\(hexString(descriptor.addressOffset, 1)) is outside the 0x\(hexString(window.translatedSize, 1))-byte window")
        }
        return device.platform.deliver(MSIMessage(address: window.base + descriptor.addressOffset, data: descriptor.data))
    }
}

extension MSIDeviceData {
    /// `irq_has_action(irq)`: a handler is installed (`request_irq()` done, `free_irq()` not).
    func hasAction(_ virq: Int) -> Bool { platform.table.state.withLock { $0.isRequested(virq) } }
}
