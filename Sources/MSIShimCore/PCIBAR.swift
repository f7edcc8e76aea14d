// What a function's six BAR registers describe, from sysfs `resource` (start, end, flags
// per resource) or from the BAR registers plus sizes from elsewhere (VFIO region info).
// Reading BAR registers never writes them: sizing by writing all-ones is a driver's job.
// Pure decoding: DeviceIO reads the `resource` file and the registers of a live function.

/// One of the six Base Address Registers of a type-0 function, as needed to map it. (PCIAccess's
/// `ProbedBAR` is the report view: a BAR as `msictl probe` and lspci print it.)
public struct PCIBAR: Hashable, Sendable, CustomStringConvertible {
    /// What the BAR register holds.
    public enum Kind: Hashable, Sendable {
        /// Not implemented (reads 0, size 0).
        case unimplemented
        /// An I/O-port BAR (cannot be mmapped on x86).
        case io
        /// A 32-bit memory BAR.
        case memory32
        /// The lower half of a 64-bit memory BAR (the next register is its upper half).
        case memory64
        /// The upper 32 bits of the 64-bit BAR at `lower`: not a BAR of its own.
        case upperHalf(lower: Int)
    }

    /// Register index 0…5 (the MSI-X BIR names these).
    public var index: Int
    /// What the register holds.
    public var kind: Kind
    /// Bus address of the BAR (0 when unknown or unassigned).
    public var start: UInt64
    /// Size in bytes (0 when unimplemented).
    public var size: UInt64
    /// Prefetchable memory (then sysfs offers `resourceN_wc`).
    public var prefetchable: Bool

    /// Creates a BAR description.
    public init(index: Int, kind: Kind, start: UInt64 = 0, size: UInt64 = 0, prefetchable: Bool = false) {
        self.index = index
        self.kind = kind
        self.start = start
        self.size = size
        self.prefetchable = prefetchable
    }

    /// A memory BAR of non-zero size (something that can hold MSI-X structures).
    public var isMemory: Bool {
        switch kind {
        case .memory32, .memory64: size > 0
        default: false
        }
    }

    public var description: String {
        let what: String
        switch kind {
        case .unimplemented: what = "unimplemented"
        case .io: what = "I/O ports"
        case .memory32: what = "32-bit memory"
        case .memory64: what = "64-bit memory"
        case .upperHalf(let lower): what = "upper half of 64-bit BAR\(lower)"
        }
        let pf = prefetchable ? ", prefetchable" : ""
        return "BAR\(index): \(what)\(pf), size 0x\(hex(size, width: 1)) at 0x\(hex(start, width: 1))"
    }

    // Linux IORESOURCE_* flags as sysfs `resource` prints them.
    static let ioresourceIO: UInt64 = 0x100
    static let ioresourceMem: UInt64 = 0x200
    static let ioresourcePrefetch: UInt64 = 0x2000
    static let ioresourceMem64: UInt64 = 0x10_0000

    /// Parses the sysfs `resource` file (one `start end flags` line per resource; the first
    /// six are the BARs). A 64-bit BAR's upper half shows as an all-zero line and becomes
    /// ``Kind/upperHalf(lower:)``.
    public static func parseSysfsResource(_ text: String) -> [PCIBAR] {
        var bars: [PCIBAR] = []
        let lines = text.split(separator: "\n").prefix(6)
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: " ").compactMap { UInt64($0.dropFirst(2), radix: 16) }
            let (start, end, flags) = f.count == 3 ? (f[0], f[1], f[2]) : (0, 0, 0)
            let size: UInt64 = flags != 0 && end >= start && !(start == 0 && end == 0) ? end - start + 1 : 0
            let kind: Kind
            if size == 0 || flags == 0 {
                if let prev = bars.last, prev.kind == .memory64 {
                    kind = .upperHalf(lower: prev.index)
                } else {
                    kind = .unimplemented
                }
                bars.append(PCIBAR(index: i, kind: kind))
                continue
            }
            if flags & ioresourceIO != 0 {
                kind = .io
            } else {
                kind = flags & ioresourceMem64 != 0 ? .memory64 : .memory32
            }
            bars.append(PCIBAR(
                index: i, kind: kind, start: start, size: size, prefetchable: flags & ioresourcePrefetch != 0))
        }
        while bars.count < 6 {
            let i = bars.count
            if let prev = bars.last, prev.kind == .memory64 {
                bars.append(PCIBAR(index: i, kind: .upperHalf(lower: prev.index)))
            } else {
                bars.append(PCIBAR(index: i, kind: .unimplemented))
            }
        }
        return bars
    }

    /// Decodes the six BAR registers (read from config space, never written) with sizes
    /// learnt elsewhere (VFIO region info). A BAR with size 0 is unimplemented.
    public static func decode(registers: [UInt32], sizes: [UInt64]) -> [PCIBAR] {
        var bars: [PCIBAR] = []
        var i = 0
        while i < 6 {
            let reg = i < registers.count ? registers[i] : 0
            let size = i < sizes.count ? sizes[i] : 0
            if reg & 1 == 1 {
                bars.append(PCIBAR(index: i, kind: size == 0 ? .unimplemented : .io, start: UInt64(reg & ~3), size: size))
                i += 1
                continue
            }
            let type = (reg >> 1) & 3
            let prefetchable = reg & 8 != 0
            if type == 2 {
                let hi = i + 1 < registers.count ? UInt64(registers[i + 1]) : 0
                let start = hi << 32 | UInt64(reg & ~0xF)
                bars.append(PCIBAR(
                    index: i, kind: size == 0 ? .unimplemented : .memory64, start: start, size: size,
                    prefetchable: prefetchable))
                if i + 1 < 6 { bars.append(PCIBAR(index: i + 1, kind: .upperHalf(lower: i))) }
                i += 2
            } else {
                bars.append(PCIBAR(
                    index: i, kind: size == 0 ? .unimplemented : .memory32, start: UInt64(reg & ~0xF), size: size,
                    prefetchable: prefetchable))
                i += 1
            }
        }
        return bars
    }

    /// Reads the six BAR registers of a type-0 header from `config`.
    public static func registers(from config: any ConfigSpaceAccess) throws -> [UInt32] {
        try (0..<6).map { try config.read32(PCIReg.bar0 + 4 * $0) }
    }
}
