// Device selectors with lspci's syntax and semantics (pciutils lib/filter.c, 3.8+):
//   -s [[[[domain]:]bus]:][slot][.[func]]     every part hex; empty or `*` means "any"
//   -d [vendor]:[device][:class[:progif]]     class digits may be `x` wildcards ("02xx")
// Parsing is pure Swift so it can be tested without libpci; messages are lspci's own.
public import MSIShimCore

/// A rejected `-s` or `-d` selector, with lspci's reason ("Invalid slot number").
public struct PCISelectorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The option the text came from: `-s` or `-d`.
    public var option: String
    /// The text given.
    public var text: String
    /// lspci's reason, e.g. `Invalid slot number`.
    public var reason: String

    /// An error for `text` given to `option`.
    public init(option: String, text: String, reason: String) {
        self.option = option
        self.text = text
        self.reason = reason
    }

    /// `-s '00:+3': Invalid slot number`; the text is quoted with `echoed(_:limit:)` (one
    /// line, at most 64 characters shown).
    public var description: String { "\(option) '\(echoed(text))': \(reason)" }
}

/// `-s [[[[domain]:]bus]:][slot][.[func]]`: which slots to show. Nil fields match anything.
public struct PCISlotFilter: Hashable, Sendable {
    /// Domain to match; nil matches any.
    public var domain: UInt32?
    /// Bus to match; nil matches any.
    public var bus: UInt8?
    /// Device (slot) number to match; nil matches any.
    public var slot: UInt8?
    /// Function number to match; nil matches any.
    public var function: UInt8?

    /// Matches every device.
    public init() {}

    /// Parses lspci's slot syntax. `"03"` is slot 3 on any bus, `"00:"` bus 0, `".1"`
    /// function 1 of every slot, `"0000:00:03.0"` exactly one function.
    public init(parsing text: String) throws(PCISelectorError) {
        func fail(_ reason: String) -> PCISelectorError { PCISelectorError(option: "-s", text: text, reason: reason) }
        let fields: [Substring]
        do { fields = try splitFields(text, separator: ":", count: 3) } catch { throw fail(error.reason) }
        var i = 0
        if fields.count == 3 {
            guard let d = parseHexField(fields[0], max: 0x7FFF_FFFF) else { throw fail("Invalid domain number") }
            domain = d
            i += 1
        }
        if fields.count > i + 1 {
            guard let b = parseHexField(fields[i], max: 0xFF) else { throw fail("Invalid bus number") }
            bus = b.map { UInt8($0) }
            i += 1
        }
        let slotFunction = fields[i]
        guard isDefined(slotFunction) else { return }
        let parts = slotFunction.split(separator: ".", maxSplits: .max, omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw fail("Invalid slot/function number") }
        guard let s = parseHexField(parts[0], max: 0x1F) else { throw fail("Invalid slot number") }
        slot = s.map { UInt8($0) }
        if parts.count == 2 {
            guard let f = parseHexField(parts[1], max: 7) else { throw fail("Invalid function number") }
            function = f.map { UInt8($0) }
        }
    }

    /// True when every given field equals the address's.
    public func matches(_ address: PCIAddress) -> Bool {
        (domain == nil || domain == address.domain) && (bus == nil || bus == address.bus)
            && (slot == nil || slot == address.device) && (function == nil || function == address.function)
    }

    /// Whether the filter selects every slot.
    public var isEverything: Bool { domain == nil && bus == nil && slot == nil && function == nil }
}

/// `-d [vendor]:[device][:class[:progif]]`: which IDs to show. Nil fields match anything.
public struct PCIIDFilter: Hashable, Sendable {
    /// Vendor ID to match; nil matches any.
    public var vendor: UInt16?
    /// Device ID to match; nil matches any.
    public var device: UInt16?
    /// Class code (base class << 8 | subclass); `classMask` has 0 nibbles where `x` was given.
    public var classCode: UInt16?
    /// Bits of ``classCode`` that must match (0 nibbles where `x` was given).
    public var classMask: UInt32 = ~0
    /// Programming interface to match; nil matches any.
    public var programmingInterface: UInt8?

    /// Matches every device.
    public init() {}

