import Synchronization
public import MSIShimCore

/// Layout of one IMS slot in device memory, as Intel's IDXD patches define it (16 bytes):
/// +0 address lo, +4 address hi, +8 data, +0xC control (bit 0 mask, bit 3 PASID enable,
/// PASID in bits 31:12).
public enum IMSSlotLayout {
    public static let size = 16
    public static let addressLo = 0x0
    public static let addressHi = 0x4
    public static let data = 0x8
    public static let control = 0xC
    public static let mask: UInt32 = 1 << 0
    public static let pasidEnable: UInt32 = 1 << 3
    public static let pasidShift: UInt32 = 12

    /// The control word an instance cookie asks for: `(pasid << 12) | PASID enable`, or 0.
    public static func control(pasid: UInt32?) -> UInt32 {
        pasid.map { $0 << pasidShift | pasidEnable } ?? 0
    }
}

/// One IMS slot's contents.
public struct IMSSlot: Hashable, Sendable, Codable {
    public var addressLo: UInt32
    public var addressHi: UInt32
    public var data: UInt32
    public var control: UInt32

    public init(addressLo: UInt32 = 0, addressHi: UInt32 = 0, data: UInt32 = 0, control: UInt32 = IMSSlotLayout.mask) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
        self.control = control
    }

    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
    public var masked: Bool { control & IMSSlotLayout.mask != 0 }
    /// The PASID the slot tags its message with, when PASID is enabled.
    public var pasid: UInt32? { control & IMSSlotLayout.pasidEnable != 0 ? control >> IMSSlotLayout.pasidShift : nil }
}

/// A device-memory IMS table: an array of IDXD-style slots inside a BAR. One method call is
/// one MMIO access.
public struct IMSDeviceTable: Sendable {
    public let region: any MMIORegion
    public let offset: Int
    public let slots: Int

    /// - Throws: ``IMSError/doesNotFit`` when the slot array runs past the region.
    public init(region: any MMIORegion, offset: Int, slots: Int) throws {
        guard offset >= 0, slots > 0, offset % 4 == 0, offset + slots * IMSSlotLayout.size <= region.size else {
            throw IMSError.doesNotFit(slots: slots, offset: offset, regionSize: region.size)
        }
        self.region = region
        self.offset = offset
        self.slots = slots
    }

    func at(_ slot: Int, _ field: Int) throws -> Int {
        guard slot >= 0, slot < slots else { throw IMSError.slotOutOfRange(slot: slot, slots: slots) }
        return offset + slot * IMSSlotLayout.size + field
    }

    public func writeAddressLo(_ slot: Int, _ v: UInt32) throws { try region.write32(at(slot, IMSSlotLayout.addressLo), v) }
    public func writeAddressHi(_ slot: Int, _ v: UInt32) throws { try region.write32(at(slot, IMSSlotLayout.addressHi), v) }
    public func writeData(_ slot: Int, _ v: UInt32) throws { try region.write32(at(slot, IMSSlotLayout.data), v) }
    public func writeControl(_ slot: Int, _ v: UInt32) throws { try region.write32(at(slot, IMSSlotLayout.control), v) }
    public func readControl(_ slot: Int) throws -> UInt32 { try region.read32(at(slot, IMSSlotLayout.control)) }

    /// Reads a whole slot (four DWORD reads).
    public func readSlot(_ slot: Int) throws -> IMSSlot {
        IMSSlot(
            addressLo: try region.read32(at(slot, IMSSlotLayout.addressLo)),
            addressHi: try region.read32(at(slot, IMSSlotLayout.addressHi)),
            data: try region.read32(at(slot, IMSSlotLayout.data)),
            control: try readControl(slot))
    }
}

/// IMS kept in host memory ("queue memory"): no slot limit, no MMIO. The device reads a
/// slot's message when it signals, so the store also plays the device's part: raising a
/// masked slot marks it pending; unmasking a pending slot sends its message once.
///
/// Locking: one Mutex; the sink is called after it is released.
public final class IMSSoftwareStore: Sendable {
    struct Entry {
        var slot = IMSSlot()
        var pending = false
    }

    let entries = Mutex<[Int: Entry]>([:])
    let sink = Mutex<(any MessageSink)?>(nil)

    public init(sink: (any MessageSink)? = nil) {
        self.sink.withLock { $0 = sink }
    }

    /// Attaches the interrupt controller the store's messages go to.
    public func attach(sink: (any MessageSink)?) {
        self.sink.withLock { $0 = sink }
    }

    /// Number of slots in use (the store has no fixed size).
    public var count: Int { entries.withLock { $0.count } }

    /// The slot at `index` (a fresh, masked slot if never written).
    public func slot(_ index: Int) -> IMSSlot { entries.withLock { $0[index]?.slot ?? IMSSlot() } }

    public func isPending(_ index: Int) -> Bool { entries.withLock { $0[index]?.pending ?? false } }

    /// Stores a message (address, data) in slot `index`.
    public func writeMessage(_ index: Int, addressLo: UInt32, addressHi: UInt32, data: UInt32) {
        entries.withLock { e in
            e[index, default: Entry()].slot.addressLo = addressLo
            e[index, default: Entry()].slot.addressHi = addressHi
            e[index, default: Entry()].slot.data = data
        }
    }

    /// Writes the control word; a mask→unmask transition with a pending event sends once.
    public func writeControl(_ index: Int, _ control: UInt32) {
        let release: EmittedMessage? = entries.withLock { e in
            var entry = e[index, default: Entry()]
            let wasMasked = entry.slot.masked
            entry.slot.control = control
            var out: EmittedMessage?
            if wasMasked && !entry.slot.masked && entry.pending {
                entry.pending = false
                out = EmittedMessage(source: .ims(index), address: entry.slot.address, data: entry.slot.data)
            }
            e[index] = entry
            return out
        }
        if let m = release { _ = sink.withLock { $0 }?.deliver(m) }
    }

    /// Forgets slot `index` (the queue was torn down).
    public func remove(_ index: Int) {
        _ = entries.withLock { $0.removeValue(forKey: index) }
    }

    /// The device signals slot `index`.
    public func raise(_ index: Int) -> FireResult {
        let (message, target): (EmittedMessage?, (any MessageSink)?) = entries.withLock { e in
            guard var entry = e[index] else { return (nil, nil) }
            if entry.slot.masked {
                entry.pending = true
                e[index] = entry
                return (nil, nil)
            }
            return (EmittedMessage(source: .ims(index), address: entry.slot.address, data: entry.slot.data), sink.withLock { $0 })
        }
        guard let message else {
            return isPending(index) ? .pending : .dropped("IMS slot \(index) was never written")
        }
        return .sent(message, target?.deliver(message) ?? .dropped("no interrupt controller attached"))
    }
}

/// IMS table errors.
public enum IMSError: ErrnoCarrying, Equatable, CustomStringConvertible {
    case doesNotFit(slots: Int, offset: Int, regionSize: Int)
    case slotOutOfRange(slot: Int, slots: Int)

    public var errno: KernelErrno? {
        switch self {
        case .doesNotFit: .EINVAL
        case .slotOutOfRange: .ERANGE
        }
    }

    public var description: String {
        switch self {
        case let .doesNotFit(slots, offset, size):
            "\(slots) IMS slots at 0x\(hex(offset, width: 1)) do not fit a region of 0x\(hex(size, width: 1)) bytes"
        case let .slotOutOfRange(slot, slots): "IMS slot \(slot) is past the \(slots) slots"
        }
    }
}
