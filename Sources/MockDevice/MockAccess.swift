public import MSIShimCore

/// Config space of a ``MockPCIDevice``: writable where the hardware's registers are (Command,
/// BAR addresses, MSI/MSI-X control, MSI address/data/mask), read-only elsewhere.
public struct MockConfigSpace: ConfigSpaceAccess {
    let device: MockPCIDevice

    public var name: String { "mock \(device.address) config" }
    public var readableSize: Int { device.state.withLock { $0.config.count } }
    public var isWritable: Bool { true }

    public func read8(_ offset: Int) throws -> UInt8 {
        UInt8(truncatingIfNeeded: try device.state.withLock { try $0.configRead(offset, width: 1) })
    }

    public func read16(_ offset: Int) throws -> UInt16 {
        UInt16(truncatingIfNeeded: try device.state.withLock { try $0.configRead(offset, width: 2) })
    }

    public func read32(_ offset: Int) throws -> UInt32 {
        try device.state.withLock { try $0.configRead(offset, width: 4) }
    }

    public func write8(_ offset: Int, _ value: UInt8) throws { try write(offset, 1, UInt32(value)) }
    public func write16(_ offset: Int, _ value: UInt16) throws { try write(offset, 2, UInt32(value)) }
    public func write32(_ offset: Int, _ value: UInt32) throws { try write(offset, 4, value) }

    private func write(_ offset: Int, _ width: Int, _ value: UInt32) throws {
        let (messages, sink) = try device.state.withLock { s in
            (try s.configWrite(offset, width: width, value: value), s.sink)
        }
        device.deliver(messages, to: sink)
    }
}

/// One BAR of a ``MockPCIDevice``: plain memory, except where the MSI-X table, the PBA or the
/// IMS slot array live, which behave as the spec says.
public struct MockBARRegion: MMIORegion {
    let device: MockPCIDevice
    /// The BAR register index, 0…5.
    public let index: Int
    public let size: Int

    public var name: String { "mock \(device.address) BAR\(index)" }
    public var isWritable: Bool { true }

    public func read32(_ offset: Int) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try device.state.withLock { try $0.mmioRead(bar: index, offset, width: 4) })
    }

    public func read64(_ offset: Int) throws -> UInt64 {
        try device.state.withLock { try $0.mmioRead(bar: index, offset, width: 8) }
    }

    public func write32(_ offset: Int, _ value: UInt32) throws { try write(offset, 4, UInt64(value)) }
    public func write64(_ offset: Int, _ value: UInt64) throws { try write(offset, 8, value) }

    private func write(_ offset: Int, _ width: Int, _ value: UInt64) throws {
        let (messages, sink) = try device.state.withLock { s in
            (try s.mmioWrite(bar: index, offset, width: width, value: value), s.sink)
        }
        device.deliver(messages, to: sink)
    }
}

extension MockState {
    // MARK: Config space semantics

    mutating func configRead(_ offset: Int, width: Int) throws -> UInt32 {
        counters.configReads += 1
        return try peekConfig(offset, width: width)
    }

    /// A config read without the bus: not counted (inspection, `show`).
    func peekConfig(_ offset: Int, width: Int) throws -> UInt32 {
        try DeviceAccessError.check(name + " config", offset: offset, width: width, size: config.count)
        if gone { return width == 4 ? 0xFFFF_FFFF : (1 << UInt32(8 * width)) - 1 }
        var v: UInt32 = 0
        for i in 0..<width { v |= UInt32(config[offset + i]) << UInt32(8 * i) }
        return v
    }

