// `msictl inspect`: its options, where the report comes from, how it is printed. The
// sources are in InspectSources.swift, the report in InspectReport.swift, its two
// renderings in InspectJSON.swift and InspectText.swift.
import ArgumentParser
import DeviceIO
import MSIShimCore
import PCIAccess

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a device's MSI/MSI-X state and its MSI-X table entry by entry.",
        discussion: """
            Live (default): config space through sysfs, the table through the BAR's sysfs \
            resourceN mapping (UIO or VFIO when bound to them), each entry joined with the \
            kernel's irq, per-CPU counts and effective CPU(s); an entry whose destination APIC is \
            not that CPU is marked '!!'. Read-only: inspect never writes to a device. \
            --dump FILE: the capabilities of a dumped device (a dump holds no table). \
            --mock: a mock device (built-in, or from --dump), optionally after running a \
            'msictl mock' script (--script). Entries still in their reset state (zero, masked) \
            are summarized unless --all.
            """)

    @Argument(help: "The device: [domain:]bus:device.function (for --mock without --dump: any address).")
    var slot: String?

    @Option(name: .long, help: "Inspect a device of an lspci -x/-xxx/-xxxx dump.")
    var dump: String?

    @Flag(name: .long, help: "Inspect a mock device (built-in, or built from --dump).")
    var mock = false

    @Option(name: .long, help: "With --mock: run this 'msictl mock' script first.")
    var script: String?

    @Flag(name: .long, help: "With --mock: use an interrupt-remapping parent.")
    var remap = false

    @Flag(name: .long, help: "Show every table entry, including ones in their reset state.")
    var all = false

    @Flag(name: .long, help: "Print JSON (keys documented in README).")
    var json = false

    func validate() throws {
        if slot == nil && !(mock && dump == nil) { throw ValidationError("missing SLOT") }
        if script != nil && !mock { throw ValidationError("--script needs --mock") }
        if remap && !mock { throw ValidationError("--remap needs --mock") }
    }

    func run() throws {
        let report: InspectReport
        do {
            report = try gather()
        } catch let e as ValidationError {
            printError(e.message)
            throw ExitCode(2)
        } catch let e as DeviceIOError {
            printError(ErrorAdvice.message(for: e))
            if case .noSuchDevice = e { throw ExitCode(1) }
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        print(json ? report.json.jsonText : report.text(all: all))
    }

    func gather() throws -> InspectReport {
        if mock { return try gatherMock() }
        let address = try PCIAddress(parsing: slot ?? "")
        if let dump { return try gatherDump(path: dump, address: address) }
        return try gatherLive(address)
    }
}
