import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

@main
struct MSICtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msictl",
        abstract: "Probe PCI interrupt capabilities, inspect MSI/MSI-X tables, and drive a model of the Linux MSI store.",
        subcommands: [Probe.self, Inspect.self, Watch.self, Export.self, Mock.self, Bind.self, Unbind.self])

    /// ArgumentParser's entry point, except that a usage error prints one line on stderr
    /// and exits with status 2 (the house convention for usage/input errors; ArgumentParser
    /// would print the usage text and exit 64). Help, version and errors thrown by a
    /// subcommand's run() are handled by ArgumentParser as usual. `msictl probe` in its
    /// everyday spellings skips ArgumentParser altogether (see Probe.parseEveryday).
    /// (Synchronous: should a subcommand become an AsyncParsableCommand, make this an
    /// AsyncParsableCommand with `static func main() async` and await its run().)
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "probe" {
            ProbeWarmup.start()
            if let invocation = Probe.parseEveryday(arguments.dropFirst()) {
                do { try Probe.execute(invocation) } catch { exit(withError: error) }
                return
            }
        }
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }  // --help, --version
            let first = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
            let text = first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
            let names = configuration.subcommands.compactMap { $0.configuration.commandName ?? "\($0)".lowercased() }
            let sub = CommandLine.arguments.dropFirst().first.flatMap { names.contains($0) ? $0 + " " : nil } ?? ""
            printError("\(text) (see 'msictl \(sub)--help')")
            Glibc.exit(2)
        }
        var runnable = command
        do {
            try runnable.run()
        } catch let error as ValidationError {
            // Bad input found while running (e.g. a malformed slot): the same one line and
            // status 2 as a parse error, not ArgumentParser's usage text.
            printError(error.message)
            Glibc.exit(2)
        } catch {
            exit(withError: error)
        }
    }
}
