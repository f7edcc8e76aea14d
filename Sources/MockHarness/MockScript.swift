public import MSIShimCore

/// The kind of interrupt a mock-script command addresses.
public enum InterruptKind: String, Hashable, Sendable, CaseIterable {
    /// An MSI-X table entry.
    case msix
    /// A vector of the MSI capability.
    case msi
    /// An IMS interrupt (device slot or software store).
    case ims
}

/// Which interrupt types `enable` may use (pci_alloc_irq_vectors' PCI_IRQ_* flags).
public enum EnableKind: String, Hashable, Sendable, CaseIterable {
    /// `PCI_IRQ_MSIX`.
    case msix
    /// `PCI_IRQ_MSI`.
    case msi
    /// `PCI_IRQ_MSIX | PCI_IRQ_MSI`: MSI-X first, MSI if that fails.
    case any
}

/// Where an IMS domain keeps its messages.
public enum IMSStorage: String, Hashable, Sendable, CaseIterable {
    /// A pure software store in host memory (queue-memory style, no slot limit).
    case software
    /// The device's IDXD-style slot array in BAR memory.
    case device
}

/// One line of a `msictl mock` script, named for the kernel API it drives.
public enum MockCommand: Hashable, Sendable {
    /// `enable msix|msi|any MIN MAX [affinity]` → pci_alloc_irq_vectors(_affinity).
    case enable(EnableKind, min: Int, max: Int, affinity: Bool)
    /// `disable` → pci_free_irq_vectors.
    case disable
    /// `vector N` → pci_irq_vector.
    case vector(Int)
    /// `alloc msix INDEX|any` → pci_msix_alloc_irq_at.
    case allocMSIX(index: Int?)
    /// `free msix INDEX` → pci_msix_free_irq.
    case freeMSIX(index: Int)
    /// `ims create HWSIZE [software|device]` → pci_create_ims_domain.
    case imsCreate(hwsize: Int, storage: IMSStorage)
    /// `alloc ims [cookie=HEX]` → pci_ims_alloc_irq.
    case allocIMS(cookie: UInt64?)
    /// `free ims INDEX` → pci_ims_free_irq.
    case freeIMS(index: Int)
    /// `request KIND INDEX` → request_irq (activate, real vector, unmask).
    case request(InterruptKind, index: Int)
    /// `release KIND INDEX` → free_irq.
    case release(InterruptKind, index: Int)
    /// `mask KIND INDEX` → disable_irq (nested; the outermost masks at the chip at once).
    case mask(InterruptKind, index: Int)
    /// `unmask KIND INDEX` → enable_irq (the last one unmasks; refused without request_irq).
    case unmask(InterruptKind, index: Int)
    /// `fire KIND INDEX` → the device raises the interrupt.
    case fire(InterruptKind, index: Int)
    /// `function-mask on|off` → MSI-X Function Mask in Message Control.
    case functionMask(Bool)
    /// `show` → descriptors, table entries, PBA.
    case show
    /// `counters` → MMIO and config accesses since the last `counters`.
    case counters
    /// `ntb …` → drivers/ntb/msi.c (see ``NTBCommand``).
    case ntb(NTBCommand)
    /// `affinity msix|msi|ims INDEX CPU` → irq_set_affinity, as /proc/irq/N/smp_affinity_list.
    case affinity(InterruptKind, index: Int, cpu: Int)
    /// `cpu N online|offline` → CPU hotplug (irq_matrix_online/offline).
    case cpu(Int, online: Bool)
    /// `queue …` → work queues shared by consumers (see ``QueueCommand``).
    case queue(QueueCommand)
}

/// A script line that could not be parsed.
public struct MockScriptError: ErrnoCarrying, Equatable, CustomStringConvertible {
    /// The 1-based line number.
    public var line: Int
    /// Why the line does not parse.
    public var message: String

    /// An error for `line`.
    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var errno: KernelErrno? { .EINVAL }
    public var description: String { "line \(line): \(message)" }
}

/// One parsed line: its number, its text (comment stripped) and the command or the error.
public struct MockScriptLine: Sendable {
    /// The 1-based line number in the script.
    public var number: Int
    /// The line without its comment and surrounding whitespace.
    public var text: String
    /// The parsed command, or why the line is not one.
    public var command: Result<MockCommand, MockScriptError>
}

/// Parses a mock script: one command per line, `#` starts a comment, blank lines are skipped.
/// Lines end with LF or CRLF (Swift reads `"\r\n"` as one Character, so both are separators;
/// a lone CR is not a line end and stays in the line, where it is an error).
/// Bad lines become errors in place, so a runner can report them and go on.
public func parseMockScript(_ source: String) -> [MockScriptLine] {
    var lines: [MockScriptLine] = []
    let rawLines = source.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    for (i, raw) in rawLines.enumerated() {
        let text = String(raw.prefix { $0 != "#" }).trimmingWhitespace()
        guard !text.isEmpty else { continue }
        lines.append(MockScriptLine(number: i + 1, text: text, command: parseMockCommand(text, line: i + 1)))
    }
    return lines
}

