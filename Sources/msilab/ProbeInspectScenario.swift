// Scenario probe-inspect: msictl's JSON output checked against the guest kernel's own view,
// read here independently (plain sysfs links and directories, and a minimal parse of
// /proc/interrupts snapshots taken just before and just after msictl ran), and msictl inspect's
// table checked against a direct read of the BAR.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIShimCore
import PCIAccess

/// /proc/interrupts reduced to what the checks need: per-IRQ per-CPU counts and the hwirq.
struct IRQSnapshot {
    var counts: [Int: [UInt64]] = [:]
    var hwirq: [Int: UInt64] = [:]
    var cpuCount = 0

    init(path: String) {
        guard let text = readText(path) else { return }
        var lines = text.split(separator: "\n")[...]
        guard let header = lines.popFirst() else { return }
        cpuCount = header.split(separator: " ").filter { $0.hasPrefix("CPU") }.count
        for line in lines {
            let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = tokens.first, first.hasSuffix(":"), let irq = Int(first.dropLast()) else { continue }
            let nums = tokens.dropFirst().prefix(cpuCount).compactMap { UInt64($0) }
            guard nums.count == cpuCount else { continue }
            counts[irq] = nums
            // "<hwirq>-edge" follows the chip name.
            if let t = tokens.dropFirst(1 + cpuCount).first(where: { $0.contains("-") && $0.first?.isNumber == true }),
               let h = UInt64(t.prefix { $0.isNumber }) {
                hwirq[irq] = h
            }
        }
    }
}

struct ProbeInspectScenario {
    let report: Report
    let root = "/sys/bus/pci/devices"

    func driver(_ slot: String) -> String? {
        readLinkBasename("\(root)/\(slot)/driver")
    }

    func iommuGroup(_ slot: String) -> Int? {
        readLinkBasename("\(root)/\(slot)/iommu_group").flatMap { Int($0) }
    }

    func msiIRQs(_ slot: String) -> [Int: String] {
        var out: [Int: String] = [:]
        for name in listDir("\(root)/\(slot)/msi_irqs") {
            guard let irq = Int(name) else { continue }
            out[irq] = readText("\(root)/\(slot)/msi_irqs/\(name)")?.trimmingWhitespace() ?? "?"
        }
        return out
    }

    /// Each count lies between the snapshots (interrupts may arrive while msictl runs).
    func countsWithin(_ counts: [JSONValue]?, irq: Int, _ before: IRQSnapshot, _ after: IRQSnapshot) -> String? {
        guard let lo = before.counts[irq], let hi = after.counts[irq] else {
            return counts == nil || counts == [] ? nil : "irq \(irq) has no /proc/interrupts row but msictl shows counts"
        }
        guard let c = counts?.compactMap(\.intValue), c.count == lo.count else {
            return "irq \(irq): counts \(counts.map { "\($0)" } ?? "null"), /proc/interrupts \(lo)"
        }
        for k in c.indices where !(lo[k]...hi[k]).contains(UInt64(c[k])) {
            return "irq \(irq) CPU\(k): msictl \(c[k]), /proc/interrupts \(lo[k])…\(hi[k])"
        }
        return nil
    }

    // MARK: - probe --json

    func probeAgrees(json path: String, before: String, after: String) {
        guard let text = readText(path), let parsed = report.attempt("probe-json-parses", { try JSONReader.parse(text) }),
              let devices = parsed.arrayValue
        else {
            report.fail("probe-json-parses", "cannot read or parse \(path)")
            return
        }
        let b = IRQSnapshot(path: before), a = IRQSnapshot(path: after)
        let slots = listDir(root)
        let listed = devices.compactMap { $0["slot"]?.stringValue }
        report.check(
            listed.sorted() == slots, "probe-json-lists-every-device", "\(listed.count) devices; sysfs has \(slots.count)")
        for d in devices {
            guard let slot = d["slot"]?.stringValue else { continue }
            var problems: [String] = []
            let drv = driver(slot)
            if d["driver"]?.stringValue != drv { problems.append("driver \(d["driver"].map { "\($0.jsonText)" } ?? "?") vs sysfs \(drv ?? "none")") }
            let group = iommuGroup(slot)
            if d["iommuGroup"]?.intValue != group {
                problems.append("iommuGroup \(d["iommuGroup"]?.jsonText ?? "?") vs sysfs \(group.map(String.init) ?? "none")")
            }
            let kernel = msiIRQs(slot)
            let irqs = d["irqs"]?.arrayValue ?? []
            let shown = Dictionary(irqs.compactMap { i in i["irq"]?.intValue.map { ($0, i) } }, uniquingKeysWith: { x, _ in x })
            if Set(shown.keys) != Set(kernel.keys) {
                problems.append("irqs \(shown.keys.sorted()) vs msi_irqs \(kernel.keys.sorted())")
            }
            for (irq, kind) in kernel {
                guard let row = shown[irq] else { continue }
                if row["kind"]?.stringValue != kind { problems.append("irq \(irq) kind \(row["kind"]?.jsonText ?? "?") vs \(kind)") }
                if let p = countsWithin(row["counts"]?.arrayValue, irq: irq, b, a) { problems.append(p) }
                if let h = a.hwirq[irq], let index = row["index"]?.intValue, Int(h & 0x7FF) != index {
                    problems.append("irq \(irq) index \(index) vs hwirq \(h) (index \(h & 0x7FF))")
                }
            }
            report.check(
                problems.isEmpty, "probe-agrees-\(slot)",
                problems.isEmpty
                    ? "driver \(drv ?? "none"), group \(group.map(String.init) ?? "none"), \(kernel.count) MSI/MSI-X irqs"
                        + (kernel.isEmpty ? "" : " with counts in range")
                    : problems.joined(separator: "; "))
        }
    }

