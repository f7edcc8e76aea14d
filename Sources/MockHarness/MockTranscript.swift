// One script line run and reported the way `msictl mock --json` reports it, shared by the CLI
// and the fuzz target that checks every such line parses as JSON.
public import MSIShimCore

extension MockSession {
    /// Runs one parsed script line: its command, or its parse error as an EINVAL outcome.
    public func run(_ line: MockScriptLine) -> Result<JSONValue, MockCommandError> {
        switch line.command {
        case .failure(let e): .failure(MockCommandError(.EINVAL, e.description))
        case .success(let command): Result { () throws(MockCommandError) in try run(command) }
        }
    }
}

/// The `--json` object for a script line and its outcome:
/// `{"cmd","line","ok":true,"result"}` or `{"cmd","line","ok":false,"errno","message"}`.
public func mockJSONLine(_ line: MockScriptLine, _ outcome: Result<JSONValue, MockCommandError>) -> JSONValue {
    var pairs: [(String, JSONValue)] = [("cmd", .string(line.text)), ("line", .int(line.number))]
    switch outcome {
    case .success(let v): pairs += [("ok", .bool(true)), ("result", v)]
    case .failure(let e):
        pairs += [("ok", .bool(false)), ("errno", e.errno.map { .string($0.name) } ?? .null), ("message", .string(e.message))]
    }
    return .object(pairs)
}