/// Parses one command line (no comment).
public func parseMockCommand(_ text: String, line: Int) -> Result<MockCommand, MockScriptError> {
    let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    func fail(_ m: String) -> Result<MockCommand, MockScriptError> { .failure(MockScriptError(line: line, message: m)) }
    guard let verb = words.first else { return fail("empty command") }
    let args = Array(words.dropFirst())

    func int(_ s: String, _ what: String) -> Int? { parseScriptNumber(s) }
    /// A word of the line, quoted for an error message (one line, bounded).
    func q(_ s: String) -> String { echoed(s) }
    func kindAndIndex(_ usage: String, _ make: (InterruptKind, Int) -> MockCommand) -> Result<MockCommand, MockScriptError> {
        guard args.count == 2 else { return fail("usage: \(usage)") }
        guard let kind = InterruptKind(rawValue: args[0]) else {
            return fail("'\(q(args[0]))' is not msix, msi or ims (usage: \(usage))")
        }
        guard let index = int(args[1], "index") else { return fail("'\(q(args[1]))' is not an index (usage: \(usage))") }
        return .success(make(kind, index))
    }

    switch verb {
    case "enable":
        let usage = "enable msix|msi|any MIN MAX [affinity]"
        guard args.count == 3 || args.count == 4 else { return fail("usage: \(usage)") }
        guard let kind = EnableKind(rawValue: args[0]) else { return fail("'\(q(args[0]))' is not msix, msi or any") }
        guard let lo = int(args[1], "MIN"), let hi = int(args[2], "MAX") else {
            return fail("MIN and MAX must be non-negative numbers (usage: \(usage))")
        }
        if args.count == 4 && args[3] != "affinity" { return fail("unknown option '\(q(args[3]))' (usage: \(usage))") }
        return .success(.enable(kind, min: lo, max: hi, affinity: args.count == 4))
    case "disable", "show", "counters":
        guard args.isEmpty else { return fail("\(verb) takes no arguments") }
        return .success(verb == "disable" ? .disable : verb == "show" ? .show : .counters)
    case "vector":
        guard args.count == 1, let n = int(args[0], "N") else { return fail("usage: vector N") }
        return .success(.vector(n))
    case "alloc":
        guard let what = args.first else { return fail("usage: alloc msix INDEX|any | alloc ims [cookie=HEX]") }
        switch what {
        case "msix":
            guard args.count == 2 else { return fail("usage: alloc msix INDEX|any") }
            if args[1] == "any" { return .success(.allocMSIX(index: nil)) }
            guard let i = int(args[1], "INDEX") else { return fail("'\(q(args[1]))' is not an index or 'any'") }
            return .success(.allocMSIX(index: i))
        case "ims":
            guard args.count <= 2 else { return fail("usage: alloc ims [cookie=HEX]") }
            guard args.count == 2 else { return .success(.allocIMS(cookie: nil)) }
            guard args[1].hasPrefix("cookie=") else { return fail("expected cookie=HEX, got '\(q(args[1]))'") }
            var hexText = args[1].dropFirst("cookie=".count)
            if hexText.hasPrefix("0x") || hexText.hasPrefix("0X") { hexText = hexText.dropFirst(2) }
            guard let cookie = parseHexUInt64(hexText) else { return fail("cookie '\(q(String(hexText)))' is not hex (at most 16 digits)") }
            return .success(.allocIMS(cookie: cookie))
        default:
            return fail("cannot alloc '\(q(what))': use msix or ims")
        }
    case "free":
        guard args.count == 2, let i = int(args[1], "INDEX") else { return fail("usage: free msix|ims INDEX") }
        switch args[0] {
        case "msix": return .success(.freeMSIX(index: i))
        case "ims": return .success(.freeIMS(index: i))
        default: return fail("cannot free '\(q(args[0]))': use msix or ims")
        }
    case "ims":
        guard args.count >= 2, args[0] == "create", let size = int(args[1], "HWSIZE") else {
            return fail("usage: ims create HWSIZE [software|device]")
        }
        guard args.count <= 3 else { return fail("usage: ims create HWSIZE [software|device]") }
        let storage = args.count == 3 ? IMSStorage(rawValue: args[2]) : .device
        guard let storage else { return fail("'\(q(args[2]))' is not software or device") }
        return .success(.imsCreate(hwsize: size, storage: storage))
    case "request": return kindAndIndex("request msix|msi|ims INDEX") { .request($0, index: $1) }
    case "release": return kindAndIndex("release msix|msi|ims INDEX") { .release($0, index: $1) }
    case "mask": return kindAndIndex("mask msix|msi|ims INDEX") { .mask($0, index: $1) }
    case "unmask": return kindAndIndex("unmask msix|msi|ims INDEX") { .unmask($0, index: $1) }
    case "fire": return kindAndIndex("fire msix|msi|ims INDEX") { .fire($0, index: $1) }
    case "queue": return parseQueueCommand(args, line: line)
    case "function-mask":
        guard args.count == 1, args[0] == "on" || args[0] == "off" else { return fail("usage: function-mask on|off") }
        return .success(.functionMask(args[0] == "on"))
    case "ntb": return parseNTBCommand(args, line: line)
    case "affinity": return parseAffinityCommand(args, line: line)
    case "cpu": return parseCPUCommand(args, line: line)
    default:
        return fail("unknown command '\(q(verb))'")
    }
}


/// A number in a script: decimal digits, or `0x`/`0X` and hex digits; no sign, no spaces,
/// and no more than `Int` holds. Nil otherwise (so `0x-1` is refused like `-1`).
public func parseScriptNumber(_ text: String) -> Int? {
    var digits = Substring(text)
    var radix = 10
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
        digits = digits.dropFirst(2)
        radix = 16
    }
    guard !digits.isEmpty, digits.utf8.allSatisfy({ isDigit($0, radix: radix) }) else { return nil }
    return Int(digits, radix: radix)
}

/// Hex digits only (1…16 of them) as a UInt64; nil for anything else, signs included.
func parseHexUInt64(_ digits: Substring) -> UInt64? {
    guard !digits.isEmpty, digits.utf8.allSatisfy({ isDigit($0, radix: 16) }) else { return nil }
    return UInt64(digits, radix: 16)
}

private func isDigit(_ c: UInt8, radix: Int) -> Bool {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): true
    case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): radix == 16
    default: false
    }
}
