import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("irq placement: /proc/irq/N, CPU lists, APIC IDs")
struct PlacementTests {
    @Test("CPU lists parse the kernel's %*pbl format", arguments: [
        ("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,8,10-11\n", [0, 1, 8, 10, 11]), ("", []), ("5,3,3", [3, 5]),
    ])
    func cpuLists(text: String, cpus: [Int]) throws {
        let list = try #require(CPUList(parsing: text))
        #expect(list.cpus == cpus)
        #expect(list.text == text.trimmingWhitespace())
    }

    @Test("malformed CPU lists are nil, not a guess", arguments: ["3-1", "x", "1,,2", "-1", "0-", "1-2-3", "0-999999"])
    func badCPULists(text: String) {
        #expect(CPUList(parsing: text) == nil)
    }

    @Test("a CPU set prints the kernel's way: runs (pairs too) as ranges")
    func printing() {
        #expect(CPUList([0, 1, 2, 3, 8, 10, 11]).text == "0-3,8,10-11")
        #expect(CPUList([1]).text == "1" && CPUList([]).text == "")
        #expect(CPUList([4, 3]).text == "3-4")
    }

    @Test("IRQPlacement.read: every file, some missing, none; never throws")
    func readTree() throws {
        let root = try TestEnvironment.temporaryDirectory("irq").path
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/41", withIntermediateDirectories: true)
        try Data("0-1\n".utf8).write(to: URL(fileURLWithPath: root + "/41/smp_affinity_list"))
        try Data("1\n".utf8).write(to: URL(fileURLWithPath: root + "/41/effective_affinity_list"))
        try Data("-1\n".utf8).write(to: URL(fileURLWithPath: root + "/41/node"))
        try fm.createDirectory(atPath: root + "/42", withIntermediateDirectories: true)
        try Data("3\n".utf8).write(to: URL(fileURLWithPath: root + "/42/smp_affinity_list"))  // an older kernel

        let full = IRQPlacement.read(irq: 41, root: root)
        #expect(full.smpAffinity?.cpus == [0, 1] && full.smpAffinity?.text == "0-1")
        #expect(full.effectiveAffinity?.cpus == [1] && full.node == -1)
        let old = IRQPlacement.read(irq: 42, root: root)
        #expect(old.smpAffinity?.text == "3" && old.effectiveAffinity == nil && old.node == nil)
        #expect(IRQPlacement.read(irq: 99, root: root).isEmpty)
        #expect(IRQPlacement.root(besideInterrupts: "/proc/interrupts") == "/proc/irq")
        #expect(IRQPlacement.root(besideInterrupts: "/tmp/x/interrupts") == "/tmp/x/irq")
    }

    @Test("APIC IDs map to CPUs from /proc/cpuinfo; a destination is compared with the effective affinity")
    func apicMap() throws {
        let cpuinfo = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            apicid\t\t: 0
            initial apicid\t: 0

            processor\t: 1
            apicid\t\t: 2
            initial apicid\t: 2

            """
        let map = APICMap(cpuinfo: cpuinfo)
        #expect(map.cpuByAPIC == [0: 0, 2: 1])
        let one = CPUList(parsing: "1")
        #expect(PlacementCheck.compare(destinationAPIC: 2, effective: one, map: map) == .agrees(cpu: 1))
        #expect(PlacementCheck.compare(destinationAPIC: 0, effective: one, map: map) == .differs(tableCPU: 0, apic: 0))
        #expect(PlacementCheck.compare(destinationAPIC: 7, effective: one, map: map) == .differs(tableCPU: nil, apic: 7))
        #expect(PlacementCheck.compare(destinationAPIC: 0, effective: nil, map: map) == .notCompared)
        #expect(PlacementCheck.compare(destinationAPIC: 0, effective: one, map: APICMap(cpuByAPIC: [:])) == .notCompared)
    }

    @Test(
        "live: every MSI irq's placement equals /proc/irq/N",
        .enabled(if: TestEnvironment.hasLivePCI && FileManager.default.fileExists(atPath: "/proc/irq"), "no PCI devices or no /proc/irq"))
    func live() throws {
        let report = try PCIProbe.run(.live())
        var seen = 0
        for d in report.devices {
            for irq in d.irqs ?? [] {
                let text = try? String(contentsOfFile: "/proc/irq/\(irq.irq)/smp_affinity_list", encoding: .utf8)
                #expect(irq.placement.smpAffinity?.text == text?.trimmingWhitespace(), "irq \(irq.irq)")
                seen += 1
            }
        }
        if TestEnvironment.isRoot && report.devices.contains(where: { !($0.irqs ?? []).isEmpty }) { #expect(seen > 0) }
    }
}
