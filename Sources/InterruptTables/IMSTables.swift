public import MSIShimCore

/// Layout of one IMS slot in device memory, as Intel's IDXD patches define it (16 bytes):
/// +0 address lo, +4 address hi, +8 data, +0xC control (bit 0 mask, bit 3 PASID enable,
/// PASID in bits 31:12).
public enum IMSSlotLayout {
    /// Bytes per slot.
    public static let size = 16
    /// Offset of the address low dword.
    public static let addressLo = 0x0
    /// Offset of the address high dword.
    public static let addressHi = 0x4
    /// Offset of the data dword.
    public static let data = 0x8
    /// Offset of the control dword.
    public static let control = 0xC
    /// Control bit 0: the slot is masked.
    public static let mask: UInt32 = 1 << 0
    /// Control bit 3: messages carry the PASID.
    public static let pasidEnable: UInt32 = 1 << 3
    /// The PASID sits in control bits 31:12.
    public static let pasidShift: UInt32 = 12
    /// The largest PASID the 20-bit field holds.
    public static let maxPASID: UInt64 = 0xF_FFFF

    /// The control word for `pasid`: `(pasid << 12) | PASID enable`, or 0 for none.
    public static func control(pasid: UInt32?) -> UInt32 {
        pasid.map { $0 << pasidShift | pasidEnable } ?? 0
    }

    /// The PASID an instance cookie names: the cookie's value, nil for 0 (`IOMMU_NO_PASID`:
    /// no PASID tag), or nil and `fits == false` when it is wider than the 20-bit field.
    public static func pasid(cookie: UInt64) -> (pasid: UInt32?, fits: Bool) {
        guard cookie != 0 else { return (nil, true) }
        guard cookie <= maxPASID else { return (nil, false) }
        return (UInt32(cookie), true)
    }

    /// The control word an instance cookie asks for (unmasked): `(pasid << 12) | PASID enable`
    /// for a cookie naming a PASID, 0 for cookie 0. Only call it for a cookie that fits.
    public static func control(cookie: UInt64) -> UInt32 { control(pasid: pasid(cookie: cookie).pasid) }
}

/// One IMS slot's contents.
public struct IMSSlot: Hashable, Sendable {
    /// Message address, low 32 bits.
    public var addressLo: UInt32
    /// Message address, high 32 bits.
    public var addressHi: UInt32
    /// Message data.
    public var data: UInt32
    /// Control word: mask, PASID enable, PASID.
    public var control: UInt32

    /// A slot; the default is the reset state (zero message, masked).
    public init(addressLo: UInt32 = 0, addressHi: UInt32 = 0, data: UInt32 = 0, control: UInt32 = IMSSlotLayout.mask) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
        self.control = control
    }

    /// The 64-bit message address.
    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
    /// Control bit 0.
    public var masked: Bool { control & IMSSlotLayout.mask != 0 }
    /// The PASID the slot tags its message with, when PASID is enabled.
    public var pasid: UInt32? { control & IMSSlotLayout.pasidEnable != 0 ? control >> IMSSlotLayout.pasidShift : nil }
}

/// A device-memory IMS table: an array of IDXD-style slots inside a BAR. One method call is
/// one MMIO access.
public struct IMSDeviceTable: Sendable {
    /// The BAR region holding the array.
    public let region: any MMIORegion
    /// Byte offset of slot 0 in the region.
    public let offset: Int
    /// Number of slots.
    public let slots: Int

    /// - Throws: ``IMSError/doesNotFit(slots:offset:regionSize:)`` when the slot array runs past the region.
    public init(region: any MMIORegion, offset: Int, slots: Int) throws {
        guard offset >= 0, slots > 0, offset % 4 == 0, offset + slots * IMSSlotLayout.size <= region.size else {
            throw IMSError.doesNotFit(slots: slots, offset: offset, regionSize: region.size)
        }
        self.region = region
        self.offset = offset
        self.slots = slots
    }

    @inline(__always)
    func at(_ slot: Int, _ field: Int) throws -> Int {
        guard slot >= 0, slot < slots else { throw IMSError.slotOutOfRange(slot: slot, slots: slots) }
        return offset &+ slot &* IMSSlotLayout.size &+ field
    }

