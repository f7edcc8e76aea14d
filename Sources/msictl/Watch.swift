import ArgumentParser
import DeviceIO
import MSIShimCore
import PCIAccess

#if canImport(Glibc)
import Glibc
#endif

/// `msictl watch`: live per-vector interrupt rates, grouped by device and MSI/MSI-X entry.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show live interrupt rates per MSI/MSI-X vector, per CPU and in total.",
        discussion: """
            Reads /proc/interrupts every interval and shows, per device and vector (MSI-X entry \
            or MSI vector), interrupts per second on each CPU and in total, the count so far, \
            and the CPU(s) the kernel targets (/proc/irq/N/effective_affinity_list). Devices \
            are sorted by rate, vectors within a device too. On a terminal the screen is \
            redrawn in place (restored on exit and Ctrl-C); otherwise one block per interval; \
            --json prints one JSON object per interval (JSON Lines). Vectors that appear or \
            disappear (driver bound or unbound, device added or removed) are shown as new or \
            gone; 32-bit counters that wrap are counted across the wrap.

            Exit status: 0 after --once or Ctrl-C; 2 usage/input error (a bad or unmatched \
            SLOT, an interval outside 0.05-3600 s, /proc/interrupts unreadable).
            """)

    @Argument(help: ArgumentHelp("Only these devices (lspci -s syntax; several allowed).", valueName: "slot"))
    var slots: [String] = []

    @Option(name: .customShort("d"), help: ArgumentHelp("Only devices with these IDs (lspci -d syntax).", valueName: "[vendor]:[device][:class[:progif]]"))
    var ids: String?

    @Option(name: .long, help: ArgumentHelp("Seconds between readings (0.05-3600).", valueName: "seconds"))
    var interval: Double = 1

    @Flag(name: .long, help: "Print one interval and exit.")
    var once = false

    @Flag(name: .long, help: "Print one JSON object per interval (JSON Lines).")
    var json = false

    static let intervalRange = 0.05...3600.0

    func validate() throws {
        guard interval.isFinite, Self.intervalRange.contains(interval) else {
            throw ValidationError("--interval \(interval): must be between 0.05 and 3600 seconds")
        }
    }

    func run() throws {
        let environment = DeviceIOEnvironment.msictl
        var selection = WatchSelection(sysfs: environment.sysfs)
        do {
            selection.slots = try slots.map { text throws(PCISelectorError) in try PCISlotFilter(parsing: text) }
            if let ids { selection.ids = try PCIIDFilter(parsing: ids) }
        } catch {
            var named = error
            if named.option == "-s" { named.option = "slot" }  // a SLOT argument, not an option
            throw ValidationError(named.description)
        }
        // A SLOT that names no device is an input error; devices may come and go later.
        let present = environment.sysfs.addresses()
        for (text, filter) in zip(slots, selection.slots) where !present.contains(where: filter.matches) {
            throw ValidationError("no device matches \(text)")
        }
        if let ids, !present.contains(where: { selection.matchesIDs($0) }) {
            throw ValidationError("no device matches -d \(ids)")
        }

        let interruptsPath = environment.procRoot + "/interrupts"
        let irqRoot = environment.procRoot + "/irq"
        guard let first = ProcInterrupts.read(path: interruptsPath) else {
            throw ValidationError("cannot read \(interruptsPath)")
        }
        let mode: WatchOutput.Mode = json ? .jsonLines : (isatty(1) == 1 && !once ? .screen : .blocks)
        var output = WatchOutput(mode: mode, interval: interval)
        let signals = SignalWaiter([SIGINT, SIGTERM, SIGHUP])
        signal(SIGPIPE, SIG_IGN)
        output.begin()
        defer { output.end() }

        var meter = InterruptRateMeter()
        _ = meter.advance(to: first, at: monotonicSeconds())
        while true {
            if signals.wait(seconds: interval) { return }
            // A read that fails (procfs hiccup) skips the interval; the next one compares
            // against the last good snapshot.
            guard let snapshot = ProcInterrupts.read(path: interruptsPath),
                  let frame = meter.advance(to: snapshot, at: monotonicSeconds())
            else { continue }
            let view = WatchView(frame: frame, selection: selection, irqRoot: irqRoot)
            guard output.show(view) else { return }  // stdout closed (e.g. piped into head)
            if once { return }
        }
    }
}

/// Which devices `watch` shows, and what it knows about them (IDs and drivers from sysfs).
struct WatchSelection {
    let sysfs: SysfsPCI
    var slots: [PCISlotFilter] = []
    var ids: PCIIDFilter?

    /// Whether `address` is selected by the SLOT arguments (all when none) and -d.
    func matches(_ address: PCIAddress) -> Bool {
        (slots.isEmpty || slots.contains { $0.matches(address) }) && matchesIDs(address)
    }

    /// -d against sysfs's vendor/device/class files; a device whose files are gone no longer
    /// matches a -d filter (its vectors are gone too).
    func matchesIDs(_ address: PCIAddress) -> Bool {
        guard let ids else { return true }
        func number(_ name: String) -> UInt32? {
            sysfs.attribute(name, of: address).flatMap { UInt32($0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0, radix: 16) }
        }
        guard let vendor = number("vendor"), let device = number("device"), let cls = number("class") else { return false }
        return ids.matches(
            vendor: UInt16(truncatingIfNeeded: vendor), device: UInt16(truncatingIfNeeded: device),
            classCode: UInt16(truncatingIfNeeded: cls >> 8), programmingInterface: UInt8(truncatingIfNeeded: cls))
    }
}

/// One interval as `watch` shows it: the selected devices' vectors with their placement.
struct WatchView {
    struct Device {
        var address: PCIAddress
        var driver: String?
        var rate: Double
        var vectors: [(rate: VectorRate, effective: CPUList?)]
    }

    var frame: RateFrame
    var devices: [Device]
    /// Wall-clock time of the frame (seconds since the epoch).
    var timestamp: Double

    init(frame: RateFrame, selection: WatchSelection, irqRoot: String) {
        self.frame = frame
        timestamp = realtimeSeconds()
        devices = frame.byDevice().filter { selection.matches($0.address) }.map { group in
            Device(
                address: group.address, driver: selection.sysfs.driver(of: group.address),
                rate: group.vectors.reduce(0) { $0 + ($1.rate ?? 0) },
                vectors: group.vectors.map { v in
                    (v, v.change == .disappeared ? nil : IRQPlacement.read(irq: v.key.irq, root: irqRoot).effectiveAffinity)
                })
        }
    }
}

/// Blocks `signals` for the process and waits for them with a timeout (sigtimedwait), so
/// Ctrl-C ends the watch loop between readings and the terminal is always restored.
struct SignalWaiter {
    private var set = sigset_t()

    init(_ signals: [Int32]) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// Waits `seconds`; true if one of the signals arrived.
    func wait(seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        var set = self.set
        while true {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return false }
            var timeout = timespec(tv_sec: Int(left), tv_nsec: Int((left - left.rounded(.down)) * 1e9))
            if sigtimedwait(&set, nil, &timeout) > 0 { return true }
            if errno != EINTR && errno != EAGAIN { return false }
        }
    }
}

func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func realtimeSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
