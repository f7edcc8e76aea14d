// An in-memory PCI function implementing the hardware protocols, with a log of every access.
// It is not the spec-faithful mock (MockDevice is): it stores what is written, applies the
// read-only bits of the control words, and records. Tests use it to assert the kernel's exact
// access sequences; benchmarks use it as a zero-cost backend.
import MSIShimCore

/// One hardware access, as a backend saw it.
public enum HardwareAccess: Hashable, Sendable, CustomStringConvertible {
    /// A read of the Command register and the value returned.
    case readCommand(UInt16)
    /// A write of the Command register.
    case writeCommand(UInt16)
    /// A read of MSI-X Message Control.
    case msixReadControl(UInt16)
    /// A write of MSI-X Message Control.
    case msixWriteControl(UInt16)
    /// The table was mapped (`msix_map_region`).
    case msixMapTable(entries: Int)
    /// The table was unmapped.
    case msixUnmapTable
    /// A `readl` of a table entry field and the value returned.
    case msixRead(entry: Int, MSIXEntryField, UInt32)
    /// A `writel` of a table entry field.
    case msixWrite(entry: Int, MSIXEntryField, UInt32)
    /// A read of MSI Message Control.
    case msiReadControl(UInt16)
    /// A write of MSI Message Control.
    case msiWriteControl(UInt16)
    /// A write of the MSI address (low).
    case msiWriteAddressLo(UInt32)
    /// A write of the MSI address (high).
    case msiWriteAddressHi(UInt32)
    /// A write of the MSI data word.
    case msiWriteData(UInt16)
    /// A read of the MSI mask register.
    case msiReadMask(UInt32)
    /// A write of the MSI mask register.
    case msiWriteMask(UInt32)

    /// Whether the access changes the device.
    public var isWrite: Bool {
        switch self {
        case .writeCommand, .msixWriteControl, .msixWrite, .msiWriteControl, .msiWriteAddressLo,
             .msiWriteAddressHi, .msiWriteData, .msiWriteMask: true
        default: false
        }
    }

    /// A human-readable form.
    public var description: String {
        func h<T: BinaryInteger>(_ v: T, _ w: Int) -> String { "0x" + hexString(v, w) }
        return switch self {
        case .readCommand(let v): "read  COMMAND -> \(h(v, 4))"
        case .writeCommand(let v): "write COMMAND <- \(h(v, 4))"
        case .msixReadControl(let v): "read  MSIX_FLAGS -> \(h(v, 4))"
        case .msixWriteControl(let v): "write MSIX_FLAGS <- \(h(v, 4))"
        case .msixMapTable(let n): "map   MSI-X table (\(n) entries)"
        case .msixUnmapTable: "unmap MSI-X table"
        case let .msixRead(e, f, v): "readl  entry \(e) \(f) -> \(h(v, 8))"
        case let .msixWrite(e, f, v): "writel entry \(e) \(f) <- \(h(v, 8))"
        case .msiReadControl(let v): "read  MSI_FLAGS -> \(h(v, 4))"
        case .msiWriteControl(let v): "write MSI_FLAGS <- \(h(v, 4))"
        case .msiWriteAddressLo(let v): "write MSI_ADDRESS_LO <- \(h(v, 8))"
        case .msiWriteAddressHi(let v): "write MSI_ADDRESS_HI <- \(h(v, 8))"
        case .msiWriteData(let v): "write MSI_DATA <- \(h(v, 4))"
        case .msiReadMask(let v): "read  MSI_MASK -> \(h(v, 8))"
        case .msiWriteMask(let v): "write MSI_MASK <- \(h(v, 8))"
        }
    }
}

/// An in-memory PCI function with optional MSI-X and MSI capabilities that records every
/// access. Power-on state follows the spec: MSI/MSI-X disabled, every MSI-X entry masked
/// (vector control 1), MSI mask bits clear, INTx enabled.
public final class SimulatedPCIFunction: PCICommandHardware, MSIXHardware, MSIHardware, Sendable {
    /// What the simulated function has.
    public struct Configuration: Hashable, Sendable {
        /// Number of MSI-X table entries (1…2048), nil for no MSI-X capability.
        public var msixTableSize: Int?
        /// log2 of the MSI Multiple Message Capable field (0…5), nil for no MSI capability.
        public var msiMultipleCapableLog2: Int?
        /// The MSI capability has a 64-bit address.
        public var msi64Bit: Bool
        /// The MSI capability has per-vector masking.
        public var msiPerVectorMask: Bool
        /// Legacy interrupt (`dev->irq`), 0 for none.
        public var intxIRQ: Int
        /// Whether to keep an access log (turn off for benchmarks).
        public var logging: Bool

