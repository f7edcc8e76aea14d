import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("PCIProbe on crafted dumps and fake sysfs trees")
struct DeviceProbeTests {
    /// Devices with every kind of trouble, in one dump.
    static func troubleDump() -> String {
        var looped = Fixtures.config(capPointer: 0x50)
        Fixtures.msi32Maskable(&looped, at: 0x50, next: 0x60)
        Fixtures.msix(&looped, at: 0x60, next: 0x50)  // back to 0x50
        var below = Fixtures.config(capPointer: 0x50)
        Fixtures.cap(&below, at: 0x50, id: 0x01, next: 0x10)  // into the header
        var brokenID = Fixtures.config(capPointer: 0x40)
        Fixtures.cap(&brokenID, at: 0x40, id: 0xFF, next: 0)
        let gone = [UInt8](repeating: 0xFF, count: 256)
        let short = Fixtures.config(capPointer: 0x50, size: 64)
        let headerOnly = Array(Fixtures.config().prefix(32))
        return Fixtures.dump([
            ("00:01.0", looped), ("00:02.0", below), ("00:03.0", brokenID), ("00:04.0", gone), ("00:05.0", short),
            ("00:06.0", headerOnly),
        ])
    }

    @Test("chain problems and gone devices are reported per device, not thrown", arguments: DumpReader.allCases)
    func trouble(reader: DumpReader) throws {
        let path = try Fixtures.write(Self.troubleDump())
        let report = try PCIProbe.run(.dump(path: path, reader: reader))
        let d = Dictionary(uniqueKeysWithValues: report.devices.map { ($0.address.device, $0) })
        #expect(report.devices.count == 6)

        // A loop: both capabilities decoded once, then "chain looped" at the repeated offset.
        let looped = try #require(d[1])
        #expect(looped.capabilities.map(\.offset) == [0x50, 0x60])
        #expect(looped.standardChain == .looped(at: 0x50))
        #expect(looped.msi?.address == 0xFEE0_2004 && looped.msix?.tableSize == 5 && looped.msix?.tableBIR == 3)
        #expect(looped.problems == [.chain(extended: false, .looped(at: 0x50))])
        #expect(looped.problems.allSatisfy { !$0.isError })

        // A pointer into the standard header: stop and call the chain broken.
        #expect(d[2]?.capabilities.map(\.offset) == [0x50])
        #expect(d[2]?.standardChain == .broken(at: 0x10))
        #expect(d[3]?.standardChain == .broken(at: 0x40))

        // All-ones: gone, nothing decoded.
        let gone = try #require(d[4])
        #expect(gone.problems == [.gone] && gone.problems[0].isError)
        #expect(gone.capabilities.isEmpty && gone.bars.isEmpty && gone.vendorID == 0xFFFF)

        // An lspci -x dump (64 bytes): the capability list is beyond the data.
        #expect(d[5]?.standardChain == .accessDenied(at: 0x50))
        #expect(d[5]?.problems == [.dumpTruncated(readable: 64)])
        #expect(d[5]?.bars.count == 2)

        // Less than the header.
        #expect(d[6]?.problems == [.headerUnreadable(readable: 32)])
        #expect(d[6]?.dumpLine == Self.troubleDump().split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("00:06.0") }.map { $0 + 1 })
    }