    // Each accessor works out the offset before it touches `region` (with the offset as an
    // argument expression the existential is copied, a reference counted, per access), and
    // is inlined into the chip callbacks that use it.

    /// Writes a slot's address low dword (one MMIO write).
    @inline(__always)
    public func writeAddressLo(_ slot: Int, _ v: UInt32) throws {
        let at = try at(slot, IMSSlotLayout.addressLo)
        try region.write32(at, v)
    }
    /// Writes a slot's address high dword (one MMIO write).
    @inline(__always)
    public func writeAddressHi(_ slot: Int, _ v: UInt32) throws {
        let at = try at(slot, IMSSlotLayout.addressHi)
        try region.write32(at, v)
    }
    /// Writes a slot's data dword (one MMIO write).
    @inline(__always)
    public func writeData(_ slot: Int, _ v: UInt32) throws {
        let at = try at(slot, IMSSlotLayout.data)
        try region.write32(at, v)
    }
    /// Writes a slot's control dword (one MMIO write).
    @inline(__always)
    public func writeControl(_ slot: Int, _ v: UInt32) throws {
        let at = try at(slot, IMSSlotLayout.control)
        try region.write32(at, v)
    }
    /// Reads a slot's control dword (one MMIO read).
    @inline(__always)
    public func readControl(_ slot: Int) throws -> UInt32 {
        let at = try at(slot, IMSSlotLayout.control)
        return try region.read32(at)
    }

    /// Writes a slot's message: address low, address high, data, in that order (three MMIO
    /// writes; the slot is checked and the region opened once).
    @inline(__always)
    public func writeMessage(_ slot: Int, addressLo: UInt32, addressHi: UInt32, data: UInt32) throws {
        let base = try at(slot, 0)
        try Self.writeMessage(region, base, addressLo, addressHi, data)
    }

    /// Writes a slot's control dword, then reads it back (two MMIO accesses: a write and the
    /// read that flushes it).
    @inline(__always)
    public func writeControlAndFlush(_ slot: Int, _ v: UInt32) throws {
        let at = try at(slot, IMSSlotLayout.control)
        try Self.writeAndRead(region, at, v)
    }

    private static func writeMessage(_ r: some MMIORegion, _ base: Int, _ lo: UInt32, _ hi: UInt32, _ data: UInt32) throws {
        try r.write32(base &+ IMSSlotLayout.addressLo, lo)
        try r.write32(base &+ IMSSlotLayout.addressHi, hi)
        try r.write32(base &+ IMSSlotLayout.data, data)
    }

    private static func writeAndRead(_ r: some MMIORegion, _ at: Int, _ v: UInt32) throws {
        try r.write32(at, v)
        _ = try r.read32(at)
    }

    /// Reads a whole slot (four DWORD reads).
    public func readSlot(_ slot: Int) throws -> IMSSlot {
        IMSSlot(
            addressLo: try region.read32(at(slot, IMSSlotLayout.addressLo)),
            addressHi: try region.read32(at(slot, IMSSlotLayout.addressHi)),
            data: try region.read32(at(slot, IMSSlotLayout.data)),
            control: try readControl(slot))
    }
}

/// IMS kept in host memory ("queue memory"): no slot limit, no MMIO. Each message lives in a
/// piece of storage the driver allocated (`allocateStorage()`); the driver passes the storage's
/// handle as the interrupt's instance cookie, and the chip finds the storage through that
/// cookie (the contract of `pci_ims_alloc_irq()` for software-managed IMS). The device reads
/// the storage when it signals, so the store also plays the device's part: raising a masked
/// slot marks it pending; unmasking a pending slot sends its message once; a slot holding no
/// message (never activated, or deactivated by `free_irq`) signals nothing.
///
/// Locking: one Mutex; the sink is called after it is released.
public final class IMSSoftwareStore: Sendable {
    struct Storage {
        var slot = IMSSlot()
        var pending = false
        /// The IMS index (descriptor) the storage is bound to by `prepare_desc`.
        var index: Int?
    }

