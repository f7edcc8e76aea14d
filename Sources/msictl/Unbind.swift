// `msictl unbind SLOT [--restore]`: detach a PCI function from its driver, or give it back
// to the driver it had before `msictl bind`.
import ArgumentParser
import DeviceIO

struct Unbind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detach a PCI function from its driver, or (--restore) return it to its original driver.",
        discussion: """
            --restore reinstates the driver_override recorded by `msictl bind` and lets the original driver \
            probe the device (without a record it clears driver_override and lets the kernel choose). \
            Refuses without --force when a kernel driver is in use.
            """)

    @Argument(help: "The function, [DDDD:]BB:SS.F.") var slot: String
    @Flag(help: "Return the device to the driver it had before `msictl bind`.") var restore = false
    @Flag(help: "Detach even if the driver looks in use.") var force = false
    @Flag(help: "Print exactly what would be written, and write nothing.") var dryRun = false
    @OptionGroup var roots: SystemRootOptions

    func run() throws {
        try runPlan(
            command: "unbind", slot: slot, roots: roots, dryRun: dryRun, force: force,
            make: { binder, address in try binder.planUnbind(address, restore: restore) },
            success: { address, outcome in
                "\(address) is now " + (outcome.driver.map { "bound to \($0)" } ?? "not bound to any driver")
            })
    }
}
