public import MSIShimCore
import Synchronization  // inlinable code calls Mutex.withLock through PackageMutex

/// One BAR of a mock device.
public struct MockBARLayout: Hashable, Sendable {
    /// BAR register index, 0…5 (a 64-bit BAR also uses `index + 1`).
    public var index: Int
    /// Size in bytes, a power of two ≥ 16.
    public var size: Int
    /// A 64-bit memory BAR (its upper half takes register `index + 1`).
    public var is64Bit: Bool
    /// Marked prefetchable in the BAR register.
    public var prefetchable: Bool

    /// A memory BAR of `size` bytes at register `index`.
    public init(index: Int, size: Int, is64Bit: Bool = false, prefetchable: Bool = false) {
        self.index = index
        self.size = size
        self.is64Bit = is64Bit
        self.prefetchable = prefetchable
    }
}

/// Where a device-memory IMS slot array (IDXD style: 16-byte slots of address lo, address hi,
/// data, control) lives. Control bit 0 masks, bit 3 enables PASID, bits 31:12 hold the PASID.
public struct MockIMSLayout: Hashable, Sendable {
    /// The BAR holding the slot array.
    public var bar: Int
    /// Byte offset of slot 0 in that BAR.
    public var offset: Int
    /// Number of slots.
    public var slots: Int

    /// A slot array of `slots` slots at `offset` in BAR `bar`.
    public init(bar: Int, offset: Int, slots: Int) {
        self.bar = bar
        self.offset = offset
        self.slots = slots
    }

    /// Bytes per slot: address lo, address hi, data, control (one DWORD each).
    public static let slotSize = 16
    /// Control bit 0: the slot is masked.
    public static let controlMask: UInt32 = 1 << 0
    /// Control bit 3: the slot's message carries the PASID in bits 31:12.
    public static let controlPASIDEnable: UInt32 = 1 << 3
    /// Where the PASID starts in the control DWORD.
    public static let pasidShift: UInt32 = 12
}

/// A spec-faithful PCI function with MSI, MSI-X and an optional IMS slot array, behind the
/// same `ConfigSpaceAccess` and `MMIORegion` protocols the hardware backends implement.
///
/// It honours the rules a real MSI-X device must (`Docs/mock-device-rules.md`): only Enable
/// and Function Mask are writable in Message Control; reset leaves every entry masked; the effective mask is `!Enable ∨ FunctionMask ∨ entry.Mask`; an event while
/// masked sets the pending bit and sends nothing; every masked→unmasked transition with a
/// pending bit sends exactly once; the PBA is read-only; only aligned DWORD/QWORD accesses
/// reach the table. Misuse that real hardware would tolerate silently (rewriting a live
/// entry, writing the PBA, enabling MSI and MSI-X together) is recorded as a
/// ``MockViolation``. MSI honours Multiple Message Enable (the low data bits carry the vector)
/// and per-vector masking with pending bits.
///
/// Messages go to a `MessageSink` (an interrupt-controller model), called after the device's
/// lock is released. Locking: one `PackageMutex` guards all device state; every access takes it once.
public final class MockPCIDevice: Sendable {
    /// The function's address (only for names and messages: the mock sits on no bus).
    public let address: PCIAddress
    @usableFromInline let state: PackageMutex<MockState>

    /// Builds a device from raw config-space bytes (256 or 4096) and BAR layouts.
    ///
    /// - Parameters:
    ///   - address: the address the device reports in names and messages.
    ///   - config: config-space bytes, 256 or 4096; the capabilities in them define the device.
    ///   - bars: the memory BARs (the MSI-X table, PBA and IMS slots must fit in them).
    ///   - ims: a device-memory IMS slot array, or nil for none.
    ///   - reset: put MSI/MSI-X/IMS in their reset state (what a driver's probe finds after a
    ///     function reset). Pass `false` to keep the enable/mask bits the bytes hold.
    ///   - sink: where the device's messages go; ``attach(sink:)`` can set it later.
    /// - Throws: ``MockDeviceError`` when the MSI-X table or PBA does not fit its BAR, they
    ///   overlap, or a BIR is invalid (rule 12).
    public init(
        address: PCIAddress, config: [UInt8], bars: [MockBARLayout], ims: MockIMSLayout? = nil,
        reset: Bool = true, sink: (any MessageSink)? = nil
    ) throws {
        self.address = address
        let s = try MockState(address: address, config: config, bars: bars, ims: ims, sink: sink)
        state = PackageMutex(s)
        if reset { self.reset() }
    }

    /// Config space of the device.
    public var config: MockConfigSpace { MockConfigSpace(device: self) }

    /// The memory region of BAR `index`, or nil when the BAR is not implemented.
    public func bar(_ index: Int) -> MockBARRegion? {
        state.withLock { s in
            guard index >= 0, index < s.bars.count, let bar = s.bars[index] else { return nil }
            return MockBARRegion(device: self, index: index, size: bar.size)
        }
    }

    /// The implemented BAR layouts, by index.
    public var barLayouts: [MockBARLayout] {
        state.withLock { s in s.bars.compactMap { $0 } }
    }

    /// The device-memory IMS layout, if the device has one.
    public var imsLayout: MockIMSLayout? { state.withLock { $0.ims } }

    /// Attaches the interrupt controller that receives the device's messages.
    public func attach(sink: (any MessageSink)?) {
        state.withLock { $0.attach(sink) }
    }