    struct State {
        var storage: [UInt64: Storage] = [:]
        /// Handles look like addresses of 16-byte slots in queue memory.
        var nextHandle: UInt64 = 0x1000
    }

    let state = PackageMutex(State())
    let sink = PackageMutex<(any MessageSink)?>(nil)

    /// A store whose messages go to `sink`.
    public init(sink: (any MessageSink)? = nil) {
        self.sink.withLock { $0 = sink }
    }

    /// Attaches the interrupt controller the store's messages go to.
    public func attach(sink: (any MessageSink)?) {
        self.sink.withLock { $0 = sink }
    }

    // MARK: the driver's side: storage

    /// Allocates storage for one message (a masked, empty slot) and returns its handle, the
    /// instance cookie to pass to `pci_ims_alloc_irq()`. Handles are never 0.
    public func allocateStorage() -> UInt64 {
        state.withLock { s in
            while s.storage[s.nextHandle] != nil { s.nextHandle &+= UInt64(IMSSlotLayout.size) }
            let h = s.nextHandle
            s.storage[h] = Storage()
            s.nextHandle &+= UInt64(IMSSlotLayout.size)
            return h
        }
    }

    /// Allocates storage at a handle the caller chose.
    /// - Throws: ``IMSError/badHandle(_:)`` for 0 (a NULL cookie names no storage),
    ///   ``IMSError/storageExists(_:)`` when the handle is taken.
    public func allocateStorage(at handle: UInt64) throws(IMSError) {
        guard handle != 0 else { throw .badHandle(handle) }
        try state.withLock { (s: inout State) throws(IMSError) in
            guard s.storage[handle] == nil else { throw .storageExists(handle) }
            s.storage[handle] = Storage()
        }
    }

    /// Frees the storage at `handle` (after its interrupt was freed). Unknown handles are
    /// ignored.
    public func releaseStorage(_ handle: UInt64) {
        _ = state.withLock { $0.storage.removeValue(forKey: handle) }
    }

    /// Whether storage exists at `handle`.
    public func hasStorage(_ handle: UInt64) -> Bool { state.withLock { $0.storage[handle] != nil } }

    /// Number of storage slots allocated (the store has no fixed size).
    public var count: Int { state.withLock { $0.storage.count } }

    /// The slot at `handle`, nil when no storage is there.
    public func slot(_ handle: UInt64) -> IMSSlot? { state.withLock { $0.storage[handle]?.slot } }

    /// Whether the slot at `handle` has a latched event.
    public func isPending(_ handle: UInt64) -> Bool { state.withLock { $0.storage[handle]?.pending ?? false } }

    /// The IMS index the storage at `handle` is bound to, nil when unbound or absent.
    public func boundIndex(_ handle: UInt64) -> Int? { state.withLock { $0.storage[handle]?.index } }

    /// One allocated storage slot, as ``snapshot`` lists it.
    public struct Entry: Hashable, Sendable {
        /// The handle (the instance cookie that finds it).
        public var handle: UInt64
        /// The IMS index bound to it, nil before `prepare_desc`.
        public var index: Int?
        /// Its contents.
        public var slot: IMSSlot
        /// A latched event.
        public var pending: Bool
    }

    /// Every allocated storage slot, ordered by bound index (unbound last), then handle.
    public var snapshot: [Entry] {
        state.withLock { s in
            s.storage.map { Entry(handle: $0.key, index: $0.value.index, slot: $0.value.slot, pending: $0.value.pending) }
        }.sorted { ($0.index ?? Int.max, $0.handle) < ($1.index ?? Int.max, $1.handle) }
    }

    // MARK: the chip's side

    /// `prepare_desc`: binds the storage at `handle` to IMS index `index` and masks it.
    /// - Throws: ``IMSError/badHandle(_:)`` when no storage is at `handle`,
    ///   ``IMSError/storageBound(_:index:)`` when another index already uses it.
    func bind(_ handle: UInt64, index: Int) throws(IMSError) {
        try state.withLock { (s: inout State) throws(IMSError) in
            guard var st = s.storage[handle] else { throw .badHandle(handle) }
            if let other = st.index, other != index { throw .storageBound(handle, index: other) }
            st.index = index
            st.slot.control |= IMSSlotLayout.mask
            s.storage[handle] = st
        }
    }

