// The mock-script commands for NTB peer interrupts and affinity moves (drivers/ntb/msi.c,
// irq_set_affinity): their vocabulary and parsing. MockScript.swift only dispatches here.
import MSIShimCore

/// `ntb …`: the NTB client API of drivers/ntb/msi.c on the mock device, with the peer on the
/// other side of the memory window.
public enum NTBCommand: Hashable, Sendable {
    /// `ntb setup [align=HEX] [max=HEX]` → ntb_msi_init + ntb_msi_setup_mws.
    case setup(addressAlignment: UInt64?, maximumSize: UInt64?)
    /// `ntb request` → ntbm_msi_request_threaded_irq.
    case request
    /// `ntb trigger INDEX [offset=HEX] [data=HEX]` → the peer writes what was published for
    /// descriptor INDEX (or the offset/data given) through its window.
    case trigger(index: Int, offset: UInt64?, data: UInt32?)
    /// `ntb free INDEX` → ntbm_msi_free_irq.
    case free(index: Int)
}

/// Parses `ntb …` (the words after `ntb`).
func parseNTBCommand(_ args: [String], line: Int) -> Result<MockCommand, MockScriptError> {
    func fail(_ m: String) -> Result<MockCommand, MockScriptError> { .failure(MockScriptError(line: line, message: m)) }
    let usage = "ntb setup [align=HEX] [max=HEX] | ntb request | ntb trigger INDEX [offset=HEX] [data=HEX] | ntb free INDEX"
    guard let sub = args.first else { return fail("usage: \(usage)") }
    var options: [String: UInt64] = [:]
    var positional: [String] = []
    for word in args.dropFirst() {
        guard let eq = word.firstIndex(of: "=") else { positional.append(word); continue }
        let key = String(word[..<eq])
        var text = word[word.index(after: eq)...]
        if text.hasPrefix("0x") || text.hasPrefix("0X") { text = text.dropFirst(2) }
        guard let value = parseHexUInt64(text) else { return fail("\(echoed(key)) '\(echoed(text))' is not hex") }
        options[key] = value
    }
    func index() -> Int? { positional.count == 1 ? parseScriptNumber(positional[0]) : nil }
    func only(_ keys: Set<String>) -> Bool { Set(options.keys).isSubset(of: keys) }
    switch sub {
    case "setup":
        guard positional.isEmpty, only(["align", "max"]) else { return fail("usage: ntb setup [align=HEX] [max=HEX]") }
        return .success(.ntb(.setup(addressAlignment: options["align"], maximumSize: options["max"])))
    case "request":
        guard positional.isEmpty, options.isEmpty else { return fail("usage: ntb request") }
        return .success(.ntb(.request))
    case "trigger":
        guard let i = index(), only(["offset", "data"]) else { return fail("usage: ntb trigger INDEX [offset=HEX] [data=HEX]") }
        guard options["data"].map({ $0 <= UInt64(UInt32.max) }) ?? true else { return fail("data must fit 32 bits") }
        return .success(.ntb(.trigger(index: i, offset: options["offset"], data: options["data"].map { UInt32($0) })))
    case "free":
        guard let i = index(), options.isEmpty else { return fail("usage: ntb free INDEX") }
        return .success(.ntb(.free(index: i)))
    default:
        return fail("unknown ntb command '\(echoed(sub))' (usage: \(usage))")
    }
}

/// Parses `affinity msix|msi|ims INDEX CPU` (the words after `affinity`).
func parseAffinityCommand(_ args: [String], line: Int) -> Result<MockCommand, MockScriptError> {
    let usage = "affinity msix|msi|ims INDEX CPU"
    guard args.count == 3, let kind = InterruptKind(rawValue: args[0]) else {
        return .failure(MockScriptError(line: line, message: "usage: \(usage)"))
    }
    guard let index = parseScriptNumber(args[1]), let cpu = parseScriptNumber(args[2]) else {
        return .failure(MockScriptError(line: line, message: "INDEX and CPU must be non-negative numbers (usage: \(usage))"))
    }
    return .success(.affinity(kind, index: index, cpu: cpu))
}

/// Parses `cpu N online|offline` (the words after `cpu`).
func parseCPUCommand(_ args: [String], line: Int) -> Result<MockCommand, MockScriptError> {
    guard args.count == 2, let cpu = parseScriptNumber(args[0]), args[1] == "online" || args[1] == "offline" else {
        return .failure(MockScriptError(line: line, message: "usage: cpu N online|offline"))
    }
    return .success(.cpu(cpu, online: args[1] == "online"))
}