        /// A function description; by default 8 MSI-X entries, no MSI, INTx irq 11, logging on.
        public init(msixTableSize: Int? = 8, msiMultipleCapableLog2: Int? = nil, msi64Bit: Bool = true,
                    msiPerVectorMask: Bool = true, intxIRQ: Int = 11, logging: Bool = true) {
            self.msixTableSize = msixTableSize
            self.msiMultipleCapableLog2 = msiMultipleCapableLog2
            self.msi64Bit = msi64Bit
            self.msiPerVectorMask = msiPerVectorMask
            self.intxIRQ = intxIRQ
            self.logging = logging
        }
    }

    struct State {
        var command: UInt16 = PCIReg.Command.memory | PCIReg.Command.busMaster
        var msixControl: UInt16 = 0
        var tableMapped = false
        var failMapping = false
        var entries: [UInt32] = []     // 4 words per entry
        var msiControl: UInt16 = 0
        var msiAddressLo: UInt32 = 0
        var msiAddressHi: UInt32 = 0
        var msiData: UInt16 = 0
        var msiMask: UInt32 = 0
        var log: [HardwareAccess] = []
        var logging = true
    }

    /// What the function has.
    public let configuration: Configuration
    let state: PackageMutex<State>

    /// A function in its power-on state.
    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        var s = State()
        s.logging = configuration.logging
        if let n = configuration.msixTableSize {
            let size = min(max(n, 1), PCIReg.MSIX.maxEntries)
            s.msixControl = UInt16(size - 1)
            s.entries = Array(repeating: 0, count: size * 4)
            for i in 0..<size { s.entries[i * 4 + 3] = PCIReg.MSIX.vectorControlMask }
        }
        if let mmc = configuration.msiMultipleCapableLog2 {
            var c = UInt16(min(max(mmc, 0), 5)) << 1
            if configuration.msi64Bit { c |= PCIReg.MSI.is64Bit }
            if configuration.msiPerVectorMask { c |= PCIReg.MSI.perVectorMask }
            s.msiControl = c
        }
        state = PackageMutex(s)
    }

    /// The bundle the model takes: this object for every capability it has.
    public var hardware: PCIFunctionHardware {
        PCIFunctionHardware(
            command: self,
            msix: configuration.msixTableSize == nil ? nil : self,
            msi: configuration.msiMultipleCapableLog2 == nil ? nil : self,
            intxIRQ: configuration.intxIRQ)
    }

    /// Every access so far, oldest first.
    public var log: [HardwareAccess] { state.withLock { $0.log } }

    /// Forgets the access log.
    public func clearLog() { state.withLock { $0.log.removeAll(keepingCapacity: true) } }

    /// Makes the next ``mapTable(entries:)`` calls fail (as an unmappable BAR would).
    public func setMappingFails(_ fails: Bool) { state.withLock { $0.failMapping = fails } }

    /// The Command register.
    public var commandRegister: UInt16 { state.withLock { $0.command } }
    /// The MSI-X Message Control word.
    public var msixControlRegister: UInt16 { state.withLock { $0.msixControl } }
    /// The MSI Message Control word.
    public var msiControlRegister: UInt16 { state.withLock { $0.msiControl } }

    /// The message and vector control of MSI-X entry `index`.
    public func msixEntry(_ index: Int) -> (message: MSIMessage, vectorControl: UInt32)? {
        state.withLock { s in
            guard index >= 0, index * 4 + 3 < s.entries.count else { return nil }
            let b = index * 4
            return (MSIMessage(addressLo: s.entries[b], addressHi: s.entries[b + 1], data: s.entries[b + 2]), s.entries[b + 3])
        }
    }

    /// The MSI message, data (with the low MME bits as programmed) and mask register.
    public var msiRegisters: (message: MSIMessage, mask: UInt32) {
        state.withLock { s in
            (MSIMessage(addressLo: s.msiAddressLo, addressHi: s.msiAddressHi, data: UInt32(s.msiData)), s.msiMask)
        }
    }

    @inline(__always) private func record(_ s: inout State, _ a: HardwareAccess) {
        if s.logging { s.log.append(a) }
    }

    /// Reads the Command register (logged).
    public func readCommand() throws -> UInt16 {
        state.withLock { s in record(&s, .readCommand(s.command)); return s.command }
    }

    /// Writes the Command register (logged).
    public func writeCommand(_ value: UInt16) throws {
        state.withLock { s in record(&s, .writeCommand(value)); s.command = value }
    }

    /// Reads MSI-X Message Control (logged).
    public func readMSIXControl() throws -> UInt16 {
        state.withLock { s in record(&s, .msixReadControl(s.msixControl)); return s.msixControl }
    }

    /// Writes MSI-X Message Control; only Function Mask and Enable are writable (logged).
    public func writeMSIXControl(_ value: UInt16) throws {
        state.withLock { s in
            record(&s, .msixWriteControl(value))
            let rw = PCIReg.MSIX.functionMask | PCIReg.MSIX.enable
            s.msixControl = (s.msixControl & ~rw) | (value & rw)
        }
    }

    /// Maps the table; fails when told to (``setMappingFails(_:)``) or past the table (logged).
    public func mapTable(entries: Int) throws {
        try state.withLock { s throws(DeviceAccessError) in
            record(&s, .msixMapTable(entries: entries))
            if s.failMapping || entries * 4 > s.entries.count {
                throw DeviceAccessError.unsupported("simulated MSI-X table", what: "mapping \(entries) entries")
            }
            s.tableMapped = true
        }
    }

    /// Unmaps the table (logged).
    public func unmapTable() {
        state.withLock { s in record(&s, .msixUnmapTable); s.tableMapped = false }
    }

    /// Reads a table entry field (logged); out of range throws.
    public func readEntry(_ index: Int, _ field: MSIXEntryField) throws -> UInt32 {
        try state.withLock { s throws(DeviceAccessError) in
            let at = index * 4 + field.rawValue / 4
            guard index >= 0, at < s.entries.count else {
                throw DeviceAccessError.outOfBounds("simulated MSI-X table", offset: index * 16 + field.rawValue, width: 4, size: s.entries.count * 4)
            }
            record(&s, .msixRead(entry: index, field, s.entries[at]))
            return s.entries[at]
        }
    }

    /// Writes a table entry field (logged); out of range throws.
    public func writeEntry(_ index: Int, _ field: MSIXEntryField, _ value: UInt32) throws {
        try state.withLock { s throws(DeviceAccessError) in
            let at = index * 4 + field.rawValue / 4
            guard index >= 0, at < s.entries.count else {
                throw DeviceAccessError.outOfBounds("simulated MSI-X table", offset: index * 16 + field.rawValue, width: 4, size: s.entries.count * 4)
            }
            record(&s, .msixWrite(entry: index, field, value))
            s.entries[at] = value
        }
    }

    /// Reads MSI Message Control (logged).
    public func readMSIControl() throws -> UInt16 {
        state.withLock { s in record(&s, .msiReadControl(s.msiControl)); return s.msiControl }
    }

    /// Writes MSI Message Control; only Enable and MME are writable (logged).
    public func writeMSIControl(_ value: UInt16) throws {
        state.withLock { s in
            record(&s, .msiWriteControl(value))
            let rw = PCIReg.MSI.enable | PCIReg.MSI.qsize
            s.msiControl = (s.msiControl & ~rw) | (value & rw)
        }
    }

    /// Writes the MSI address low (logged).
    public func writeAddressLo(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteAddressLo(value)); s.msiAddressLo = value }
    }

    /// Writes the MSI address high (logged).
    public func writeAddressHi(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteAddressHi(value)); s.msiAddressHi = value }
    }

    /// Writes the MSI data (logged).
    public func writeData(_ value: UInt16) throws {
        state.withLock { s in record(&s, .msiWriteData(value)); s.msiData = value }
    }

    /// Reads the MSI mask register (logged).
    public func readMask() throws -> UInt32 {
        state.withLock { s in record(&s, .msiReadMask(s.msiMask)); return s.msiMask }
    }

    /// Writes the MSI mask register (logged).
    public func writeMask(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteMask(value)); s.msiMask = value }
    }
}
