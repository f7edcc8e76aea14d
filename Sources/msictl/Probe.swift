import ArgumentParser
import DeviceIO
import MSIShimCore
import PCIAccess

#if canImport(Glibc)
import Glibc
#endif

/// `msictl probe`: list PCI devices with their interrupt capabilities and the kernel's view.
///
/// Exit status, like grep: 0 devices listed, 1 no device matched, 2 usage or input error
/// (bad selector, unreadable or malformed dump) or a device that could not be read.
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List PCI devices and decode their interrupt capabilities.",
        discussion: """
            Reads the live system through libpci (sysfs) or an lspci -x/-xxx/-xxxx dump (--dump, \
            exactly what lspci -F reads). MSI and MSI-X are decoded field by field as lspci -vvv \
            shows them; on the live system the bound driver, IOMMU group, the kernel's MSI/MSI-X \
            IRQs with their per-CPU counts (/proc/interrupts) and placement (/proc/irq/N: affinity, \
            effective CPUs, node) are added. Capabilities need root \
            (other users can read only the first 64 bytes of config space).

            Exit status: 0 devices listed, 1 no device matched, 2 usage/input error or a device \
            that could not be read.
            """)

    @Option(name: .customLong("dump"), help: ArgumentHelp("Read an lspci -x/-xxx/-xxxx dump instead of the live system.", valueName: "file"))
    var dump: String?

    @Option(name: .customShort("s"), help: ArgumentHelp("Show only devices in selected slots (lspci syntax).", valueName: "[[[[domain]:]bus]:][slot][.[func]]"))
    var slot: String?

    @Option(name: .customShort("d"), help: ArgumentHelp("Show only devices with the given IDs (lspci syntax; class digits may be x).", valueName: "[vendor]:[device][:class[:progif]]"))
    var ids: String?

    @Flag(name: .customLong("json"), help: "Print a JSON array, one object per device.")
    var json = false

    @Option(name: .customLong("dump-reader"), help: ArgumentHelp("How to read --dump: native (default; the same bytes libpci reads, much faster on big dumps) or libpci (libpci's own dump method, what lspci -F runs).", valueName: "native|libpci"))
    var dumpReader: DumpReader = .native

    func run() throws {
        try Self.execute(Invocation(dump: dump, slot: slot, ids: ids, json: json, dumpReader: dumpReader))
    }

    /// The parsed command line, independent of ArgumentParser's property wrappers.
    struct Invocation: Equatable {
        var dump: String?
        var slot: String?
        var ids: String?
        var json = false
        var dumpReader = DumpReader.native
    }

    static func execute(_ invocation: Invocation) throws {
        let (dump, slot, ids, json, dumpReader) = (
            invocation.dump, invocation.slot, invocation.ids, invocation.json, invocation.dumpReader
        )
        var options = ProbeOptions()
        do {
            if let slot { options.slots = try PCISlotFilter(parsing: slot) }
            if let ids { options.ids = try PCIIDFilter(parsing: ids) }
        } catch {
            ProbeIO.fail("\(error)", status: 2)
        }
        let source: ProbeSource = dump.map { .dump(path: $0, reader: dumpReader) } ?? liveSource()
        let report: ProbeReport
        do { report = try PCIProbe.run(source, options: options, names: ProbeWarmup.names) } catch {
            ProbeIO.fail("\(error)", status: 2)
        }

        for warning in report.warnings { ProbeIO.printError("warning: \(warning)") }
        guard !report.devices.isEmpty else {
            var what: [String] = []
            if let slot { what.append("-s \(echoed(slot))") }
            if let ids { what.append("-d \(echoed(ids))") }
            ProbeIO.fail(what.isEmpty ? "no PCI devices found" : "no device matches \(what.joined(separator: " "))", status: 1)
        }

        let output = json ? ProbeJSON.render(report) : ProbeText.render(report)
        ProbeIO.writeAll(1, output)

        var status: Int32 = 0
        var rootHint = false
        for device in report.devices {
            for problem in device.problems {
                if problem.isError {
                    ProbeIO.printError("\(device.address): \(problem)" + (device.dumpLine.map { " (dump line \($0))" } ?? ""))
                    status = 2
                } else if case .capabilitiesNeedRoot = problem, !rootHint {
                    ProbeIO.printError("capabilities need root: config space beyond 64 bytes is readable only by root")
                    rootHint = true
                }
            }
        }
        if status != 0 { throw ExitCode(status) }
    }
}

extension DumpReader: ExpressibleByArgument {}

/// The live system at msictl's roots (`MSICTL_SYSFS_ROOT`, `MSICTL_PROC_ROOT`), so
/// every command can be pointed at a fake tree.
func liveSource() -> ProbeSource {
    let environment = DeviceIOEnvironment.msictl
    return .live(sysfsRoot: environment.sysfs.root, procInterrupts: environment.procRoot + "/interrupts")
}

extension Probe {
    /// Parses the everyday spellings (`--json`, `--dump FILE`, `-s SEL`, `-d SEL`,
    /// `--dump-reader libpci|native`) without ArgumentParser, whose parse builds the option
    /// tree of every subcommand by reflection: ~3 ms, a tenth of a whole probe on a small VM.
    /// Returns nil for anything else (help, `--opt=value`, unknown or repeated options, a
    /// missing value), which then goes through ArgumentParser for its usual messages.
    static func parseEveryday(_ arguments: ArraySlice<String>) -> Invocation? {
        var probe = Invocation()
        var seen = Set<String>()
        var rest = arguments
        while let option = rest.popFirst() {
            guard seen.insert(option).inserted else { return nil }
            if option == "--json" {
                probe.json = true
                continue
            }
            guard let value = rest.popFirst(), !value.hasPrefix("-") else { return nil }
            switch option {
            case "--dump": probe.dump = value
            case "-s": probe.slot = value
            case "-d": probe.ids = value
            case "--dump-reader":
                guard let reader = DumpReader(rawValue: value) else { return nil }
                probe.dumpReader = reader
            default: return nil
            }
        }
        return probe
    }
}

/// Loading libpci's name database takes ~10 ms (it parses all of pci.ids). When a CPU is
/// idle, `msictl probe` loads it on a second thread before argument parsing so it overlaps
/// everything else; on a busy machine the second thread would wait for a CPU while the
/// main thread waits for it (measured: slower than loading in line), so it is not started
/// and the first name lookup loads the database on the main thread.
enum ProbeWarmup {
    static let names = PCINameDatabase()

    static func start() {
        if hasIdleCPU() { names.preloadInBackground() }
    }

    /// Whether fewer tasks are runnable than CPUs are online (the 4th field of
    /// /proc/loadavg counts runnable tasks, this one included).
    static func hasIdleCPU() -> Bool {
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        guard cpus > 1, let text = readText("/proc/loadavg") else { return false }
        let fields = text.split(separator: " ")
        guard fields.count >= 4, let slash = fields[3].firstIndex(of: "/"), let running = Int(fields[3][..<slash]) else {
            return false
        }
        return running < cpus
    }
}

/// Output helpers of `msictl probe` (no Foundation: probe must start fast).
enum ProbeIO {
    /// Prints `msictl probe: message` on stderr and exits with `status`.
    static func fail(_ message: String, status: Int32) -> Never {
        printError(message)
        exit(status)
    }

    /// One line on stderr, prefixed with the command.
    static func printError(_ message: String) {
        msictl.printError(message, command: "probe")
    }

    /// Writes every byte to a file descriptor (retrying short writes and EINTR).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
