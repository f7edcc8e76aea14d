// `msictl inspect --mock`: the device's IMS (Interrupt Message Store) printed the way the MSI-X
// table is — one row per slot with the decoded destination, the Linux irq and its per-CPU
// counts, slots in their reset state summarized unless --all.
import InterruptTables
import MSIShimCore
import MockHarness

extension InspectReport {
    /// The IMS section of the text report (empty without an IMS view).
    func imsText(all: Bool) -> [String] {
        guard let v = ims else { return [] }
        var out: [String] = []
        let domain = v.domain.map { "domain \($0)" } ?? "no IMS domain"
        switch v.storage {
        case .device:
            out.append("  IMS   \(domain), device storage, " + (v.hwsize.map { "hwsize \($0), " } ?? "") + "\(v.slots.count) slots")
        case .software:
            out.append("  IMS   \(domain), software storage (host memory), " + (v.hwsize.map { "hwsize \($0), " } ?? "")
                + "\(v.slots.count) storage slot\(v.slots.count == 1 ? "" : "s")")
        }
        out.append("  idx  address            data      ctrl      masked pending  pasid   cookie              destination                       irq   counts")
        var hidden = 0
        for s in v.slots {
            if !all && s.isReset { hidden += 1; continue }
            let entry = MSIXEntry(addressLo: s.slot.addressLo, addressHi: s.slot.addressHi, data: s.slot.data, vectorControl: s.slot.control)
            out.append("  " + ProbeText.pad(s.index.map(String.init) ?? "-", 4) + " " + hex(entry.address, width: 16)
                + "   " + hex(Int(s.slot.data), width: 8) + "  " + hex(Int(s.slot.control), width: 8)
                + "  " + ProbeText.pad(s.slot.masked ? "yes" : "no", 6) + " " + ProbeText.pad(s.pending ? "yes" : "no", 7)
                + "  " + ProbeText.pad(s.slot.pasid.map { "0x" + hex($0, width: 1) } ?? "-", 7)
                + " " + ProbeText.pad(s.cookie.map { "0x" + hex($0, width: 1) } ?? "-", 19)
                + " " + ProbeText.pad(Self.decodeText(entry), 32)
                + "  " + ProbeText.pad(s.virq.map(String.init) ?? "-", 5) + " " + s.perCPU.map(String.init).joined(separator: " "))
        }
        if hidden > 0 {
            out.append("  (\(hidden) slots in their reset state: address 0, data 0, masked, not pending; --all shows them)")
        }
        let pending = v.slots.filter(\.pending).compactMap { $0.index.map(String.init) }
        out.append("  IMS pending: " + (pending.isEmpty ? "nothing" : pending.joined(separator: " ")))
        return out
    }
}