    /// Stores a message (address, data) in the slot at `handle`.
    func writeMessage(_ handle: UInt64, addressLo: UInt32, addressHi: UInt32, data: UInt32) throws(IMSError) {
        try state.withLock { (s: inout State) throws(IMSError) in
            guard s.storage[handle] != nil else { throw .badHandle(handle) }
            s.storage[handle]?.slot.addressLo = addressLo
            s.storage[handle]?.slot.addressHi = addressHi
            s.storage[handle]?.slot.data = data
        }
    }

    /// Writes the control word; a mask→unmask transition with a pending event sends once.
    func writeControl(_ handle: UInt64, _ control: UInt32) throws(IMSError) {
        let release: EmittedMessage? = try state.withLock { (s: inout State) throws(IMSError) -> EmittedMessage? in
            guard var st = s.storage[handle] else { throw .badHandle(handle) }
            let wasMasked = st.slot.masked
            st.slot.control = control
            var out: EmittedMessage?
            if wasMasked && !st.slot.masked && st.pending {
                st.pending = false
                if st.slot.address != 0 {
                    out = EmittedMessage(source: .ims(st.index ?? -1), address: st.slot.address, data: st.slot.data)
                }
            }
            s.storage[handle] = st
            return out
        }
        if let m = release { _ = sink.withLock { $0 }?.deliver(m) }
    }

    // MARK: the device's side

    /// The device signals through the storage at `handle`: a masked slot latches the event;
    /// an unmasked one sends its message; absent storage or an empty slot (no message:
    /// never activated, or deactivated by `free_irq`) signals nothing.
    public func raise(_ handle: UInt64) -> FireResult {
        enum Outcome { case send(EmittedMessage, (any MessageSink)?), pending, gone, empty }
        let outcome: Outcome = state.withLock { s in
            guard var st = s.storage[handle] else { return .gone }
            guard st.slot.address != 0 else { return .empty }
            if st.slot.masked {
                st.pending = true
                s.storage[handle] = st
                return .pending
            }
            let m = EmittedMessage(source: .ims(st.index ?? -1), address: st.slot.address, data: st.slot.data)
            return .send(m, sink.withLock { $0 })
        }
        switch outcome {
        case .send(let m, let target): return .sent(m, target?.deliver(m) ?? .dropped(.noInterruptController))
        case .pending: return .pending
        case .gone: return .dropped(.noIMSStorage(handle: handle))
        case .empty: return .dropped(.imsStorageEmpty(handle: handle))
        }
    }
}

/// IMS table errors.
public enum IMSError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The slot array does not fit the region.
    case doesNotFit(slots: Int, offset: Int, regionSize: Int)
    /// A slot index past the array.
    case slotOutOfRange(slot: Int, slots: Int)
    /// No software IMS storage at this handle (cookie).
    case badHandle(UInt64)
    /// Software IMS storage already exists at this handle.
    case storageExists(UInt64)
    /// The software IMS storage is already bound to another IMS index.
    case storageBound(UInt64, index: Int)

    /// EINVAL, ERANGE, EEXIST or EBUSY.
    public var errno: KernelErrno? {
        switch self {
        case .doesNotFit, .badHandle: .EINVAL
        case .slotOutOfRange: .ERANGE
        case .storageExists: .EEXIST
        case .storageBound: .EBUSY
        }
    }

    /// One line saying what is wrong.
    public var description: String {
        switch self {
        case let .doesNotFit(slots, offset, size):
            "\(slots) IMS slots at 0x\(hex(offset, width: 1)) do not fit a region of 0x\(hex(size, width: 1)) bytes"
        case let .slotOutOfRange(slot, slots): "IMS slot \(slot) is past the \(slots) slots"
        case let .badHandle(h): "no IMS storage at cookie 0x\(hex(h, width: 1))"
        case let .storageExists(h): "IMS storage already exists at 0x\(hex(h, width: 1))"
        case let .storageBound(h, index): "IMS storage at 0x\(hex(h, width: 1)) is already bound to IMS index \(index)"
        }
    }
}
