// An in-memory PCI function implementing the hardware protocols, with a log of every access.
// It is not the spec-faithful mock (MockDevice is): it stores what is written, applies the
// read-only bits of the control words, and records. Tests use it to assert the kernel's exact
// access sequences; benchmarks use it as a zero-cost backend.
import Synchronization
import MSIShimCore

/// One hardware access, as a backend saw it.
public enum HardwareAccess: Hashable, Sendable, CustomStringConvertible {
    case readCommand(UInt16)
    case writeCommand(UInt16)
    case msixReadControl(UInt16)
    case msixWriteControl(UInt16)
    case msixMapTable(entries: Int)
    case msixUnmapTable
    case msixRead(entry: Int, MSIXEntryField, UInt32)
    case msixWrite(entry: Int, MSIXEntryField, UInt32)
    case msiReadControl(UInt16)
    case msiWriteControl(UInt16)
    case msiWriteAddressLo(UInt32)
    case msiWriteAddressHi(UInt32)
    case msiWriteData(UInt16)
    case msiReadMask(UInt32)
    case msiWriteMask(UInt32)

    public var isWrite: Bool {
        switch self {
        case .writeCommand, .msixWriteControl, .msixWrite, .msiWriteControl, .msiWriteAddressLo,
             .msiWriteAddressHi, .msiWriteData, .msiWriteMask: true
        default: false
        }
    }

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
        public var msi64Bit: Bool
        public var msiPerVectorMask: Bool
        /// Legacy interrupt (`dev->irq`), 0 for none.
        public var intxIRQ: Int
        /// Whether to keep an access log (turn off for benchmarks).
        public var logging: Bool

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

    public let configuration: Configuration
    let state: Mutex<State>

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
        state = Mutex(s)
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

    public func readCommand() throws -> UInt16 {
        state.withLock { s in record(&s, .readCommand(s.command)); return s.command }
    }

    public func writeCommand(_ value: UInt16) throws {
        state.withLock { s in record(&s, .writeCommand(value)); s.command = value }
    }

    public func readMSIXControl() throws -> UInt16 {
        state.withLock { s in record(&s, .msixReadControl(s.msixControl)); return s.msixControl }
    }

    public func writeMSIXControl(_ value: UInt16) throws {
        state.withLock { s in
            record(&s, .msixWriteControl(value))
            let rw = PCIReg.MSIX.functionMask | PCIReg.MSIX.enable
            s.msixControl = (s.msixControl & ~rw) | (value & rw)
        }
    }

    public func mapTable(entries: Int) throws {
        try state.withLock { s throws(DeviceAccessError) in
            record(&s, .msixMapTable(entries: entries))
            if s.failMapping || entries * 4 > s.entries.count {
                throw DeviceAccessError.unsupported("simulated MSI-X table", what: "mapping \(entries) entries")
            }
            s.tableMapped = true
        }
    }

    public func unmapTable() {
        state.withLock { s in record(&s, .msixUnmapTable); s.tableMapped = false }
    }

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

    public func readMSIControl() throws -> UInt16 {
        state.withLock { s in record(&s, .msiReadControl(s.msiControl)); return s.msiControl }
    }

    public func writeMSIControl(_ value: UInt16) throws {
        state.withLock { s in
            record(&s, .msiWriteControl(value))
            let rw = PCIReg.MSI.enable | PCIReg.MSI.qsize
            s.msiControl = (s.msiControl & ~rw) | (value & rw)
        }
    }

    public func writeAddressLo(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteAddressLo(value)); s.msiAddressLo = value }
    }

    public func writeAddressHi(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteAddressHi(value)); s.msiAddressHi = value }
    }

    public func writeData(_ value: UInt16) throws {
        state.withLock { s in record(&s, .msiWriteData(value)); s.msiData = value }
    }

    public func readMask() throws -> UInt32 {
        state.withLock { s in record(&s, .msiReadMask(s.msiMask)); return s.msiMask }
    }

    public func writeMask(_ value: UInt32) throws {
        state.withLock { s in record(&s, .msiWriteMask(value)); s.msiMask = value }
    }
}
