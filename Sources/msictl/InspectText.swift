// `msictl inspect`'s text output: the capabilities, then one row per table entry (reset
// entries summarized unless --all).
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

extension InspectReport {
    /// The effective CPU(s) of an entry's irq, and a mark when the table targets another.
    static func placementText(_ e: Entry) -> String {
        guard let effective = e.placement?.effectiveAffinity else { return "" }
        var text = "  on CPU" + effective.text
        if case .differs(let cpu, let apic) = e.check {
            text += " !! table targets " + (cpu.map { "CPU\($0)" } ?? "no CPU") + " (APIC \(apic))"
        }
        return text
    }

    static func decodeText(_ e: MSIXEntry) -> String {
        switch X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) {
        case .compatibility(let m):
            return "APIC \(m.destination) \(m.destinationMode == .logical ? "logical" : "physical") vector 0x\(hex(m.vector, width: 2))"
        case .remappable(let r):
            return "remapped IRTE handle \(r.handle)" + (r.subhandleValid ? " + subhandle \(r.subhandle)" : "")
        case .notAnInterrupt:
            return e.address == 0 ? "-" : "not an interrupt address"
        }
    }

    func text(all: Bool) -> String {
        var out: [String] = []
        out.append("\(address) (\(source))" + (driver.map { "  driver \($0)" } ?? ""))
        if let m = msi {
            out.append("  MSI   [\(hex(m.capOffset, width: 2))] \(m.enabled ? "enabled" : "disabled"), \(m.countEnabled)/\(m.countCapable) vectors, "
                + "\(m.is64Bit ? "64-bit" : "32-bit"), \(m.maskable ? "maskable" : "not maskable")")
            out.append("        address \(hex(m.address, width: m.is64Bit ? 16 : 8))  data \(hex(Int(m.data), width: 4))"
                + (m.mask.map { "  mask \(hex($0, width: 8))" } ?? "") + (m.pending.map { "  pending \(hex($0, width: 8))" } ?? ""))
        }
        guard let x = msix else {
            if msi == nil { out.append("  no MSI or MSI-X capability") }
            if let tableNote { out.append("  " + tableNote) }
            return (out + imsText(all: all)).joined(separator: "\n")
        }
        out.append("  MSI-X [\(hex(x.capOffset, width: 2))] \(x.enabled ? "enabled" : "disabled"), function \(x.functionMasked ? "masked" : "unmasked"), "
            + "\(x.tableSize) entries, table BAR\(x.tableBIR)+0x\(hex(Int(x.tableOffset), width: 1)), PBA BAR\(x.pbaBIR)+0x\(hex(Int(x.pbaOffset), width: 1))")
        guard tableRead else {
            out.append("  table: " + (tableNote ?? "not read"))
            if !kernelIRQs.isEmpty { out.append("  kernel irqs: " + kernelIRQs.map(String.init).joined(separator: " ")) }
            for row in kernelRows {
                out.append("    irq \(row.irq)  \(row.chip) \(row.source.map { "index \($0.index)" } ?? "")  counts \(row.counts.map(String.init).joined(separator: " "))"
                    + (kernelPlacements[row.irq]?.effectiveAffinity.map { "  on CPU" + $0.text } ?? ""))
            }
            return out.joined(separator: "\n")
        }
        out.append("  idx  address            data      ctrl  masked pending  destination                       irq   counts")
        var hidden = 0
        for e in entries {
            if !all && e.isReset { hidden += 1; continue }
            let line = "  " + ProbeText.pad(String(e.index), 4) + " " + hex(e.entry.address, width: 16) + "   " + hex(Int(e.entry.data), width: 8)
                + "  " + hex(Int(e.entry.vectorControl), width: 4) + "  " + ProbeText.pad(e.entry.masked ? "yes" : "no", 6)
                + " " + ProbeText.pad(e.pending ? "yes" : "no", 7) + "  " + ProbeText.pad(Self.decodeText(e.entry), 32)
                + "  " + ProbeText.pad(e.irq.map(String.init) ?? "-", 5) + " " + e.counts.map(String.init).joined(separator: " ")
                + Self.placementText(e)
            out.append(line)
        }
        if hidden > 0 { out.append("  (\(hidden) entries in their reset state: address 0, data 0, masked, not pending; --all shows them)") }
        let pending = entries.filter(\.pending).map { String($0.index) }
        out.append("  PBA: " + (pending.isEmpty ? "nothing pending" : "pending " + pending.joined(separator: " ")))
        return (out + imsText(all: all)).joined(separator: "\n")
    }
}
