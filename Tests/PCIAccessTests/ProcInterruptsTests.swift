import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("/proc/interrupts")
struct ProcInterruptsTests {
    static let perDevice = """
                   CPU0       CPU1       
         24:          1          0  IO-APIC   5-edge      ACPI:Ged
         28:          0          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
         31:          0        132 PCI-MSIX-0000:00:01.0   3-edge      virtio0-stats
         36:          0      52118 IR-PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
         40:          7          9 PCI-MSI-0000:00:1f.2   0-edge      ahci[0000:00:1f.2]
        NMI:          0          0   Non-maskable interrupts
        LOC:      32798      36951   Local timer interrupts
        ERR:          0
        MIS:          0
        """

    @Test("per-device MSI domains (Linux 6.2+): PCI-MSIX-<bdf> and PCI-MSI-<bdf>, with and without IR-")
    func perDeviceDomains() throws {
        let p = ProcInterrupts(parsing: Self.perDevice)
        #expect(p.cpus == [0, 1])
        #expect(p.rows.map(\.irq) == [24, 28, 31, 36, 40])
        let a1 = try PCIAddress(parsing: "0000:00:01.0")
        let row = try #require(p.row(device: a1, kind: .msix, index: 3))
        #expect(row.irq == 31 && row.counts == [0, 132] && row.total == 132)
        #expect(row.actions == "virtio0-stats" && row.handler == "edge" && row.hwirq == 3)
        #expect(p.row(device: a1, kind: .msi, index: 3) == nil)
        let a2 = try PCIAddress(parsing: "0000:00:02.0")
        #expect(p.row(device: a2, kind: .msix, index: 1)?.irq == 36)
        #expect(p.row(irq: 36)?.chip == "IR-PCI-MSIX-0000:00:02.0")
        let a3 = try PCIAddress(parsing: "0000:00:1f.2")
        #expect(p.row(device: a3, kind: .msi, index: 0)?.counts == [7, 9])
        #expect(p.rows(device: a1).map(\.irq) == [28, 31])
        #expect(p.row(irq: 24)?.source == nil)
        #expect(p.row(irq: 24)?.chip == "IO-APIC")
    }

    @Test("the older global PCI-MSI domain: hwirq = index | devid << 11 | domain << 27")
    func legacyDomain() throws {
        let nvme = try PCIAddress(parsing: "0001:3b:00.0")
        let hw0 = ProcInterrupts.legacyHWIRQ(address: nvme, index: 0)
        let hw5 = ProcInterrupts.legacyHWIRQ(address: nvme, index: 5)
        #expect(hw0 == (UInt64(0x3B) << 8) << 11 | 1 << 27)
        let text = """
                       CPU0       CPU1       CPU4       CPU5
              0:         38          0          0          0   IO-APIC   2-edge      timer
            125:          0          0       1203          0  IR-PCI-MSI \(hw0)-edge      nvme0q0
            126:         10          0          0          0  IR-PCI-MSI \(hw5)-edge      nvme0q5
            127:          1          2          3          4  PCI-MSI 524288-edge      eth0
            """
        let p = ProcInterrupts(parsing: text)
        #expect(p.cpus == [0, 1, 4, 5])  // online CPUs only, sparse
        #expect(p.row(device: nvme, kind: .msix, index: 0)?.irq == 125)
        #expect(p.row(device: nvme, kind: .msi, index: 5)?.irq == 126)  // the old domain does not say which
        #expect(p.row(irq: 125)?.counts == [0, 0, 1203, 0])
        // 524288 = 1 << 19: bus 1, device 0, function 0, index 0, domain 0.
        #expect(p.row(irq: 127)?.source == MSIVectorSource(address: try PCIAddress(parsing: "0000:01:00.0"), kind: nil, index: 0))
        #expect(ProcInterrupts.legacySource(hwirq: hw5)?.address == nvme)
    }

    @Test("malformed rows are skipped, not fatal")
    func tolerant() {
        let p = ProcInterrupts(parsing: "garbage\n           CPU0\n  1:\n 2: x y\n 3: 5 XT-PIC timer\n")
        #expect(p.cpus == [0])
        #expect(p.rows.map(\.irq) == [3])
        #expect(ProcInterrupts(parsing: "").cpus.isEmpty)
    }

    @Test(
        "every MSI/MSI-X IRQ of every live device has its row, for that device",
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func liveJoin() throws {
        let p = try #require(ProcInterrupts.read())
        #expect(!p.cpus.isEmpty)
        let sysfs = SysfsPCI()
        var joined = 0
        for address in sysfs.addresses() {
            for (irq, kind) in sysfs.msiIRQs(of: address) {
                guard let row = p.row(irq: irq) else { continue }  // allocated but never requested
                #expect(row.source?.address == address, "IRQ \(irq)")
                if let k = row.source?.kind { #expect(k.rawValue == kind, "IRQ \(irq)") }
                if let index = row.source?.index {
                    #expect(p.row(device: address, kind: MSIKind(rawValue: kind) ?? .msi, index: index)?.irq == irq)
                }
                #expect(row.counts.count == p.cpus.count)
                joined += 1
            }
        }
        #expect(joined > 0 || sysfs.addresses().allSatisfy { sysfs.msiIRQs(of: $0).isEmpty })
    }
}
