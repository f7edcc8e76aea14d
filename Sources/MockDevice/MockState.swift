import MSIShimCore

/// MSI-X geometry read from the capability at construction (all read-only in hardware).
struct MSIXGeometry {
    var capOffset: Int
    var tableSize: Int
    var tableBAR: Int
    var tableOffset: Int
    var pbaBAR: Int
    var pbaOffset: Int
    var pbaLength: Int { (tableSize + 63) / 64 * 8 }
}

/// MSI geometry read from the capability at construction.
struct MSIGeometry {
    var capOffset: Int
    var is64Bit: Bool
    var maskable: Bool
    var capableLog2: Int
    var dataOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.data64 : PCIReg.MSI.data32) }
    var maskOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.mask64 : PCIReg.MSI.mask32) }
    var pendingOffset: Int { capOffset + (is64Bit ? PCIReg.MSI.pending64 : PCIReg.MSI.pending32) }
    /// Mask/pending bits that exist: one per capable vector (all 32 when 32 are capable).
    var vectorBits: UInt32 { capableLog2 >= 5 ? 0xFFFF_FFFF : (1 << (1 << UInt32(capableLog2))) - 1 }
}

/// Holds an attached sink so the hot path can reach it through an unretained reference.
@usableFromInline
final class SinkBox: Sendable {
    @usableFromInline let sink: any MessageSink
    init(_ sink: any MessageSink) { self.sink = sink }
}

/// All state of a mock device; lives inside the device's Mutex.
@usableFromInline
struct MockState {
    var config: [UInt8]
    /// Per-byte writable bits of config space (like QEMU's wmask).
    var wmask: [UInt8]
    /// Implemented BARs by index.
    var bars: [MockBARLayout?]
    /// Memory of every BAR in DWORDs (all accesses are DWORD or QWORD), one flat array so the
    /// hot path reads it without copying per-BAR storage; BAR i starts at `barBase[i]`.
    var memory: [UInt32]
    var barBase: [Int]
    var msix: MSIXGeometry?
    /// Where the raise path finds MSI-X: the table's first DWORD in ``memory`` and the Message
    /// Control offset in ``config`` (fixed by the layout validated at construction), and the
    /// table size (0 without MSI-X).
    var msixTableWord = 0
    var msixControlAt = 0
    var msixEntries = 0
    /// Entries that can raise: ``msixEntries``, or 0 while the device is gone.
    var msixRaisable = 0
    var msixPending: Bitmap
    var msi: MSIGeometry?
    var ims: MockIMSLayout?
    var imsPending: Bitmap
    var counters = MockCounters()
    var violations: [MockViolation] = []
    var released: [(EmittedMessage, DeliveryOutcome)] = []
    var gone = false {
        didSet { msixRaisable = gone ? 0 : msixEntries }
    }
    var stuckPending: Set<Int> = []
    /// The interrupt controller. Every sink ever attached stays alive in `sinkOwners` until
    /// the device goes away, so the hot path may use `sinkRef` without retaining it.
    var sink: (any MessageSink)? { sinkRef?.takeUnretainedValue().sink }
    @usableFromInline var sinkRef: Unmanaged<SinkBox>?
    var sinkOwners: [SinkBox] = []

    mutating func attach(_ sink: (any MessageSink)?) {
        guard let sink else { sinkRef = nil; return }
        let box = sinkOwners.first { $0.sink === sink } ?? SinkBox(sink)
        if !sinkOwners.contains(where: { $0 === box }) { sinkOwners.append(box) }
        sinkRef = Unmanaged.passUnretained(box)
    }
    let name: String

