public import MSIShimCore

extension MockPCIDevice {
    /// The built-in profile (`msictl mock` with no device option): a PCIe endpoint with
    /// - MSI: 32 vectors, 64-bit, per-vector maskable (cap at 0x80),
    /// - MSI-X: 2048 entries, table at BAR0+0, PBA at BAR0+0x8000 (cap at 0xA0),
    /// - a device-memory IMS slot array: 4096 IDXD-style slots at BAR2+0,
    /// with 64-bit BAR0 and BAR2 of 64 KiB each, INTx pin A on line 11.
    /// IDs 1234:4d53, class 0880 (system peripheral, like Intel's DSA).
    public static func builtIn(
        address: PCIAddress = PCIAddress(bus: 0, device: 3, function: 0) ?? PCIAddress.zero,
        sink: (any MessageSink)? = nil
    ) throws -> MockPCIDevice {
        try MockPCIDevice(
            address: address, config: builtInConfig(),
            bars: [
                MockBARLayout(index: 0, size: 0x10000, is64Bit: true),
                MockBARLayout(index: 2, size: 0x10000, is64Bit: true),
            ],
            ims: MockIMSLayout(bar: 2, offset: 0, slots: 4096), reset: true, sink: sink)
    }

    /// Config space of the built-in profile (4096 bytes).
    public static func builtInConfig() -> [UInt8] {
        var c = ConfigBuilder(size: 4096)
        c.put16(PCIReg.vendorID, 0x1234)
        c.put16(PCIReg.deviceID, 0x4D53)
        c.put16(PCIReg.command, PCIReg.Command.memory | PCIReg.Command.busMaster)
        c.put16(PCIReg.status, PCIReg.Status.capabilityList)
        c.put8(PCIReg.revisionID, 1)
        c.put8(0x0B, 0x08)  // base class: system peripheral
        c.put8(0x0A, 0x80)  // subclass: other
        c.put32(PCIReg.bar0, 0xFE00_0004)  // 64-bit memory
        c.put32(PCIReg.bar0 + 4, 0)
        c.put32(PCIReg.bar0 + 8, 0xFE01_0004)
        c.put32(PCIReg.bar0 + 12, 0)
        c.put16(0x2C, 0x1234)  // subsystem vendor
        c.put16(0x2E, 0x0001)
        c.put8(PCIReg.capabilityListPointer, 0x40)
        c.put8(PCIReg.interruptLine, 11)
        c.put8(PCIReg.interruptPin, 1)
        // 0x40: PCI Express v2 endpoint.
        c.put8(0x40, PCICapabilityID.express)
        c.put8(0x41, 0x80)
        c.put16(0x42, 0x0002 | UInt16(PCIExpressType.endpoint.rawValue) << 4)
        // 0x80: MSI, 64-bit, per-vector masking, 32 vectors capable.
        c.put8(0x80, PCICapabilityID.msi)
        c.put8(0x81, 0xA0)
        c.put16(0x82, PCIReg.MSI.is64Bit | PCIReg.MSI.perVectorMask | 5 << 1)
        // 0xA0: MSI-X, 2048 entries, table BAR0+0, PBA BAR0+0x8000.
        c.put8(0xA0, PCICapabilityID.msix)
        c.put8(0xA1, 0x00)
        c.put16(0xA2, 2047)
        c.put32(0xA4, 0x0000_0000)
        c.put32(0xA8, 0x0000_8000)
        return c.bytes
    }

    /// A mock of the device whose config space `config` holds (e.g. one function of an
    /// `lspci -x` dump). BAR sizes are not in config space, so each memory BAR gets the
    /// smallest power of two (at least 4 KiB) that holds what the capabilities place in it;
    /// I/O BARs are not emulated.
    ///
    /// - Parameters:
    ///   - config: the function's config-space bytes (256 or 4096).
    ///   - address: the address the mock reports.
    ///   - reset: start as a driver's probe finds the device after a function reset
    ///     (MSI/MSI-X disabled, function mask clear, every entry masked); `false` keeps the
    ///     dumped enable and mask bits.
    ///   - sink: where the device's messages go (settable later with `attach(sink:)`).
    public static func fromConfig(
        _ config: [UInt8], address: PCIAddress, reset: Bool = true, sink: (any MessageSink)? = nil
    ) throws -> MockPCIDevice {
        var bytes = config
        if bytes.count < 256 {
            throw MockDeviceError.unsupported(
                "only \(bytes.count) bytes of config space (capabilities need at least 256; dump with lspci -xxx as root)")
        }
        if bytes.count != 256 && bytes.count != 4096 {
            bytes += [UInt8](repeating: 0, count: (bytes.count < 4096 ? 4096 : bytes.count) - bytes.count)
            bytes = Array(bytes.prefix(4096))
        }
        let snapshot = ConfigSnapshot(name: "mock \(address)", bytes: bytes)
        guard try snapshot.read16(PCIReg.vendorID) != 0xFFFF else {
            throw MockDeviceError.unsupported("config space reads all-ones (device gone when dumped)")
        }
        let headerType = try snapshot.read8(PCIReg.headerType) & 0x7F
        let barCount = headerType == 0 ? 6 : headerType == 1 ? 2 : 0
        // Bytes each BAR must hold: the MSI-X table and PBA ends.
        var needed = [Int](repeating: 0, count: 6)
        let caps = try snapshot.capabilityList()
        if let cap = caps.first(PCICapabilityID.msix) {
            let x = try MSIXCapability(config: snapshot, at: cap.offset)
            if x.tableBIR < 6 { needed[x.tableBIR] = max(needed[x.tableBIR], Int(x.tableOffset) + x.tableLength) }
            if x.pbaBIR < 6 { needed[x.pbaBIR] = max(needed[x.pbaBIR], Int(x.pbaOffset) + x.pbaLength) }
        }
        var layouts: [MockBARLayout] = []
        var i = 0
        while i < barCount {
            let reg = try snapshot.read32(PCIReg.bar0 + 4 * i)
            if reg & 1 != 0 { i += 1; continue }  // I/O BAR
            let is64 = reg & 0x6 == 0x4
            let upper = is64 && i + 1 < 6 ? try snapshot.read32(PCIReg.bar0 + 4 * (i + 1)) : 0
            if reg & ~0xF == 0 && upper == 0 && needed[i] == 0 { i += is64 ? 2 : 1; continue }  // unimplemented
            var size = 4096
            while size < needed[i] { size <<= 1 }
            layouts.append(MockBARLayout(index: i, size: size, is64Bit: is64, prefetchable: reg & 0x8 != 0))
            i += is64 ? 2 : 1
        }
        return try MockPCIDevice(address: address, config: bytes, bars: layouts, ims: nil, reset: reset, sink: sink)
    }
}

extension PCIAddress {
    /// 0000:00:00.0.
    public static let zero = PCIAddress(domain: 0, bus: 0, device: 0, function: 0)!  // allowed: constant in range
}

/// Little-endian byte assembly for config-space images.
struct ConfigBuilder {
    var bytes: [UInt8]
    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }
    mutating func put8(_ o: Int, _ v: UInt8) { bytes[o] = v }
    mutating func put16(_ o: Int, _ v: UInt16) {
        bytes[o] = UInt8(truncatingIfNeeded: v)
        bytes[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    mutating func put32(_ o: Int, _ v: UInt32) {
        put16(o, UInt16(truncatingIfNeeded: v))
        put16(o + 2, UInt16(truncatingIfNeeded: v >> 16))
    }
}