    // MARK: - inspect --json

    func inspectAgrees(json path: String, address: PCIAddress, before: String, after: String) {
        guard let text = readText(path), let r = report.attempt("inspect-json-parses", { try JSONReader.parse(text) }) else {
            report.fail("inspect-json-parses", "cannot read or parse \(path)")
            return
        }
        let slot = address.description
        let b = IRQSnapshot(path: before), a = IRQSnapshot(path: after)
        let drv = driver(slot)
        report.check(
            r["driver"]?.stringValue == drv && drv != nil && r["source"]?.stringValue == "live", "inspect-kernel-owned",
            "driver \(r["driver"]?.jsonText ?? "?") (sysfs \(drv ?? "none")), source \(r["source"]?.jsonText ?? "?")")
        guard let msix = r["msix"], let entries = msix["entries"]?.arrayValue, msix["tableReadable"] == .bool(true) else {
            report.fail("inspect-table-read", "no table: \(r["msix"]?["tableNote"]?.jsonText ?? "no MSI-X object")")
            return
        }
        report.check(
            msix["enabled"] == .bool(true) && entries.count == msix["tableSize"]?.intValue, "inspect-table-read",
            "\(entries.count) entries, MSI-X enabled by the kernel driver")
        let kernel = msiIRQs(slot)
        let kernelIRQs = Set((r["kernelIRQs"]?.arrayValue ?? []).compactMap(\.intValue))
        report.check(kernelIRQs == Set(kernel.keys), "inspect-kernel-irqs", "kernelIRQs \(kernelIRQs.sorted()) vs msi_irqs \(kernel.keys.sorted())")

        // Entries the kernel uses: joined with their irq and counts, unmasked, remappable.
        var problems: [String] = []
        var joined = 0
        for e in entries {
            guard let irq = e["irq"]?.intValue else { continue }
            joined += 1
            if kernel[irq] != "msix" { problems.append("entry \(e["index"]?.jsonText ?? "?"): irq \(irq) not an msix irq of \(slot)") }
            if let h = a.hwirq[irq], Int(h & 0x7FF) != e["index"]?.intValue { problems.append("entry \(e["index"]?.jsonText ?? "?") vs hwirq \(h)") }
            if e["masked"] != .bool(false) { problems.append("entry \(e["index"]?.jsonText ?? "?") of irq \(irq) masked") }
            if e["decoded"]?["format"]?.stringValue != "remappable" {
                problems.append("entry \(e["index"]?.jsonText ?? "?") format \(e["decoded"]?["format"]?.jsonText ?? "?")")
            }
            if let p = countsWithin(e["counts"]?.arrayValue, irq: irq, b, a) { problems.append(p) }
        }
        report.check(
            problems.isEmpty && joined == kernel.count && joined > 0, "inspect-entries-joined",
            problems.isEmpty ? "\(joined) entries joined with their kernel irq and counts (unmasked, VT-d remappable format)"
                : problems.joined(separator: "; "))

        // The same table read directly through the BAR (read-only; iomem=relaxed lets root map
        // a BAR a driver holds).
        do {
            let handle = try DeviceHandle.open(address, intent: .readOnly)
            guard let layout = try handle.msixLayout() else { throw DeviceIOError.barUnusable(address, bar: 0, reason: "no MSI-X") }
            let access = try handle.msixTable(layout)
            guard let cap = try handle.config.capabilityList().first(PCICapabilityID.msix) else { return }
            let table = try MSIXTable(config: handle.config, capOffset: cap.offset) { _ in access.region }
            let direct = try table.readEntries()
            var diffs: [String] = []
            for (i, e) in entries.enumerated() where i < direct.count {
                let d = direct[i]
                if e["addressLo"]?.intValue != Int(d.addressLo) || e["addressHi"]?.intValue != Int(d.addressHi)
                    || e["data"]?.intValue != Int(d.data) || e["vectorControl"]?.intValue != Int(d.vectorControl) {
                    diffs.append("entry \(i)")
                }
            }
            report.check(
                diffs.isEmpty && direct.count == entries.count, "inspect-matches-direct-read",
                diffs.isEmpty ? "\(direct.count) entries identical to a direct read of \(access.region.name)"
                    : "differ: " + diffs.joined(separator: ", "))
        } catch {
            report.fail("inspect-matches-direct-read", "\(error)")
        }
    }
}
