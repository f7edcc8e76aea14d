// `msictl bind SLOT vfio-pci|uio_pci_generic`: hand a PCI function to a userspace driver
// through driver_override + drivers_probe, refusing when its kernel driver is in use.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import DeviceIO
import MSIShimCore
import PCIAccess

extension UserspaceDriver: ExpressibleByArgument {}

/// Options that point the binding commands at a fake tree (tests) instead of the live system.
/// Hidden: the same can be done with MSICTL_SYSFS_ROOT, MSICTL_PROC_ROOT, MSICTL_STATE_DIR.
struct SystemRootOptions: ParsableArguments {
    @Option(help: .hidden) var sysfsRoot: String?
    @Option(help: .hidden) var procRoot: String?
    @Option(help: .hidden) var stateDir: String?

    func environment() -> DeviceIOEnvironment {
        var env = DeviceIOEnvironment.msictl
        if let sysfsRoot { env.sysfs = SysfsPCI(root: sysfsRoot) }
        if let procRoot { env.procRoot = procRoot }
        return env
    }

    /// The binder over these roots, recording original drivers in the state directory.
    func binder() -> DriverBinder {
        let env = environment()
        return DriverBinder(
            sysfs: env.sysfs, procRoot: env.procRoot,
            stateDirectory: stateDir ?? DeviceIOEnvironment.msictlStateDirectory)
    }
}

func parseSlot(_ text: String) throws -> PCIAddress {
    do {
        return try PCIAddress(parsing: text)
    } catch {
        throw ValidationError(error.description)
    }
}

/// One line on stderr: `msictl: text`, or `msictl COMMAND: text`. Whatever `text` echoes,
/// it stays one line: control characters are escaped and the line is cut after
/// ``errorLineLimit`` characters (the sources cap each piece of input they quote; this is the
/// last guard, e.g. for ArgumentParser's messages).
func printError(_ text: String, command: String? = nil) {
    let line = "msictl\(command.map { " " + $0 } ?? ""): " + echoed(text, limit: errorLineLimit)
    ProbeIO.writeAll(2, Array((line + "\n").utf8))
}

/// The longest error message printed, in characters.
let errorLineLimit = 1024

/// Makes a plan for `slot`, prints it, applies it unless dry-running, and reports the outcome.
func runPlan(
    command: String, slot: String, roots: SystemRootOptions, dryRun: Bool, force: Bool,
    make: (DriverBinder, PCIAddress) throws -> BindPlan, success: (PCIAddress, BindOutcome) -> String
) throws {
    let address = try parseSlot(slot)
    let binder = roots.binder()
    let plan: BindPlan
    do {
        plan = try make(binder, address)
    } catch {
        printError(ErrorAdvice.message(for: error), command: command)
        throw ExitCode(1)
    }
    let root = binder.sysfs.root
    print(plan.rendered(sysfsRoot: root, dryRun: dryRun, force: force))
    let refused = !plan.blockers.isEmpty || (!plan.inUse.isEmpty && !force)
    if refused {
        // The plan above is the output; why it is refused is an error, on stderr.
        let why: BindError = plan.blockers.isEmpty
            ? .inUse(plan.address, driver: plan.currentDriver ?? "?", reasons: plan.inUse)
            : .blocked(plan.address, reasons: plan.blockers)
        printError((dryRun ? "would refuse: " : "refused: ") + ErrorAdvice.message(for: why), command: command)
        throw ExitCode(1)
    }
    if dryRun || plan.isEmpty { return }
    do {
        let outcome = try binder.apply(plan, force: force)
        if outcome.matchesExpectation {
            print(success(address, outcome))
        } else {
            printError(
                "\(plan.address) is now \(outcome.driver.map { "bound to \($0)" } ?? "unbound"), expected "
                    + "\(plan.expectedDriver ?? "?"): the kernel did not bind it (see dmesg)", command: command)
            throw ExitCode(1)
        }
    } catch let error as BindError {
        printError(ErrorAdvice.message(for: error), command: command)
        throw ExitCode(1)
    }
}

struct Bind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hand a PCI function to vfio-pci or uio_pci_generic (driver_override + drivers_probe).",
        discussion: """
            Refuses without --force when the current driver is in use (it has taken interrupts, the device is \
            storage, network, the boot display or a bridge, or holds the root filesystem). Explains which other \
            devices of the IOMMU group must also be bound for VFIO. The original driver is remembered in \
            $MSICTL_STATE_DIR (default /run/msictl) for `msictl unbind --restore`.
            """)

    @Argument(help: "The function, [DDDD:]BB:SS.F.") var slot: String
    @Argument(help: "vfio-pci or uio_pci_generic.") var driver: UserspaceDriver
    @Flag(help: "Take the device even if its driver looks in use.") var force = false
    @Flag(help: "Print exactly what would be written, and write nothing.") var dryRun = false
    @OptionGroup var roots: SystemRootOptions

    func run() throws {
        try runPlan(
            command: "bind", slot: slot, roots: roots, dryRun: dryRun, force: force,
            make: { binder, address in try binder.planBind(address, to: driver) },
            success: { address, _ in "\(address) is bound to \(driver.rawValue)" })
    }
}
