import MSIShimCore
import PCIAccess

/// `msictl probe` without --json: one aligned block per device, interrupt-focused, with
/// lspci -vv's notation for the MSI and MSI-X fields so the two read side by side.
enum ProbeText {
    static let labelWidth = 14
    static let wrapColumn = 100

    static func render(_ report: ProbeReport) -> [UInt8] {
        var out = ""
        out.reserveCapacity(1024 * report.devices.count)
        for (i, device) in report.devices.enumerated() {
            if i > 0 { out += "\n" }
            block(device, report: report, into: &out)
        }
        return Array(out.utf8)
    }

    static func block(_ d: PCIDeviceInfo, report: ProbeReport, into out: inout String) {
        out += d.address.description + " " + title(d) + "\n"
        func line(_ label: String, _ value: String) {
            out += "    " + pad(label, labelWidth) + value + "\n"
        }
        func more(_ value: String) {
            out += "    " + String(repeating: " ", count: labelWidth) + value + "\n"
        }

        line("IDs", "\(hex(d.vendorID, width: 4)):\(hex(d.deviceID, width: 4))  class \(hex(d.classCode, width: 4))"
            + "  prog-if \(hex(d.programmingInterface, width: 2))  rev \(hex(d.revision, width: 2))"
            + "  header \(d.headerType)  config \(d.configSize) bytes")
        if report.isLive {
            line("Driver", d.driver ?? "none")
            line("IOMMU group", d.iommuGroup.map(String.init) ?? "none")
        }
        for problem in d.problems { line("Problem", problem.description) }
        if d.problems.contains(where: { $0.isError }) { return }

        for bar in d.bars { line("BAR \(bar.index)", barText(bar)) }

        var caps = d.capabilities.map { "[\(hex($0.offset, width: $0.extended ? 3 : 2))] \($0.name)" }
        if let word = d.standardChain.lspciWord {
            caps.append("<\(word)" + (d.standardChain.offset.map { " at [\(hex($0, width: 2))]" } ?? "") + ">")
        }
        if let word = d.extendedChain.lspciWord {
            caps.append("<extended: \(word)" + (d.extendedChain.offset.map { " at [\(hex($0, width: 3))]" } ?? "") + ">")
        }
        let capLines = wrap(caps, width: wrapColumn - 4 - labelWidth)
        line("Capabilities", capLines.first ?? "none")
        for l in capLines.dropFirst() { more(l) }

        if let e = d.express {
            line("PCIe", "[\(hex(e.capOffset, width: 2))] v\(e.version) \(e.type?.description ?? "type \(e.typeCode)")"
                + ", MSI \(hex(e.interruptMessageNumber, width: 2))")
        }

        // Without the capability list (non-root, short dump) "none" would be a guess.
        let unknown: String?
        if case .accessDenied = d.standardChain { unknown = "unknown (capability list not readable)" } else { unknown = nil }

        if let m = d.msi {
            line("MSI", "[\(hex(m.capOffset, width: 2))] Enable\(flag(m.enabled)) Count=\(m.countEnabled)/\(m.countCapable)"
                + " Maskable\(flag(m.maskable)) 64bit\(flag(m.is64Bit))")
            let address = m.is64Bit ? hex(m.address, width: 16) : hex(m.address, width: 8)
            more("Address: \(address)  Data: \(hex(m.data, width: 4))")
            if let mask = m.mask, let pending = m.pending {
                more("Masking: \(hex(mask, width: 8))  Pending: \(hex(pending, width: 8))")
            }
        } else {
            line("MSI", unknown ?? "none")
        }
        if let x = d.msix {
            line("MSI-X", "[\(hex(x.capOffset, width: 2))] Enable\(flag(x.enabled)) Count=\(x.tableSize) Masked\(flag(x.functionMasked))")
            more("Vector table: BAR=\(x.tableBIR) offset=\(hex(x.tableOffset, width: 8))"
                + "  PBA: BAR=\(x.pbaBIR) offset=\(hex(x.pbaOffset, width: 8))")
        } else {
            line("MSI-X", unknown ?? "none")
        }

        if let irqs = d.irqs {
            if irqs.isEmpty {
                line("IRQs", "none allocated")
            } else {
                let table = irqTable(irqs, cpus: report.cpus ?? [])
                line("IRQs", table.first ?? "")
                for l in table.dropFirst() { more(l) }
            }
        }
    }

    /// lspci's device line: class name, vendor and device names (numbers when unknown).
    static func title(_ d: PCIDeviceInfo) -> String {
        let cls = d.className ?? "Class \(hex(d.classCode, width: 4))"
        var who: String
        switch (d.vendorName, d.deviceName) {
        case let (v?, dev?): who = v + " " + dev
        case let (v?, nil): who = v + " Device \(hex(d.deviceID, width: 4))"
        default: who = "Device \(hex(d.vendorID, width: 4)):\(hex(d.deviceID, width: 4))"
        }
        if d.revision != 0 { who += " (rev \(hex(d.revision, width: 2)))" }
        return cls + ": " + who
    }

    static func barText(_ bar: ProbedBAR) -> String {
        var s: String
        if bar.isIO {
            s = "I/O ports at " + (bar.base != 0 ? hex(bar.base, width: 1) : "<unassigned>")
        } else {
            s = "Memory at " + (bar.isInvalid64BitSlot ? "<broken-64-bit-slot>" : bar.base != 0 ? hex(bar.base, width: 8) : "<unassigned>")
            s += " (\(bar.is64Bit ? "64-bit" : "32-bit"), \(bar.prefetchable ? "" : "non-")prefetchable)"
        }
        if bar.isVirtual { s = "[virtual] " + s }
        if bar.isDisabled { s += " [disabled]" }
        if let size = bar.size, size > 0 { s += " [size=\(sizeText(size))]" }
        return s
    }

    /// lspci's size notation: 512K, 16M, 4G.
    static func sizeText(_ size: UInt64) -> String {
        var x = size
        for suffix in ["", "K", "M", "G", "T"] {
            if x < 1024 || suffix == "T" { return "\(x)\(suffix)" }
            x /= 1024
        }
        return "\(x)T"
    }

    /// IRQ rows: number, vector, per-CPU counts, total, the CPU(s) the kernel targets
    /// (effective affinity; "-" where unreadable), the driver's name for it.
    static func irqTable(_ irqs: [DeviceIRQ], cpus: [Int]) -> [String] {
        var rows: [[String]] = [["IRQ", "Vector"] + cpus.map { "CPU\($0)" } + ["Total", "On", "Name"]]
        for irq in irqs {
            var row = ["\(irq.irq)", irq.kind == .msix ? "MSI-X \(irq.index.map(String.init) ?? "?")" : "MSI \(irq.index.map(String.init) ?? "?")"]
            if let counts = irq.counts {
                row += counts.map { "\($0)" } + ["\(counts.reduce(0, &+))"]
            } else {
                row += cpus.map { _ in "-" } + ["-"]
            }
            row.append(irq.placement.effectiveAffinity.map { "CPU" + $0.text } ?? "-")
            row.append(irq.actions ?? (irq.counts == nil ? "(not requested)" : ""))
            rows.append(row)
        }
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : (i == 1 ? pad(cell, widths[i]) : padLeft(cell, widths[i]))
            }.joined(separator: "  ")
        }
    }

    static func wrap(_ items: [String], width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for item in items {
            if !current.isEmpty && current.count + 2 + item.count > width {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? item : "  " + item
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    static func flag(_ on: Bool) -> String { on ? "+" : "-" }
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    static func padLeft(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
}
