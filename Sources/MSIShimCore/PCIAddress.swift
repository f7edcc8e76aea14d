/// The address of a PCI function: `domain:bus:device.function`, printed as `0000:00:03.0`.
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// PCI domain (segment), 0 on most machines.
    public var domain: UInt32
    /// Bus number.
    public var bus: UInt8
    /// Device (slot) number, 0…31.
    public var device: UInt8
    /// Function number, 0…7.
    public var function: UInt8

    /// Creates an address; returns `nil` when `device > 31` or `function > 7`.
    public init?(domain: UInt32 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        guard device < 32, function < 8 else { return nil }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `DDDD:BB:SS.F` or `BB:SS.F` (hex, as sysfs and lspci print them). Every field is
    /// hex digits only, with the bounds of lspci's `-s` (``parseHexDigits(_:max:)``): no sign,
    /// no `0x`, no spaces. This is the one parser of a single device address in the package.
    /// Throws ``PCIAddressError`` naming what is wrong.
    public init(parsing text: String) throws(PCIAddressError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { throw .malformed(text, "expected [DDDD:]BB:SS.F") }
        var domain: UInt32 = 0
        if parts.count == 3 {
            guard parts[0].utf8.count <= 8, let d = parseHexDigits(parts[0], max: 0xFFFF_FFFF) else {
                throw .malformed(text, "domain '\(echoed(parts[0]))' is not hex 0…ffffffff")
            }
            domain = d
        }
        let busText = parts[parts.count - 2]
        guard busText.utf8.count <= 2, let bus = parseHexDigits(busText, max: 0xFF) else {
            throw .malformed(text, "bus '\(echoed(busText))' is not a hex byte")
        }
        let slotFn = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard slotFn.count == 2 else { throw .malformed(text, "expected SS.F after the bus") }
        guard slotFn[0].utf8.count <= 2, let dev = parseHexDigits(slotFn[0], max: 0x1F) else {
            throw .malformed(text, "device '\(echoed(slotFn[0]))' must be hex 00…1f")
        }
        guard slotFn[1].utf8.count == 1, let fn = parseHexDigits(slotFn[1], max: 7) else {
            throw .malformed(text, "function '\(echoed(slotFn[1]))' must be 0…7")
        }
        self.domain = domain
        self.bus = UInt8(bus)
        self.device = UInt8(dev)
        self.function = UInt8(fn)
    }

    /// `0000:00:03.0`, the form sysfs uses.
    public var description: String {
        hex(domain, width: 4) + ":" + hex(bus, width: 2) + ":" + hex(device, width: 2) + "." + String(function, radix: 16)
    }

    /// `00:03.0`, the short form lspci prints for domain 0.
    public var shortDescription: String {
        hex(bus, width: 2) + ":" + hex(device, width: 2) + "." + String(function, radix: 16)
    }

    /// The device id the kernel's legacy global PCI-MSI domain uses in hwirq numbers:
    /// `bus << 8 | devfn`.
    public var requesterID: UInt16 { UInt16(bus) << 8 | UInt16(device) << 3 | UInt16(function) }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.bus, a.device, a.function) < (b.domain, b.bus, b.device, b.function)
    }
}

/// Why a PCI address string was rejected.
public enum PCIAddressError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text, and why it is not an address.
    case malformed(String, String)

    public var description: String {
        switch self {
        case .malformed(let text, let why): "invalid PCI address '\(echoed(text))': \(why)"
        }
    }
}

/// A field of hex digits (`0-9a-fA-F`, at least one, nothing else: no sign, prefix or space)
/// whose value is at most `max`; nil otherwise. The field rule of lspci's selectors
/// (pciutils `lib/filter.c`), shared by ``PCIAddress/init(parsing:)`` and `-s`/`-d`.
public func parseHexDigits(_ field: Substring, max: UInt32) -> UInt32? {
    guard !field.isEmpty else { return nil }
    var value: UInt32 = 0
    for c in field.utf8 {
        let digit: UInt32
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
        guard digit <= max, value <= (max - digit) >> 4 else { return nil }
        value = value << 4 | digit
    }
    return value
}

/// Lower-case hex of `value`, zero-padded to `width` digits.
public func hex<T: BinaryInteger>(_ value: T, width: Int) -> String {
    let s = String(value, radix: 16)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