    init(
        address: PCIAddress, config bytes: [UInt8], bars layouts: [MockBARLayout], ims: MockIMSLayout?,
        sink: (any MessageSink)?
    ) throws {
        name = "mock \(address)"
        guard bytes.count == 256 || bytes.count == 4096 else {
            throw MockDeviceError.unsupported("config space must be 256 or 4096 bytes, got \(bytes.count)")
        }
        config = bytes
        wmask = [UInt8](repeating: 0, count: bytes.count)
        bars = [MockBARLayout?](repeating: nil, count: 6)
        barBase = [Int](repeating: 0, count: 6)
        var words = 0
        for l in layouts {
            guard (0..<6).contains(l.index), l.size >= 16, l.size & (l.size - 1) == 0,
                  !l.is64Bit || l.index < 5 else {
                throw MockDeviceError.unsupported("BAR\(l.index): size \(l.size) must be a power of two ≥ 16")
            }
            bars[l.index] = l
            barBase[l.index] = words
            words += l.size / 4
        }
        memory = [UInt32](repeating: 0, count: words)
        self.ims = ims
        msixPending = Bitmap(count: 0)
        imsPending = Bitmap(count: ims?.slots ?? 0)

        let snapshot = ConfigSnapshot(name: name, bytes: bytes)
        let caps = (try? snapshot.capabilityList())?.capabilities ?? []
        if let cap = caps.first(where: { !$0.extended && $0.id == UInt16(PCICapabilityID.msix) }) {
            let x = try MSIXCapability(config: snapshot, at: cap.offset)
            let g = MSIXGeometry(
                capOffset: cap.offset, tableSize: x.tableSize, tableBAR: x.tableBIR, tableOffset: Int(x.tableOffset),
                pbaBAR: x.pbaBIR, pbaOffset: Int(x.pbaOffset))
            try Self.validate(x, bars: bars)
            msix = g
            msixTableWord = barBase[g.tableBAR] + g.tableOffset / 4
            msixControlAt = g.capOffset + PCIReg.MSIX.flags
            msixEntries = g.tableSize
            msixRaisable = g.tableSize
            msixPending = Bitmap(count: g.tableSize)
            wmask[cap.offset + 3] = UInt8(truncatingIfNeeded: (PCIReg.MSIX.enable | PCIReg.MSIX.functionMask) >> 8)
        }
        if let cap = caps.first(where: { !$0.extended && $0.id == UInt16(PCICapabilityID.msi) }) {
            let m = try MSICapability(config: snapshot, at: cap.offset)
            let g = MSIGeometry(
                capOffset: cap.offset, is64Bit: m.is64Bit, maskable: m.maskable, capableLog2: m.multipleCapableLog2)
            msi = g
            wmask[cap.offset + 2] = UInt8(PCIReg.MSI.enable | PCIReg.MSI.qsize)
            setMask(at: cap.offset + PCIReg.MSI.addressLo, 0xFFFF_FFFC)
            if g.is64Bit { setMask(at: cap.offset + PCIReg.MSI.addressHi, 0xFFFF_FFFF) }
            setMask(at: g.dataOffset, 0x0000_FFFF)
            if g.maskable { setMask(at: g.maskOffset, g.vectorBits) }
        }
        if let ims {
            guard let bar = bars[ims.bar], ims.offset >= 0, ims.slots > 0,
                  ims.offset + ims.slots * MockIMSLayout.slotSize <= bar.size else {
                throw MockDeviceError.unsupported("IMS slot array does not fit BAR\(ims.bar)")
            }
        }
        // Command (I/O, memory, bus master, INTx disable, ...), cache line, latency, interrupt line.
        setMask(at: PCIReg.command, 0x0000_0547, width: 2)
        wmask[0x0C] = 0xFF
        wmask[0x0D] = 0xFF
        wmask[PCIReg.interruptLine] = 0xFF
        // BAR registers hold their programmed address; sizing is handled in writeConfig.
        for i in 0..<6 { setMask(at: PCIReg.bar0 + 4 * i, 0xFFFF_FFFF) }
        attach(sink)
    }

    /// Rule 12: BIRs valid, table and PBA inside their BARs, no overlap — the checks a
    /// hardware backend makes (`MSIXLayout`), on the mock's BARs.
    static func validate(_ capability: MSIXCapability, bars: [MockBARLayout?]) throws(MockDeviceError) {
        let described = (0..<6).map { i -> PCIBAR in
            if let bar = bars[i] {
                return PCIBAR(index: i, kind: bar.is64Bit ? .memory64 : .memory32, size: UInt64(bar.size),
                              prefetchable: bar.prefetchable)
            }
            if i > 0, let lower = bars[i - 1], lower.is64Bit { return PCIBAR(index: i, kind: .upperHalf(lower: i - 1)) }
            return PCIBAR(index: i, kind: .unimplemented)
        }
        do {
            _ = try MSIXLayout.validate(capability, bars: described)
        } catch {
            throw .invalidMSIXLayout(error)
        }
    }

    mutating func setMask(at offset: Int, _ bits: UInt32, width: Int = 4) {
        for i in 0..<width where offset + i < wmask.count {
            wmask[offset + i] = UInt8(truncatingIfNeeded: bits >> UInt32(8 * i))
        }
    }

    // MARK: Raw little-endian helpers (no counting, no semantics)

