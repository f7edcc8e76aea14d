import ArgumentParser

struct Bind: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "(not implemented yet)", shouldDisplay: false)
    func run() throws { throw ValidationError("not implemented yet") }
}
