// The IMS table as `show` and `msictl inspect --mock` present it: every slot of a
// device-memory array (read without going over the bus) or every piece of software storage,
// joined with the model's descriptor (cookie, Linux irq) and the handler's count.
public import MSIShimCore
import MSIModel
import InterruptTables

/// One IMS slot, joined with the model's view of it.
public struct IMSSlotView: Hashable, Sendable {
    /// The IMS index (`msi_index`): the slot number of a device array; for software storage
    /// the index the storage is bound to (nil while unbound).
    public var index: Int?
    /// Address, data and control as the device holds them.
    public var slot: IMSSlot
    /// A latched event (raised while masked).
    public var pending: Bool
    /// The instance cookie of the descriptor at this index (software storage: the handle that
    /// finds it), nil when no descriptor is there.
    public var cookie: UInt64?
    /// The Linux interrupt of the descriptor at this index, nil when none.
    public var virq: Int?
    /// How many times that interrupt's handler ran.
    public var count: Int
    /// Interrupts delivered to that irq, per CPU (like a `/proc/interrupts` row).
    public var perCPU: [UInt64]

    /// Zero message, masked, not pending, no descriptor: what a reset leaves.
    public var isReset: Bool {
        slot.addressLo == 0 && slot.addressHi == 0 && slot.data == 0 && slot.masked && !pending && cookie == nil
            && virq == nil
    }

    /// The slot as JSON: `{index, addressLo, addressHi, data, control, masked, pending, pasid,
    /// cookie, virq, count}`; `cookie` is a hex string (64 bits), absent values are null.
    public var json: JSONValue {
        .object([
            ("index", index.map { .int($0) } ?? .null),
            ("addressLo", .int(Int(slot.addressLo))), ("addressHi", .int(Int(slot.addressHi))),
            ("data", .int(Int(slot.data))), ("control", .int(Int(slot.control))),
            ("masked", .bool(slot.masked)), ("pending", .bool(pending)),
            ("pasid", slot.pasid.map { .int(Int($0)) } ?? .null),
            ("cookie", cookie.map { .string("0x" + hex($0, width: 1)) } ?? .null),
            ("virq", virq.map { .int($0) } ?? .null), ("count", .int(count)),
        ])
    }
}

/// A device's IMS as `show` and `inspect` present it.
public struct IMSView: Hashable, Sendable {
    /// The IMS domain's name, nil before `ims create`.
    public var domain: String?
    /// Where the messages live.
    public var storage: IMSStorage
    /// The domain's `hwsize`, nil before `ims create`.
    public var hwsize: Int?
    /// Device storage: every slot of the array in order; software storage: every allocated
    /// storage slot, bound ones by index.
    public var slots: [IMSSlotView]

    /// `{domain, storage, hwsize, slots}`; with `includeReset: false` only slots not in their
    /// reset state are listed.
    public func json(includeReset: Bool) -> JSONValue {
        .object([
            ("domain", domain.map { .string($0) } ?? .null), ("storage", .string(storage.rawValue)),
            ("hwsize", hwsize.map { .int($0) } ?? .null),
            ("slots", .array(slots.filter { includeReset || !$0.isReset }.map(\.json))),
        ])
    }
}

extension MockSession {
    /// The device's IMS: the software store when the IMS domain keeps its messages in host
    /// memory, else the device's slot array (also before any IMS domain exists); nil when
    /// the device has neither. Reads are not counted.
    public func imsView() throws -> IMSView? {
        let info = model.domainInfo(.secondary)
        let descriptors = Dictionary(model.descriptors(domain: .secondary).map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        let counts = handlerCounts
        func join(_ index: Int?, _ slot: IMSSlot, pending: Bool, cookie: UInt64?) -> IMSSlotView {
            let d = index.flatMap { descriptors[$0] }
            let virq = d.flatMap { $0.isAssociated ? $0.virq : nil }
            return IMSSlotView(
                index: index, slot: slot, pending: pending, cookie: cookie ?? d?.instanceCookie, virq: virq,
                count: virq.map { counts[$0] ?? 0 } ?? 0, perCPU: virq.flatMap { platform.irq($0)?.perCPUCount } ?? [])
        }
        if imsStorage == .software, let store = softwareStore {
            let slots = store.snapshot.map { join($0.index, $0.slot, pending: $0.pending, cookie: $0.handle) }
            return IMSView(domain: info?.name, storage: .software, hwsize: info?.hwsize, slots: slots)
        }
        guard let layout = device.imsLayout, let region = device.inspectionBAR(layout.bar) else { return nil }
        let table = try IMSDeviceTable(region: region, offset: layout.offset, slots: layout.slots)
        var slots: [IMSSlotView] = []
        slots.reserveCapacity(layout.slots)
        for i in 0..<layout.slots {
            slots.append(join(i, try table.readSlot(i), pending: device.imsPending(i), cookie: nil))
        }
        return IMSView(domain: info?.name, storage: .device, hwsize: info?.hwsize, slots: slots)
    }
}