    mutating func configWrite(_ offset: Int, width: Int, value: UInt32) throws -> [EmittedMessage] {
        counters.configWrites += 1
        try DeviceAccessError.check(name + " config", offset: offset, width: width, size: config.count)
        if gone { return [] }
        let msixBefore = msixControl
        let msiBefore = msiControl
        let msiMaskBefore = msi.map { $0.maskable ? cfg32($0.maskOffset) : 0 } ?? 0
        if let g = msix, offset <= g.capOffset + 3, offset + width > g.capOffset + 2 {
            // Rule 1: only Enable and Function Mask are writable; the rest must be written back as read.
            var roChanged = false
            for i in 0..<width {
                let o = offset + i
                if o == g.capOffset + 2 || o == g.capOffset + 3 {
                    let b = UInt8(truncatingIfNeeded: value >> UInt32(8 * i))
                    if (b ^ config[o]) & ~wmask[o] != 0 { roChanged = true }
                }
            }
            if roChanged {
                violations.append(MockViolation(rule: 1, message: "write to read-only bits of MSI-X Message Control ignored"))
            }
        }
        for i in 0..<width {
            let o = offset + i
            let b = UInt8(truncatingIfNeeded: value >> UInt32(8 * i))
            config[o] = (config[o] & ~wmask[o]) | (b & wmask[o])
        }
        if offset < PCIReg.bar0 + 24, offset + width > PCIReg.bar0 { applyBARSizing() }
        var out: [EmittedMessage] = []
        if let g = msi {
            // Multiple Message Enable is clamped to Multiple Message Capable.
            var c = msiControl
            if Int((c & PCIReg.MSI.qsize) >> 4) > g.capableLog2 {
                c = (c & ~PCIReg.MSI.qsize) | UInt16(g.capableLog2) << 4
                setCfg16(g.capOffset + PCIReg.MSI.flags, c)
            }
            let maskNow = g.maskable ? cfg32(g.maskOffset) : 0
            let enabledNow = c & PCIReg.MSI.enable != 0
            if enabledNow && (msiBefore & PCIReg.MSI.enable == 0 || msiMaskBefore & ~maskNow != 0) {
                releaseMSI(into: &out)
            }
        }
        if msixControl != msixBefore {
            releaseMSIX(into: &out)
        }
        if msiEnabled && msixEnabled && (msiBefore != msiControl || msixBefore != msixControl) {
            violations.append(MockViolation(rule: 11, message: "MSI and MSI-X enabled at the same time"))
        }
        return out
    }

    /// BAR registers read back their address bits (size-aligned) plus the fixed type bits, so
    /// the usual write-all-ones sizing works.
    mutating func applyBARSizing() {
        var i = 0
        while i < 6 {
            let at = PCIReg.bar0 + 4 * i
            guard let bar = bars[i] else {
                if i == 0 || !(bars[i - 1]?.is64Bit ?? false) { setCfg32(at, 0) }
                i += 1
                continue
            }
            let l = bar
            let flags: UInt32 = (l.is64Bit ? 0x4 : 0) | (l.prefetchable ? 0x8 : 0)
            let sizeMask = UInt64(l.size - 1)
            setCfg32(at, (cfg32(at) & ~UInt32(truncatingIfNeeded: sizeMask) & ~0xF) | flags)
            if l.is64Bit {
                setCfg32(at + 4, cfg32(at + 4) & ~UInt32(truncatingIfNeeded: sizeMask >> 32))
                i += 2
            } else {
                i += 1
            }
        }
    }

    // MARK: BAR semantics

    mutating func mmioCheck(bar: Int, _ offset: Int, width: Int) throws -> Int {
        guard bar >= 0, bar < bars.count, let b = bars[bar] else {
            throw DeviceAccessError.unsupported("\(name) BAR\(bar)", what: "an unimplemented BAR")
        }
        do {
            try DeviceAccessError.check("\(name) BAR\(bar)", offset: offset, width: width, size: b.size)
        } catch let e {
            if case .unaligned = e {
                violations.append(MockViolation(rule: 9, message: "unaligned \(width)-byte access at BAR\(bar)+0x\(hex(offset, width: 1))"))
            }
            throw e
        }
        return b.size
    }

    func inPBA(bar: Int, _ offset: Int) -> Bool {
        guard let g = msix, g.pbaBAR == bar else { return false }
        return offset >= g.pbaOffset && offset < g.pbaOffset + g.pbaLength
    }

    func inTable(bar: Int, _ offset: Int) -> Bool {
        guard let g = msix, g.tableBAR == bar else { return false }
        return offset >= g.tableOffset && offset < g.tableOffset + g.tableSize * PCIReg.MSIX.entrySize
    }

    func inIMS(bar: Int, _ offset: Int) -> Bool {
        guard let l = ims, l.bar == bar else { return false }
        return offset >= l.offset && offset < l.offset + l.slots * MockIMSLayout.slotSize
    }