    @Test(
        "the looped chain is reported where lspci reports it",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"))
    func loopLikeLspci() throws {
        let path = try Fixtures.write(Self.troubleDump())
        let lspci = try #require(TestEnvironment.lspci)
        let out = try TestEnvironment.run(lspci, ["-F", path, "-vvv", "-s", "01.0"]).stdout
        #expect(out.contains("Capabilities: [50] <chain looped>"))
        let out3 = try TestEnvironment.run(lspci, ["-F", path, "-vvv", "-s", "03.0"]).stdout
        #expect(out3.contains("Capabilities: [40] <chain broken>"))
        let out5 = try TestEnvironment.run(lspci, ["-F", path, "-vvv", "-s", "05.0"]).stdout
        #expect(out5.contains("Capabilities: <access denied>"))
        // lspci 3.9 does not check for pointers below 0x40 and decodes header bytes as a
        // capability ("[10] Null"); PCIAccess stops there and says the chain is broken.
    }

    @Test("a 64-bit BAR, an I/O BAR and an unassigned BAR decode like lspci's Region lines")
    func bars() {
        // BAR0: 64-bit prefetchable at 0x38_0000_0000 (two registers), BAR2: I/O at 0xc000,
        // BAR3: 32-bit unassigned, BAR5: 64-bit in the last register (broken).
        let registers: [UInt32] = [0x0000_000C, 0x38, 0xC001, 0x0000_0000, 0, 0x4]
        let bases = ProbedBAR.genericBaseAddresses(registers: registers)
        #expect(bases == [0x38_0000_000C, 0, 0xC001, 0, 0, 0])
        let bars = ProbedBAR.decode(registers: registers, bases: bases, sizes: nil, command: 0x3)
        #expect(bars.map(\.index) == [0, 2, 5])
        #expect(bars[0].base == 0x38_0000_0000 && bars[0].is64Bit && bars[0].prefetchable && !bars[0].isIO)
        #expect(bars[1].isIO && bars[1].base == 0xC000 && !bars[1].isDisabled)
        #expect(bars[2].isInvalid64BitSlot && bars[2].base == 0)
        let disabled = ProbedBAR.decode(registers: registers, bases: bases, sizes: nil, command: 0)
        #expect(disabled.allSatisfy { $0.isDisabled })
    }

    @Test("live source over a fake sysfs tree: driver, IOMMU group, msi_irqs joined with /proc/interrupts")
    func fakeLive() throws {
        let tree = try Fixtures.FakeSysfs()
        var nic = Fixtures.config(capPointer: 0x50)
        Fixtures.msi32Maskable(&nic, at: 0x50, next: 0x60)
        Fixtures.msix(&nic, at: 0x60, next: 0)
        // MSI-X enabled, MSI not (a real device has one or the other).
        nic[0x52] &= 0xFE
        try tree.add(
            "0000:00:02.0", config: nic, driver: "e1000e", iommuGroup: 7, msi: [(41, "msix"), (42, "msix"), (43, "msix")],
            resource: [(0xFEA8_0000, 0xFEA9_FFFF, 0x40200), (0xC040, 0xC05F, 0x40101)])
        // An unprivileged reader's view: the config file has 64 bytes.
        try tree.add("0000:00:03.0", config: Fixtures.config(capPointer: 0x50, size: 64))
        let hw = ProcInterrupts.legacyHWIRQ(address: try PCIAddress(parsing: "0000:00:02.0"), index: 1)
        let interrupts = try tree.interrupts("""
                       CPU0       CPU2
             41:          3          4  PCI-MSIX-0000:00:02.0   0-edge      eth0-rx
             42:          0         10  IR-PCI-MSI \(hw)-edge      eth0-tx

            """)
        // Placement: irq 41 has every /proc/irq file, 42 only smp_affinity_list (older kernel), 43 none.
        let irqDir = tree.root.appendingPathComponent("irq")
        for (irq, files) in [(41, [("smp_affinity_list", "0,2\n"), ("effective_affinity_list", "2\n"), ("node", "0\n")]),
                             (42, [("smp_affinity_list", "0\n")])] {
            let dir = irqDir.appendingPathComponent("\(irq)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        }
        let report = try PCIProbe.run(
            .live(sysfsRoot: tree.root.path, procInterrupts: interrupts), options: ProbeOptions(useUdev: false))
        #expect(report.isLive && report.cpus == [0, 2])
        #expect(report.devices.map(\.address.description) == ["0000:00:02.0", "0000:00:03.0"])
        let d = report.devices[0]
        #expect(d.driver == "e1000e" && d.iommuGroup == 7)
        #expect(d.bars.map(\.size) == [0x20000, 0x20])
        #expect(d.msix?.enabled == true && d.msi?.enabled == false)
        let irqs = try #require(d.irqs)
        #expect(irqs.map(\.irq) == [41, 42, 43])
        #expect(irqs.map(\.kind) == [.msix, .msix, .msix])
        #expect(irqs[0].index == 0 && irqs[0].counts == [3, 4] && irqs[0].actions == "eth0-rx")
        #expect(irqs[1].index == 1 && irqs[1].counts == [0, 10])  // legacy hwirq decoded
        #expect(irqs[2].index == nil && irqs[2].counts == nil)  // allocated, not requested
        #expect(irqs[0].placement == IRQPlacement(
            smpAffinity: CPUList(parsing: "0,2"), effectiveAffinity: CPUList(parsing: "2"), node: 0))
        #expect(irqs[1].placement.smpAffinity?.text == "0" && irqs[1].placement.effectiveAffinity == nil)
        #expect(irqs[1].placement.node == nil && irqs[2].placement.isEmpty)
        let limited = report.devices[1]
        #expect(limited.problems == [.capabilitiesNeedRoot(readable: 64)])
        #expect(limited.irqs == [] && limited.driver == nil && limited.iommuGroup == nil)
    }

    @Test(
        "the live system: every device has IDs and, as root, its interrupt view",
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func live() throws {
        let report = try PCIProbe.run(.live())
        #expect(report.devices.count == report.scannedCount)
        let sysfs = SysfsPCI()
        for d in report.devices {
            #expect(d.driver == sysfs.driver(of: d.address), "\(d.address)")
            #expect(d.iommuGroup == sysfs.iommuGroup(of: d.address), "\(d.address)")
            #expect(d.irqs?.map(\.irq) == sysfs.msiIRQs(of: d.address).map(\.irq), "\(d.address)")
            #expect(d.irqs?.map(\.kind.rawValue) == sysfs.msiIRQs(of: d.address).map(\.kind), "\(d.address)")
            if TestEnvironment.isRoot { #expect(d.problems.isEmpty, "\(d.address): \(d.problems)") }
        }
    }

    @Test(
        "both dump readers give identical results for every fixture dump",
        arguments: TestEnvironment.fixtureDumps)
    func readersAgree(path: String) throws {
        let a = try PCIProbe.run(.dump(path: path, reader: .libpci))
        let b = try PCIProbe.run(.dump(path: path, reader: .native))
        #expect(a.devices == b.devices)
        #expect(!a.devices.isEmpty && a.devices.allSatisfy { $0.irqs == nil && $0.driver == nil })
    }
}
