// User input quoted inside a one-line message. Errors echo what they refuse (a slot, a
// script word, a path); that text must not break the line (a newline), drive the terminal
// (an escape sequence) or grow the line without bound (a 100 KB argument).

/// How many characters of one piece of user input a message shows. lspci refuses selectors
/// of 64 characters or more ("Expression too long"); nothing longer is worth echoing either.
public let echoedInputLimit = 64

/// `text` made safe to quote in a one-line message: control characters (C0, DEL, C1, and
/// the line/paragraph separators U+2028/U+2029) become escapes (`\n`, `\r`, `\t`, `\e`,
/// `\xNN`, `\u{NNNN}`), and once the quote reaches `limit` characters (escapes counted as
/// printed) the rest is replaced by `…(N more bytes)`.
public func echoed(_ text: some StringProtocol, limit: Int = echoedInputLimit) -> String {
    var out = ""
    var shown = 0
    var consumedBytes = 0
    let totalBytes = text.utf8.count
    for scalar in text.unicodeScalars {
        let piece = escapedScalar(scalar)
        let width = piece.unicodeScalars.count
        if shown + width > limit {
            out += "…(\(totalBytes - consumedBytes) more bytes)"
            return out
        }
        out += piece
        shown += width
        consumedBytes += String(scalar).utf8.count
    }
    return out
}

/// `text` with every control character escaped as ``echoed(_:limit:)`` does, and no length
/// cap: for a whole message line whose parts were already bounded.
public func escapingControlCharacters(_ text: some StringProtocol) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return String(text) }
    var out = ""
    for scalar in text.unicodeScalars { out += escapedScalar(scalar) }
    return out
}

private func isControl(_ s: Unicode.Scalar) -> Bool {
    s.value < 0x20 || (0x7F...0x9F).contains(s.value) || s.value == 0x2028 || s.value == 0x2029
}

private func escapedScalar(_ s: Unicode.Scalar) -> String {
    guard isControl(s) else { return String(s) }
    switch s.value {
    case 0x0A: return "\\n"
    case 0x0D: return "\\r"
    case 0x09: return "\\t"
    case 0x1B: return "\\e"
    case 0x2028, 0x2029: return "\\u{" + String(s.value, radix: 16) + "}"
    default: return "\\x" + hex(s.value, width: 2)
    }
}
