import ArgumentParser
import MSIShimCore
import MockDevice
import MockHarness
import PCIAccess

#if canImport(Glibc)
import Glibc
#endif

struct Mock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a script of kernel MSI API calls against a mock device and the kernel model.",
        discussion: """
            One command per line, LF or CRLF (stdin, or --script FILE); '#' starts a comment. \
            Numbers are decimal or 0x-hex, without sign. Commands are \
            named for the kernel functions they model:
              enable msix|msi|any MIN MAX [affinity]   pci_alloc_irq_vectors -> count
              disable                                  pci_free_irq_vectors
              vector N                                 pci_irq_vector -> virq
              alloc msix INDEX|any                     pci_msix_alloc_irq_at -> {index, virq}
              free msix INDEX                          pci_msix_free_irq
              ims create HWSIZE [software|device]      pci_create_ims_domain
              alloc ims [cookie=HEX]                   pci_ims_alloc_irq -> {index, virq}
              free ims INDEX                           pci_ims_free_irq
              request|release msix|msi|ims INDEX       request_irq / free_irq
              mask|unmask msix|msi|ims INDEX           disable_irq / enable_irq (nested; masks at once)
              fire msix|msi|ims INDEX                  the device raises the interrupt
              function-mask on|off                     MSI-X Function Mask
              affinity msix|msi|ims INDEX CPU          irq_set_affinity (smp_affinity_list) -> {virq, cpu, vector}
              cpu N online|offline                     CPU hotplug of the platform
              ntb setup [align=HEX] [max=HEX]          ntb_msi_setup_mws -> {base, end, translated}
              ntb request                              ntbm_msi_request_threaded_irq -> {index, virq, offset, data}
              ntb trigger INDEX [offset=HEX] [data=HEX]  the NTB peer writes what was published for INDEX
              ntb free INDEX                           ntbm_msi_free_irq
              show                                     descriptors, MSI-X entries, PBA, IMS slots
              counters                                 MMIO/config accesses since the last 'counters'
              queue create kernel|vfio|cdev [pasid=HEX]  a work queue: IMS slot (cookie = PASID) or
                                                       dynamic MSI-X -> {queue, consumer, pasid,
                                                       interrupt, index, virq}
              queue free|mask|unmask CONSUMER Q        free_irq + free / disable_irq / enable_irq
              queue fire Q                             the device completes work on queue Q
              queue list                               control block (MSI-X 0) and every queue
            The default device is a built-in PCIe endpoint (MSI 32 vectors 64-bit maskable, MSI-X \
            2048 entries in BAR0, 4096 IMS slots in BAR2) on an x86 platform without interrupt \
            remapping. Exit status: 0 when every command succeeded, 1 when any failed, 2 for \
            unusable input.
            """)

    @Option(name: .long, help: "Read the script from FILE instead of stdin.")
    var script: String?

    @Flag(name: .long, help: "One JSON object per command: {\"cmd\",\"line\",\"ok\",\"result\"|\"errno\",\"message\"}.")
    var json = false

    @Option(name: .long, help: "Build the device from an lspci -x/-xxx/-xxxx dump (with --slot).")
    var dump: String?

    @Option(name: .long, help: "The device of the dump to emulate, e.g. 00:02.0.")
    var slot: String?

    @Flag(name: .long, help: "Keep the dumped MSI/MSI-X enable and mask state instead of a reset device.")
    var noReset = false

    // `.unconditional` so that `--cpus -1` reaches the range check (and its message) instead
    // of ArgumentParser's "Missing value" for a value that looks like an option.
    @Option(
        name: .long, parsing: .unconditional, help: "Number of CPUs of the x86 platform, \(Self.cpuRange.lowerBound)…\(Self.cpuRange.upperBound).",
        transform: Mock.parseCPUs)
    var cpus = 2

    /// The CPU counts the platform model accepts (`MSIPlatformConfiguration` allows up to 256).
    static let cpuRange = 1...256

    /// `--cpus` as a decimal count inside ``cpuRange``; the error names the range.
    static func parseCPUs(_ text: String) throws -> Int {
        guard let n = parseScriptNumber(text), !text.hasPrefix("0x"), !text.hasPrefix("0X"), cpuRange.contains(n) else {
            throw ValidationError("must be a whole number \(cpuRange.lowerBound)…\(cpuRange.upperBound)")
        }
        return n
    }

    @Flag(name: .long, help: "Use an interrupt-remapping parent (multi-MSI, remappable message format).")
    var remap = false

    func validate() throws {
        guard Self.cpuRange.contains(cpus) else { throw ValidationError("--cpus must be 1…256, got \(cpus)") }
        if dump != nil && slot == nil { throw ValidationError("--dump needs --slot BDF") }
        if slot != nil && dump == nil { throw ValidationError("--slot needs --dump FILE") }
    }

    func run() throws {
        let device: MockPCIDevice
        do {
            device = try makeDevice()
        } catch {
            printError(describe(error))
            throw ExitCode(2)
        }
        let source: String
        do {
            source = try readScript(script)
        } catch {
            printError(error.message)
            throw ExitCode(2)
        }
        let session: MockSession
        do {
            session = try MockSession(device: device, options: MockSessionOptions(cpus: cpus, remap: remap))
        } catch {
            printError(describe(error))
            throw ExitCode(2)
        }
        var failed = false
        for line in parseMockScript(source) {
            let outcome = session.run(line)
            if case .failure = outcome { failed = true }
            emit(line, outcome)
        }
        if failed { throw ExitCode(1) }
    }

    func makeDevice() throws -> MockPCIDevice {
        guard let dump, let slot else { return try MockPCIDevice.builtIn() }
        let wanted = try PCIAddress(parsing: slot)
        let records = try LSPCIDump.read(path: dump, collectBytes: true)
        guard let record = records.first(where: { $0.address == wanted }) else {
            let have = records.map(\.address.description).joined(separator: ", ")
            throw ValidationError("\(echoed(dump, limit: 256)) has no device \(wanted) (it has: \(have))")
        }
        return try MockPCIDevice.fromConfig(record.bytes, address: wanted, reset: !noReset)
    }

    func emit(_ line: MockScriptLine, _ outcome: Result<JSONValue, MockCommandError>) {
        if json {
            print(mockJSONLine(line, outcome).jsonText)
        } else {
            print("> \(escapingControlCharacters(line.text))")
            switch outcome {
            case .success(let v): print("  " + v.transcript)
            case .failure(let e):
                // Parse errors already name their line; errors while running name it too.
                let place = e.message.hasPrefix("line ") ? "" : "line \(line.number): "
                print("  error \(e.errno?.name ?? "-"): " + place + e.message)
            }
        }
    }
}