    @inline(__always)
    func cfg16(_ o: Int) -> UInt16 { UInt16(config[o]) | UInt16(config[o &+ 1]) &<< 8 }
    @inline(__always)
    func cfg32(_ o: Int) -> UInt32 { UInt32(cfg16(o)) | UInt32(cfg16(o + 2)) << 16 }
    mutating func setCfg16(_ o: Int, _ v: UInt16) {
        config[o] = UInt8(truncatingIfNeeded: v)
        config[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    mutating func setCfg32(_ o: Int, _ v: UInt32) {
        setCfg16(o, UInt16(truncatingIfNeeded: v))
        setCfg16(o + 2, UInt16(truncatingIfNeeded: v >> 16))
    }

    /// A DWORD of BAR memory; callers have checked the BAR exists and the offset is inside it.
    @inline(__always)
    func mem32(_ bar: Int, _ offset: Int) -> UInt32 { memory[barBase[bar] + offset >> 2] }
    @inline(__always)
    mutating func setMem32(_ bar: Int, _ offset: Int, _ v: UInt32) { memory[barBase[bar] + offset >> 2] = v }

    // MARK: Interrupt state

    @inline(__always)
    var msixControl: UInt16 { msix.map { cfg16($0.capOffset + PCIReg.MSIX.flags) } ?? 0 }
    @inline(__always)
    var msixEnabled: Bool { msixControl & PCIReg.MSIX.enable != 0 }
    /// `!Enable ∨ FunctionMask` (rule 5, the function-wide part).
    @inline(__always)
    var msixFunctionMasked: Bool {
        let c = msixControl
        return c & PCIReg.MSIX.enable == 0 || c & PCIReg.MSIX.functionMask != 0
    }
    var msiControl: UInt16 { msi.map { cfg16($0.capOffset + PCIReg.MSI.flags) } ?? 0 }
    var msiEnabled: Bool { msiControl & PCIReg.MSI.enable != 0 }

    @inline(__always)
    func entryOffset(_ index: Int) -> Int { (msix?.tableOffset ?? 0) + index * PCIReg.MSIX.entrySize }

    @inline(__always)
    func entryMasked(_ index: Int) -> Bool {
        guard let g = msix else { return true }
        return mem32(g.tableBAR, entryOffset(index) + PCIReg.MSIX.entryVectorControl) & PCIReg.MSIX.vectorControlMask != 0
    }

    func pbaBit(_ index: Int) -> Bool { msixPending.get(index) || stuckPending.contains(index) }

    @inline(__always)
    func msixMessage(_ g: MSIXGeometry, _ index: Int) -> EmittedMessage {
        let base = entryOffset(index)
        let lo = mem32(g.tableBAR, base + PCIReg.MSIX.entryAddressLo)
        let hi = mem32(g.tableBAR, base + PCIReg.MSIX.entryAddressHi)
        return EmittedMessage(
            source: .msix(index), address: UInt64(hi) << 32 | UInt64(lo),
            data: mem32(g.tableBAR, base + PCIReg.MSIX.entryData))
    }

    func imsSlotOffset(_ slot: Int) -> Int { (ims?.offset ?? 0) + slot * MockIMSLayout.slotSize }

    func imsMessage(_ l: MockIMSLayout, _ slot: Int) -> EmittedMessage {
        let base = imsSlotOffset(slot)
        let lo = mem32(l.bar, base), hi = mem32(l.bar, base + 4)
        return EmittedMessage(source: .ims(slot), address: UInt64(hi) << 32 | UInt64(lo), data: mem32(l.bar, base + 8))
    }

    func msiMessage(_ g: MSIGeometry, vector: Int) -> EmittedMessage {
        let lo = cfg32(g.capOffset + PCIReg.MSI.addressLo)
        let hi = g.is64Bit ? cfg32(g.capOffset + PCIReg.MSI.addressHi) : 0
        let enabledLog2 = Int((msiControl & PCIReg.MSI.qsize) >> 4)
        let low = UInt32((1 << enabledLog2) - 1)
        let data = (UInt32(cfg16(g.dataOffset)) & ~low) | (UInt32(vector) & low)
        return EmittedMessage(source: .msi(vector), address: UInt64(hi) << 32 | UInt64(lo), data: data)
    }

    mutating func resetInterruptState() {
        if let g = msix {
            let c = cfg16(g.capOffset + PCIReg.MSIX.flags) & ~(PCIReg.MSIX.enable | PCIReg.MSIX.functionMask)
            setCfg16(g.capOffset + PCIReg.MSIX.flags, c)
            for i in 0..<g.tableSize {
                let base = entryOffset(i)
                setMem32(g.tableBAR, base, 0)
                setMem32(g.tableBAR, base + 4, 0)
                setMem32(g.tableBAR, base + 8, 0)
                setMem32(g.tableBAR, base + 12, PCIReg.MSIX.vectorControlMask)
            }
            msixPending.clearAll()
        }
        if let g = msi {
            setCfg16(g.capOffset + PCIReg.MSI.flags, msiControl & ~(PCIReg.MSI.enable | PCIReg.MSI.qsize))
            setCfg32(g.capOffset + PCIReg.MSI.addressLo, 0)
            if g.is64Bit { setCfg32(g.capOffset + PCIReg.MSI.addressHi, 0) }
            setCfg16(g.dataOffset, 0)
            if g.maskable {
                setCfg32(g.maskOffset, 0)
                setCfg32(g.pendingOffset, 0)
            }
        }
        if let l = ims {
            for s in 0..<l.slots {
                let base = imsSlotOffset(s)
                for k in 0..<3 { setMem32(l.bar, base + 4 * k, 0) }
                setMem32(l.bar, base + 12, MockIMSLayout.controlMask)
            }
            imsPending.clearAll()
        }
    }

    // MARK: Raising

    /// The MSI-X raise: what the entry says, as three plain values the caller gets back in
    /// registers (the source is implied: entry `index`).
    @usableFromInline
    mutating func raiseMSIX(_ index: Int) -> MSIXRaise {
        guard UInt(bitPattern: index) < UInt(bitPattern: msixRaisable) else { return MSIXRaise(address: 0, data: 0, outcome: .dropped) }
        // The entry's four DWORDs and Message Control, read unchecked: the layout was validated
        // at construction (the table lies inside its BAR, the capability inside config space).
        let control = config.withUnsafeBufferPointer { c in UInt16(c[msixControlAt]) | UInt16(c[msixControlAt &+ 1]) &<< 8 }
        let entry = msixTableWord &+ index &<< 2
        let (lo, hi, data, vectorControl) = memory.withUnsafeBufferPointer { m in
            (m[entry], m[entry &+ 1], m[entry &+ 2], m[entry &+ 3])
        }
        if control & PCIReg.MSIX.enable == 0 || control & PCIReg.MSIX.functionMask != 0
            || vectorControl & PCIReg.MSIX.vectorControlMask != 0 {
            msixPending.set(index)
            return MSIXRaise(address: 0, data: 0, outcome: .pending)
        }
        return MSIXRaise(address: UInt64(hi) &<< 32 | UInt64(lo), data: data, outcome: .send)
    }

    @usableFromInline
    func msixDropReason(_ index: Int) -> SignalDropReason {
        if gone { return .deviceGone }
        guard let g = msix else { return .noMSIX }
        return .msixIndexOutOfRange(index: index, tableSize: g.tableSize)
    }

    var msiEnabledCount: Int { 1 << Int((msiControl & PCIReg.MSI.qsize) >> 4) }

    mutating func raiseMSI(_ vector: Int) -> Raise {
        guard !gone, let g = msi, msiEnabled, !msixEnabled, vector >= 0, vector < msiEnabledCount else { return .dropped }
        if g.maskable, cfg32(g.maskOffset) & (1 << UInt32(vector)) != 0 {
            setCfg32(g.pendingOffset, cfg32(g.pendingOffset) | 1 << UInt32(vector))
            return .pending
        }
        return .send(msiMessage(g, vector: vector))
    }

    func msiDropReason(_ vector: Int) -> SignalDropReason {
        if gone { return .deviceGone }
        guard msi != nil else { return .noMSI }
        guard msiEnabled else { return .msiDisabled }
        guard !msixEnabled else { return .msiBlockedByMSIX }
        return .msiVectorOutOfRange(vector: vector, enabled: msiEnabledCount)
    }

    mutating func raiseIMS(_ slot: Int) -> Raise {
        guard !gone, let l = ims, slot >= 0, slot < l.slots else { return .dropped }
        if mem32(l.bar, imsSlotOffset(slot) + 12) & MockIMSLayout.controlMask != 0 {
            imsPending.set(slot)
            return .pending
        }
        return .send(imsMessage(l, slot))
    }

    func imsDropReason(_ slot: Int) -> SignalDropReason {
        if gone { return .deviceGone }
        guard let l = ims else { return .noIMSTable }
        return .imsSlotOutOfRange(slot: slot, slots: l.slots)
    }

    /// Rule 7: after anything that can unmask MSI-X entries, send each now-unmasked pending one.
    mutating func releaseMSIX(only index: Int? = nil, into out: inout [EmittedMessage]) {
        guard let g = msix, !msixFunctionMasked else { return }
        let range = index.map { $0...$0 } ?? 0...(g.tableSize - 1)
        for i in range where pbaBit(i) && !entryMasked(i) {
            if !stuckPending.contains(i) { msixPending.clear(i) }
            out.append(msixMessage(g, i))
        }
    }

    /// MSI: pending vectors whose mask bit is clear are sent (on unmask and on enable).
    mutating func releaseMSI(into out: inout [EmittedMessage]) {
        guard let g = msi, g.maskable, msiEnabled, !msixEnabled else { return }
        let pending = cfg32(g.pendingOffset), mask = cfg32(g.maskOffset)
        let ready = pending & ~mask
        guard ready != 0 else { return }
        let enabled = 1 << Int((msiControl & PCIReg.MSI.qsize) >> 4)
        for v in 0..<32 where ready & (1 << UInt32(v)) != 0 && v < enabled {
            setCfg32(g.pendingOffset, cfg32(g.pendingOffset) & ~(1 << UInt32(v)))
            out.append(msiMessage(g, vector: v))
        }
    }
}