    /// Function-level reset of the interrupt state (QEMU's msix_reset/msi_reset): MSI and MSI-X
    /// disabled, function mask clear, every MSI-X entry and IMS slot zeroed and masked, no
    /// pending bits.
    public func reset() {
        state.withLock { $0.resetInterruptState() }
    }

    // MARK: Raising interrupts

    /// The device wants to signal MSI-X vector `index` (a device event such as a completed
    /// queue entry). The result is plain values: a drop's reason is put into words only when
    /// described, so this is the path a load generator uses too. Inlinable: a caller's loop of
    /// fires compiles to the raise and the sink call, as C's `static inline` would.
    @inlinable
    public func fireMSIX(_ index: Int) -> FireResult {
        let (raise, sink) = state.withLock { s in (s.raiseMSIX(index), s.sinkRef) }
        switch raise.outcome {
        case .send:
            let message = EmittedMessage(source: .msix(index), address: raise.address, data: raise.data)
            guard let sink else { return .sent(message, .dropped(.noInterruptController)) }
            return .sent(message, sink._withUnsafeGuaranteedRef { $0.sink.deliver(message) })
        case .pending: return .pending
        case .dropped: return .dropped(state.withLock { $0.msixDropReason(index) })
        }
    }

    /// The device wants to signal MSI vector `vector` (0 ≤ vector < enabled count).
    public func fireMSI(_ vector: Int) -> FireResult {
        let (raise, sink) = state.withLock { s in (s.raiseMSI(vector), s.sinkRef) }
        return finish(raise, sink) { $0.msiDropReason(vector) }
    }

    /// The device wants to signal IMS slot `slot` of its device-memory slot array.
    public func fireIMS(_ slot: Int) -> FireResult {
        let (raise, sink) = state.withLock { s in (s.raiseIMS(slot), s.sinkRef) }
        return finish(raise, sink) { $0.imsDropReason(slot) }
    }

    /// Acts on a raise outside the lock; the reason for a drop is worked out only then.
    @inline(__always)
    private func finish(_ raise: Raise, _ sink: Unmanaged<SinkBox>?, reason: (MockState) -> SignalDropReason) -> FireResult {
        switch raise {
        case .send(let message):
            guard let sink else { return .sent(message, .dropped(.noInterruptController)) }
            let outcome = sink._withUnsafeGuaranteedRef { $0.sink.deliver(message) }
            return .sent(message, outcome)
        case .pending: return .pending
        case .dropped: return .dropped(state.withLock { reason($0) })
        }
    }

    /// Delivers messages released by a write (an unmask with a pending bit set).
    func deliver(_ messages: [EmittedMessage], to sink: (any MessageSink)?) {
        guard !messages.isEmpty else { return }
        for m in messages {
            let outcome = sink?.deliver(m) ?? .dropped(.noInterruptController)
            state.withLock { $0.released.append((m, outcome)) }
        }
    }

    // MARK: Observation and fault injection

    /// Access counters since creation.
    public var counters: MockCounters { state.withLock { $0.counters } }

    /// Rule violations recorded so far.
    public var violations: [MockViolation] { state.withLock { $0.violations } }

    /// Messages sent because a write unmasked a pending source (rule 7), with what the sink
    /// did, oldest first; `takeReleased()` empties the list.
    public func takeReleased() -> [(EmittedMessage, DeliveryOutcome)] {
        state.withLock { s in
            defer { s.released.removeAll() }
            return s.released
        }
    }

    /// The MSI-X pending bit of `index` as the PBA shows it.
    public func msixPending(_ index: Int) -> Bool {
        state.withLock { s in s.msix.map { index >= 0 && index < $0.tableSize && s.pbaBit(index) } ?? false }
    }

    /// The pending bit of IMS slot `slot`.
    public func imsPending(_ slot: Int) -> Bool {
        state.withLock { s in s.ims.map { slot >= 0 && slot < $0.slots && s.imsPending.get(slot) } ?? false }
    }

    /// Simulates surprise removal (or a device stuck in reset): every read returns all-ones,
    /// writes are dropped, nothing can be signalled. `false` brings it back.
    public func setGone(_ gone: Bool) {
        state.withLock { $0.gone = gone }
    }

    /// Makes the PBA bit of MSI-X entry `index` stuck at 1 (a broken device): it still sends
    /// on unmask, but the bit never clears.
    public func setStuckPending(msix index: Int, _ stuck: Bool = true) {
        state.withLock { s in
            if stuck { s.stuckPending.insert(index) } else { s.stuckPending.remove(index) }
        }
    }
}

/// A growable bitmap (pending bits).
struct Bitmap {
    var words: [UInt64]

    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }

    func get(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }
    mutating func set(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
    mutating func clear(_ i: Int) { words[i >> 6] &= ~(1 << UInt64(i & 63)) }
    mutating func clearAll() { for i in words.indices { words[i] = 0 } }
    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
}

/// What a raise request turned into (computed under the lock, acted on after it). Plain
/// data, so the hot path copies no strings or references.
enum Raise {
    case send(EmittedMessage)
    case pending
    case dropped
}

/// An MSI-X raise (computed under the lock, acted on after it): the message of entry `index`
/// when it is sent. Three scalars, returned in registers.
@usableFromInline
struct MSIXRaise {
    @usableFromInline enum Outcome: UInt8 { case send, pending, dropped }
    @usableFromInline var address: UInt64
    @usableFromInline var data: UInt32
    @usableFromInline var outcome: Outcome

    @usableFromInline init(address: UInt64, data: UInt32, outcome: Outcome) {
        self.address = address
        self.data = data
        self.outcome = outcome
    }
}