/// The text of a mock script: `path`, or stdin when nil. A file that cannot be opened or
/// read (a directory, EIO) is an error naming the file and the reason, never an empty script.
func readScript(_ path: String?) throws(ValidationError) -> String {
    do {
        return try readTextFile(path ?? "/dev/stdin")
    } catch {
        // The errno comes with the error (reading the global errno here could see a later
        // call's value), described the way every other message of the package describes one.
        throw ValidationError("cannot read script \(path.map { echoed($0, limit: 256) } ?? "from stdin"): "
            + KernelErrno.describeWithReason(error.code))
    }
}

/// An error as one line: the errno name first when there is one.
func describe(_ error: any Error) -> String {
    if let e = error as? ValidationError { return e.message }
    return "\(error)"
}

extension JSONValue {
    /// A compact human form: `key=value` pairs, nested objects in braces, lists in brackets,
    /// numbers that look like addresses in hex.
    var transcript: String {
        switch self {
        case .null: "-"
        case .bool(let b): b ? "yes" : "no"
        case .int(let i): i > 0xFFFF ? "0x" + String(i, radix: 16) : String(i)
        case .uint(let u): u > 0xFFFF ? "0x" + String(u, radix: 16) : String(u)
        case .string(let s): s
        case .array(let items): "[" + items.map(\.transcript).joined(separator: ", ") + "]"
        case .object(let pairs):
            pairs.map { key, value in
                // A PASID reads as the hex the script wrote it in.
                if key == "pasid", case .int(let p) = value { return "pasid=0x" + String(p, radix: 16) }
                return "\(key)=\(value.nestedTranscript)"
            }.joined(separator: " ")
        }
    }

    private var nestedTranscript: String {
        if case .object = self { return "{" + transcript + "}" }
        return transcript
    }
}
