import ArgumentParser

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List PCI devices and decode their interrupt capabilities.")
    func run() throws {}
}