    /// The PBA DWORD at `offset` (bits of entries 32k…32k+31).
    func pbaDword(_ offset: Int) -> UInt32 {
        guard let g = msix else { return 0 }
        let first = (offset - g.pbaOffset) / 4 * 32
        var v: UInt32 = 0
        for bit in 0..<32 where first + bit < g.tableSize && pbaBit(first + bit) { v |= 1 << UInt32(bit) }
        return v
    }

    mutating func mmioRead(bar: Int, _ offset: Int, width: Int) throws -> UInt64 {
        counters.mmioReads += 1
        _ = try mmioCheck(bar: bar, offset, width: width)
        return peekMMIO(bar: bar, offset, width: width)
    }

    /// An MMIO read without the bus: not counted, no violation recorded (inspection, `show`).
    func peekMMIOChecked(bar: Int, _ offset: Int, width: Int) throws -> UInt64 {
        guard bar >= 0, bar < bars.count, let b = bars[bar] else {
            throw DeviceAccessError.unsupported("\(name) BAR\(bar)", what: "an unimplemented BAR")
        }
        try DeviceAccessError.check("\(name) BAR\(bar)", offset: offset, width: width, size: b.size)
        return peekMMIO(bar: bar, offset, width: width)
    }

    func peekMMIO(bar: Int, _ offset: Int, width: Int) -> UInt64 {
        if gone { return width == 8 ? UInt64.max : 0xFFFF_FFFF }
        let lo = inPBA(bar: bar, offset) ? pbaDword(offset) : mem32(bar, offset)
        guard width == 8 else { return UInt64(lo) }
        let hi = inPBA(bar: bar, offset + 4) ? pbaDword(offset + 4) : mem32(bar, offset + 4)
        return UInt64(hi) << 32 | UInt64(lo)
    }

    mutating func mmioWrite(bar: Int, _ offset: Int, width: Int, value: UInt64) throws -> [EmittedMessage] {
        counters.mmioWrites += 1
        _ = try mmioCheck(bar: bar, offset, width: width)
        if gone { return [] }
        var out: [EmittedMessage] = []
        writeDword(bar: bar, offset, UInt32(truncatingIfNeeded: value), into: &out)
        if width == 8 { writeDword(bar: bar, offset + 4, UInt32(truncatingIfNeeded: value >> 32), into: &out) }
        return out
    }

    mutating func writeDword(bar: Int, _ offset: Int, _ value: UInt32, into out: inout [EmittedMessage]) {
        if inPBA(bar: bar, offset) {
            violations.append(MockViolation(rule: 8, message: "write to the read-only PBA at BAR\(bar)+0x\(hex(offset, width: 1)) ignored"))
            return
        }
        if let g = msix, inTable(bar: bar, offset) {
            let index = (offset - g.tableOffset) / PCIReg.MSIX.entrySize
            let field = (offset - g.tableOffset) % PCIReg.MSIX.entrySize
            if field == PCIReg.MSIX.entryVectorControl {
                let wasMasked = entryMasked(index)
                setMem32(bar, offset, value)
                if wasMasked && !entryMasked(index) { releaseMSIX(only: index, into: &out) }
                return
            }
            if !msixFunctionMasked && !entryMasked(index) {
                violations.append(MockViolation(
                    rule: 10, message: "MSI-X entry \(index) address/data rewritten while unmasked"))
            }
            var v = value
            if field == PCIReg.MSIX.entryAddressLo && v & 3 != 0 {
                violations.append(MockViolation(rule: 3, message: "MSI-X entry \(index): address bits 1:0 written non-zero"))
                v &= ~3
            }
            setMem32(bar, offset, v)
            return
        }
        if let l = ims, inIMS(bar: bar, offset) {
            let slot = (offset - l.offset) / MockIMSLayout.slotSize
            let field = (offset - l.offset) % MockIMSLayout.slotSize
            let wasMasked = mem32(bar, imsSlotOffset(slot) + 12) & MockIMSLayout.controlMask != 0
            if field == 12 {
                setMem32(bar, offset, value)
                if wasMasked && value & MockIMSLayout.controlMask == 0 && imsPending.get(slot) {
                    imsPending.clear(slot)
                    out.append(imsMessage(l, slot))
                }
                return
            }
            if !wasMasked {
                violations.append(MockViolation(rule: 10, message: "IMS slot \(slot) address/data rewritten while unmasked"))
            }
            setMem32(bar, offset, value)
            return
        }
        setMem32(bar, offset, value)
    }
}
