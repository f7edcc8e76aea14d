// The capability walker over raw config bytes (what a dump, a VM or a broken device can put
// there), compared with an independent walk written from the rules lspci follows, and the
// MSI/MSI-X decoders on whatever the walk finds.
import MSIShimCore

enum CapabilityTarget {
    static func check(_ input: [UInt8]) -> String? {
        let config = ConfigSnapshot(name: "fuzz", bytes: Array(input.prefix(PCIReg.extendedSize)))
        let list: CapabilityList
        do {
            list = try config.capabilityList()
        } catch {
            // Only a header that cannot be read may throw.
            return config.bytes.count >= PCIReg.standardHeaderSize ? "walk threw on a full header: \(error)" : nil
        }
        let expected = referenceWalk(config.bytes)
        guard list.capabilities == expected.capabilities else {
            return "walk found \(list.capabilities.map { "\($0.id)@\(hex($0.offset, width: 3))" }), "
                + "reference \(expected.capabilities.map { "\($0.id)@\(hex($0.offset, width: 3))" })"
        }
        guard list.standardStatus == expected.standardStatus, list.extendedStatus == expected.extendedStatus else {
            return "statuses \(list.standardStatus)/\(list.extendedStatus), reference \(expected.standardStatus)/\(expected.extendedStatus)"
        }
        for cap in list.capabilities where !cap.extended {
            switch UInt8(cap.id) {
            case PCICapabilityID.msi:
                guard let msi = try? MSICapability(config: config, at: cap.offset) else { continue }  // runs past the bytes
                // MMC/MME 6 and 7 are reserved but decoded as lspci prints them (1 << field).
                guard (1...128).contains(msi.countCapable), msi.countCapable.nonzeroBitCount == 1,
                      (1...128).contains(msi.countEnabled), (msi.mask == nil) == !msi.maskable,
                      msi.is64Bit || msi.address >> 32 == 0
                else { return "MSI at \(hex(cap.offset, width: 2)) decodes inconsistently: \(msi)" }
            case PCICapabilityID.msix:
                guard let msix = try? MSIXCapability(config: config, at: cap.offset) else { continue }
                guard (1...2048).contains(msix.tableSize), (0...7).contains(msix.tableBIR), (0...7).contains(msix.pbaBIR),
                      msix.tableOffset & 7 == 0, msix.pbaLength * 64 >= msix.tableSize * 8
                else { return "MSI-X at \(hex(cap.offset, width: 2)) decodes inconsistently: \(msix)" }
            default: continue
            }
        }
        return nil
    }

    /// What the reference walk found.
    struct Walk {
        var capabilities: [PCICapability]
        var standardStatus: CapabilityChainStatus
        var extendedStatus: CapabilityChainStatus
    }

    /// The walk lspci does, written from its rules rather than from `capabilityList()`:
    /// standard list from the pointer at 0x34 (0x14 for CardBus), low two bits ignored;
    /// stop at 0; past the readable bytes → access denied; into the header (< 0x40) or an ID
    /// of 0xFF → broken; an offset seen before → looped. Extended list at 0x100 only for a
    /// PCIe or PCI-X function with 4096 bytes: a zero header ends it, all-ones is broken, a
    /// next offset below 0x100 is broken, a repeat is looped.
    static func referenceWalk(_ b: [UInt8]) -> Walk {
        var caps: [PCICapability] = []
        var standard = CapabilityChainStatus.complete
        var extended = CapabilityChainStatus.complete
        var pcieOrPCIX = false
        let status = UInt16(b[6]) | UInt16(b[7]) << 8
        if status & 0x10 != 0 {
            var seen = Set<Int>()
            var at = Int(b[(b[0x0E] & 0x7F) == 2 ? 0x14 : 0x34]) & 0xFC
            while at != 0 {
                if at + 4 > b.count { standard = .accessDenied(at: at); break }
                if at < 0x40 { standard = .broken(at: at); break }
                if seen.contains(at) { standard = .looped(at: at); break }
                seen.insert(at)
                if b[at] == 0xFF { standard = .broken(at: at); break }
                caps.append(PCICapability(id: UInt16(b[at]), offset: at, extended: false))
                if b[at] == 0x10 || b[at] == 0x07 { pcieOrPCIX = true }
                at = Int(b[at + 1]) & 0xFC
            }
        }
        if pcieOrPCIX && b.count >= 4096 {
            var seen = Set<Int>()
            var at = 0x100
            while true {
                if seen.contains(at) { extended = .looped(at: at); break }
                seen.insert(at)
                let header = UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
                if header == 0 { break }
                if header == 0xFFFF_FFFF { extended = .broken(at: at); break }
                caps.append(PCICapability(id: UInt16(header & 0xFFFF), offset: at, extended: true, version: UInt8(header >> 16 & 0xF)))
                at = Int(header >> 20) & 0xFFC
                if at == 0 { break }
                if at < 0x100 { extended = .broken(at: at); break }
            }
        }
        return Walk(capabilities: caps, standardStatus: standard, extendedStatus: extended)
    }
}
