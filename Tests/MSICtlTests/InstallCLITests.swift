import TestSupport
import Foundation
import Testing

/// What `scripts/install` installs besides the binary, from the binary itself: shell
/// completions and the command description the manual plugin reads.
@Suite(
    "msictl completions and manual source (the binary)",
    .enabled(if: TestEnvironment.hasMsictl, "msictl is not built next to the tests (scripts/test builds it first)"))
struct InstallCLITests {
    static let subcommands = ["probe", "inspect", "watch", "export", "mock", "bind", "unbind"]

    @Test("completion scripts name every subcommand, and bash/zsh/fish accept their syntax", arguments: ["bash", "zsh", "fish"])
    func completions(shell: String) throws {
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["--generate-completion-script", shell])
        #expect(r.status == 0 && !r.stdout.isEmpty)
        for name in Self.subcommands { #expect(r.stdout.contains(name), "\(shell): \(name)") }
        #expect(r.stdout.contains("interval") && r.stdout.contains("format"), "watch and export options")
        guard let interpreter = TestEnvironment.which(shell) else { return }  // syntax check where the shell exists
        let dir = try TestEnvironment.temporaryDirectory("completion")
        let file = dir.appendingPathComponent("msictl.\(shell)")
        try Data(r.stdout.utf8).write(to: file)
        let check = try TestEnvironment.run(interpreter, shell == "fish" ? ["--no-execute", file.path] : ["-n", file.path])
        #expect(check.status == 0, "\(shell) -n: \(check.stderr)")
    }

    @Test("--experimental-dump-help (the manual plugin's input) describes every subcommand and its options")
    func manualSource() throws {
        let r = try TestEnvironment.run(try #require(TestEnvironment.msictl), ["--experimental-dump-help"])
        #expect(r.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let command = try #require(object["command"] as? [String: Any])
        let subcommands = try #require(command["subcommands"] as? [[String: Any]])
        let names = subcommands.compactMap { $0["commandName"] as? String }
        #expect(Set(Self.subcommands).isSubset(of: Set(names)), "\(names)")
        let watch = try #require(subcommands.first { $0["commandName"] as? String == "watch" })
        #expect((watch["discussion"] as? String)?.contains("Exit status") == true)
    }
}
