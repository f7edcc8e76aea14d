import Foundation
import MSIShimCore
import Testing

@testable import DeviceIO
@testable import PCIAccess

/// `msictl inspect` on a fake tree whose BAR is a plain file holding an MSI-X table: each
/// entry's irq is joined with /proc/irq/N, and an entry whose APIC destination is not the
/// irq's effective CPU is marked.
@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: msictlPath), "msictl is not built (scripts/test builds it)"))
func msictlInspectMarksEntriesPlacedElsewhere() throws {
    let tree = FakeTree()
    let address = try PCIAddress(parsing: "0000:00:03.0")
    var config = ConfigBuilder()
    config.bar(0, 0xfe00_0000)
    config.msix(at: 0x40, entries: 3, tableBIR: 0, tableOffset: 0, pbaBIR: 0, pbaOffset: 0x800)
    config.put16(0x40 + PCIReg.MSIX.flags, 0x8002)  // enabled, 3 entries
    var bar = [UInt8](repeating: 0, count: 0x1000)
    // Entry 0: APIC 0 vector 0x22; entry 1: APIC 1 vector 0x23; entry 2: reset state (masked).
    for (i, (apic, vector)) in [(0, 0x22), (1, 0x23)].enumerated() {
        bar.put32(0xFEE0_0000 | UInt32(apic) << 12, at: 16 * i)
        bar.put32(UInt32(vector), at: 16 * i + 8)
    }
    bar.put32(1, at: 16 * 2 + 12)
    tree.add(FakeFunction(
        address: address, driver: "virtio-pci", config: config.bytes,
        resource: resourceText([0: (0xfe00_0000, 0x1000, memFlags)]), msiIRQs: [40, 41], resourceFiles: [0: bar]))
    tree.setInterrupts("""
                   CPU0       CPU1
         40:          5          0 PCI-MSIX-0000:00:03.0   0-edge      virtio2-config
         41:          0          7 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0

        """)
    writeText(tree.proc + "/cpuinfo", "processor\t: 0\napicid\t\t: 0\n\nprocessor\t: 1\napicid\t\t: 1\n")
    // irq 40 agrees (APIC 0 = CPU0); irq 41 was moved to CPU0 but its entry still names APIC 1.
    for (irq, effective) in [(40, "0"), (41, "0")] {
        writeText(tree.proc + "/irq/\(irq)/smp_affinity_list", "0-1\n")
        writeText(tree.proc + "/irq/\(irq)/effective_affinity_list", effective + "\n")
        writeText(tree.proc + "/irq/\(irq)/node", "-1\n")
    }
    let env = ["MSICTL_SYSFS_ROOT": tree.sysfs, "MSICTL_PROC_ROOT": tree.proc]

    let text = try runMsictl(["inspect", "00:03.0"], environment: env)
    #expect(text.status == 0, "\(text.output)")
    let lines = text.output.split(separator: "\n")
    let e0 = try #require(lines.first { $0.hasPrefix("  0 ") })
    let e1 = try #require(lines.first { $0.hasPrefix("  1 ") })
    #expect(e0.hasSuffix("on CPU0"), "\(e0)")
    #expect(e1.hasSuffix("on CPU0 !! table targets CPU1 (APIC 1)"), "\(e1)")

    let json = try runMsictl(["inspect", "00:03.0", "--json"], environment: env)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
    let entries = try #require((object["msix"] as? [String: Any])?["entries"] as? [[String: Any]])
    #expect(entries[0]["effectiveAffinity"] as? String == "0" && entries[0]["placementDiffers"] as? Bool == false)
    #expect(entries[1]["smpAffinity"] as? String == "0-1" && entries[1]["placementDiffers"] as? Bool == true)
    #expect(entries[1]["node"] as? Int == -1)
    #expect(entries[2]["effectiveAffinity"] is NSNull && entries[2]["placementDiffers"] is NSNull)

    // Without /proc/irq (an older kernel, a non-root reader): nulls, no mark, no error.
    removeTree(tree.proc + "/irq")
    let bare = try runMsictl(["inspect", "00:03.0"], environment: env)
    #expect(bare.status == 0 && !bare.output.contains("on CPU") && !bare.output.contains("!!"), "\(bare.output)")
}
