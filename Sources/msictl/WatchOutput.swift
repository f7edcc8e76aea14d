import MSIShimCore

#if canImport(Glibc)
import Glibc
#endif

/// How `msictl watch` prints a ``WatchView``: redrawn in place on a terminal, repeated
/// blocks elsewhere, or JSON Lines.
struct WatchOutput {
    enum Mode { case screen, blocks, jsonLines }

    let mode: Mode
    let interval: Double
    private var shown = 0

    init(mode: Mode, interval: Double) {
        self.mode = mode
        self.interval = interval
    }

    // Alternate screen + hidden cursor while watching; both undone by end().
    private static let enterScreen = "\u{1B}[?1049h\u{1B}[?25l"
    private static let leaveScreen = "\u{1B}[?25h\u{1B}[?1049l"
    private static let home = "\u{1B}[H"
    private static let clearToEnd = "\u{1B}[J"
    private static let clearLine = "\u{1B}[K"

    func begin() {
        if mode == .screen { _ = Self.write(Self.enterScreen + Self.home + Self.clearToEnd) }
    }

    func end() {
        if mode == .screen { _ = Self.write(Self.leaveScreen) }
    }

    /// Prints one interval; false when stdout is gone.
    mutating func show(_ view: WatchView) -> Bool {
        defer { shown += 1 }
        switch mode {
        case .jsonLines:
            return Self.write(Self.json(view) + "\n")
        case .blocks:
            return Self.write((shown > 0 ? "\n" : "") + Self.text(view, interval: interval).joined(separator: "\n") + "\n")
        case .screen:
            var size = winsize()
            let rows = ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 0 ? Int(size.ws_row) : 24
            let columns = size.ws_col > 0 ? Int(size.ws_col) : 80
            var lines = Self.text(view, interval: interval)
            if lines.count > rows - 1 {
                let hidden = lines.count - (rows - 2)
                lines = Array(lines.prefix(rows - 2)) + ["(\(hidden) more lines; a larger window or SLOT arguments show them)"]
            }
            let body = lines.map { String($0.prefix(columns)) + Self.clearLine }.joined(separator: "\n")
            return Self.write(Self.home + body + "\n" + Self.clearToEnd)
        }
    }

    // MARK: Text

    /// The block for one interval: a title, then per device a line and its vectors.
    static func text(_ view: WatchView, interval: Double) -> [String] {
        let cpus = view.frame.cpus
        var lines = ["msictl watch: every \(seconds(interval)) s, \(cpus.count) CPUs, \(isoTime(view.timestamp))"]
        if view.devices.isEmpty {
            lines.append("no MSI/MSI-X vectors on the selected devices")
            return lines
        }
        var rows: [[String]] = [["", "irq", "/s"] + cpus.map { "CPU\($0)" } + ["total", "on", "name"]]
        var deviceRows: Set<Int> = []
        for device in view.devices {
            deviceRows.insert(rows.count)
            rows.append([
                device.address.description + " " + (device.driver ?? "(no driver)"), "", rate(device.rate),
            ])
            for (v, effective) in device.vectors {
                let name = v.source.map { ($0.kind == .msi ? "MSI " : $0.kind == .msix ? "MSI-X " : "vector ") + "\($0.index)" } ?? "?"
                let state: String
                switch v.change {
                case .steady: state = ""
                case .appeared: state = " (new)"
                case .disappeared: state = " (gone)"
                case .restarted: state = " (restarted)"
                }
                var row = ["  " + name, "\(v.key.irq)", v.rate.map(rate) ?? (v.change == .appeared ? "new" : "gone")]
                row += (v.perCPU ?? cpus.map { _ in -1 }).map { $0 < 0 ? "-" : rate($0) }
                row += ["\(v.total)", effective.map { "CPU" + $0.text } ?? "-", v.actions + state]
                rows.append(row)
            }
        }
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for (i, row) in rows.enumerated() where !deviceRows.contains(i) {
            for (j, cell) in row.enumerated() { widths[j] = max(widths[j], cell.count) }
        }
        for (i, row) in rows.enumerated() {
            if deviceRows.contains(i) {
                lines.append(row[0] + "  " + row[2] + "/s")  // address, driver, summed rate
                continue
            }
            lines.append(row.enumerated().map { j, cell in
                j == row.count - 1 ? cell : j == 0 ? ProbeText.pad(cell, widths[j]) : ProbeText.padLeft(cell, widths[j])
            }.joined(separator: "  "))
        }
        return lines
    }

    /// Rates: one decimal below 100 per second, whole numbers above.
    static func rate(_ value: Double) -> String {
        guard value.isFinite, value >= 0 else { return "-" }
        if value >= 100 { return String(UInt64(value.rounded())) }
        let tenths = UInt64((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// An interval to the hundredth, without trailing zeros (`1`, `0.5`, `0.05`).
    static func seconds(_ value: Double) -> String {
        let hundredths = UInt64((value * 100).rounded())
        let fraction = hundredths % 100
        if fraction == 0 { return "\(hundredths / 100)" }
        return "\(hundredths / 100)." + (fraction % 10 == 0 ? "\(fraction / 10)" : fraction < 10 ? "0\(fraction)" : "\(fraction)")
    }

    /// `2026-11-30T18:31:55.123Z`.
    static func isoTime(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let ms = Int((seconds - seconds.rounded(.down)) * 1000)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)Z"
    }

    // MARK: JSON

    /// One JSON Lines record: timestamp, interval, CPUs, devices → vectors with rates.
    static func json(_ view: WatchView) -> String {
        var w = JSONWriter(capacity: 512 + 256 * view.devices.count)
        w.beginObject()
        w.key("timestamp"); w.string(isoTime(view.timestamp))
        w.key("interval"); w.number(view.frame.interval, decimals: 6)
        w.key("cpus"); w.beginArray(); for c in view.frame.cpus { w.number(c) }; w.endArray()
        w.key("devices")
        w.beginArray()
        for d in view.devices {
            w.beginObject()
            w.key("slot"); w.string(d.address.description)
            w.key("driver"); w.string(d.driver)
            w.key("rate"); w.number(d.rate)
            w.key("vectors")
            w.beginArray()
            for (v, effective) in d.vectors {
                w.beginObject()
                w.key("irq"); w.number(v.key.irq)
                w.key("kind"); w.string(v.source?.kind?.rawValue)
                w.key("index"); w.number(v.source?.index)
                w.key("actions"); w.string(v.actions)
                w.key("state"); w.string(v.change.rawValue)
                w.key("rate")
                if let r = v.rate { w.number(r) } else { w.null() }
                w.key("perCPU")
                if let per = v.perCPU {
                    w.beginArray(); for r in per { w.number(r) }; w.endArray()
                } else {
                    w.null()
                }
                w.key("delta"); w.number(v.delta)
                w.key("total"); w.number(v.total)
                w.key("effectiveAffinity"); w.string(effective?.text)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return String(decoding: w.takeBytes(), as: UTF8.self)
    }

    // MARK: Writing

    /// Writes all of `text` to stdout; false on an error (EPIPE when the reader went away).
    static func write(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(1, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