    /// Parses lspci's ID syntax: `"8086:"` any Intel device, `"::02xx"` any network
    /// controller, `"1af4:1041:0200:00"` one exact device and class.
    public init(parsing text: String) throws(PCISelectorError) {
        func fail(_ reason: String) -> PCISelectorError { PCISelectorError(option: "-d", text: text, reason: reason) }
        let fields: [Substring]
        do { fields = try splitFields(text, separator: ":", count: 4) } catch { throw fail(error.reason) }
        guard fields.count >= 2 else { throw fail("At least two fields must be given") }
        guard let v = parseHexField(fields[0], max: 0xFFFF) else { throw fail("Invalid vendor ID") }
        guard let d = parseHexField(fields[1], max: 0xFFFF) else { throw fail("Invalid device ID") }
        vendor = v.map { UInt16($0) }
        device = d.map { UInt16($0) }
        if fields.count > 2 {
            guard let (c, mask) = parseMaskedHexField(fields[2], max: 0xFFFF) else { throw fail("Invalid class code") }
            classCode = c.map { UInt16($0) }
            classMask = mask
        }
        if fields.count > 3 {
            guard let p = parseHexField(fields[3], max: 0xFF) else {
                throw fail("Invalid programming interface code")
            }
            programmingInterface = p.map { UInt8($0) }
        }
    }

    /// Whether the filter looks at IDs at all (if not, devices need not be read to match).
    public var isEverything: Bool {
        vendor == nil && device == nil && classCode == nil && programmingInterface == nil
    }

    /// True when every given field equals the device's (class bits under ``classMask``).
    public func matches(vendor v: UInt16, device d: UInt16, classCode c: UInt16, programmingInterface p: UInt8) -> Bool {
        if let vendor, vendor != v { return false }
        if let device, device != d { return false }
        if let classCode, (UInt32(classCode) ^ UInt32(c)) & classMask != 0 { return false }
        if let programmingInterface, programmingInterface != p { return false }
        return true
    }
}

// MARK: - lib/filter.c's helpers, in Swift

private struct FieldError: Error { var reason: String }

/// Splits on `separator` into at most `count` fields; lspci caps the expression at 63 chars.
private func splitFields(_ text: String, separator: Character, count: Int) throws(FieldError) -> [Substring] {
    guard text.utf8.count < 64 else { throw FieldError(reason: "Expression too long") }
    let fields = text.split(separator: separator, maxSplits: .max, omittingEmptySubsequences: false)
    guard fields.count <= count else { throw FieldError(reason: "Too many fields") }
    return fields
}

/// An empty field or `*` means "any".
private func isDefined(_ field: Substring) -> Bool { !field.isEmpty && field != "*" }

/// Parses a hex field bounded by `max` (``parseHexDigits(_:max:)``, the rule every address
/// parser shares). Returns `.some(nil)` for "any", `nil` when invalid.
private func parseHexField(_ field: Substring, max: UInt32) -> UInt32?? {
    guard isDefined(field) else { return .some(nil) }
    guard let value = parseHexDigits(field, max: max) else { return nil }
    return .some(value)
}

/// One hex digit (the `x` wildcard is handled by the caller).
private func hexDigit(_ c: UInt8) -> UInt32? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
    default: nil
    }
}

/// Like ``parseHexField(_:max:)`` but `x`/`X` are wildcard nibbles: returns the value and a
/// mask with those nibbles cleared (lib/filter.c keeps the mask's unused high bits set).
private func parseMaskedHexField(_ field: Substring, max: UInt32) -> (UInt32?, UInt32)? {
    guard isDefined(field) else { return (nil, ~0) }
    var value: UInt32 = 0
    var bound: UInt32 = 0
    var mask: UInt32 = ~0
    for c in field.utf8 {
        if c == UInt8(ascii: "x") || c == UInt8(ascii: "X") {
            value <<= 4
            bound = bound << 4 | 1
            mask <<= 4
        } else {
            guard let d = hexDigit(c) else { return nil }
            value = value << 4 | d
            bound = bound << 4 | d
            mask = mask << 4 | 0xF
        }
        guard bound <= max else { return nil }
    }
    return (value, mask)
}
