import ArgumentParser

struct Unbind: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "(not implemented yet)", shouldDisplay: false)
    func run() throws { throw ValidationError("not implemented yet") }
}
