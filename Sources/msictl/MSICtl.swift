import ArgumentParser

@main
struct MSICtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msictl",
        abstract: "Probe PCI interrupt capabilities, inspect MSI/MSI-X tables, and drive a model of the Linux MSI store.",
        subcommands: [Probe.self, Inspect.self, Mock.self, Bind.self, Unbind.self])
}
