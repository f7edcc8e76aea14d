import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

/// Every device of every fixture dump, and of the live system, decoded by PCIAccess and by
/// `lspci -vvv`: capability offsets, every MSI and MSI-X field, PCIe type, BARs, names and
/// (live) drivers must agree, device by device.
@Suite("Agreement with lspci -vvv")
struct AgreementTests {
    @Test(
        "every device of every fixture dump agrees with lspci -F",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"),
        arguments: TestEnvironment.fixtureDumps, DumpReader.allCases)
    func dumpAgrees(path: String, reader: DumpReader) throws {
        let report = try PCIProbe.run(.dump(path: path, reader: reader))
        let lspci = try #require(TestEnvironment.lspci)
        let result = try TestEnvironment.run(lspci, ["-F", path, "-vvv"])
        #expect(result.status == 0, "lspci failed: \(result.stderr)")
        let compared = compare(report.devices, LSPCIOutput.parse(result.stdout), live: false, source: path)
        #expect(compared > 0)
    }

    @Test(
        "every device of the live system agrees with lspci -D -vvv",
        .enabled(if: TestEnvironment.hasLspci, "lspci is not installed (apt-get install pciutils)"),
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func liveAgrees() throws {
        let report = try PCIProbe.run(.live())
        let lspci = try #require(TestEnvironment.lspci)
        let result = try TestEnvironment.run(lspci, ["-D", "-vvv"])
        #expect(result.status == 0, "lspci failed: \(result.stderr)")
        let compared = compare(report.devices, LSPCIOutput.parse(result.stdout), live: true, source: "live")
        #expect(compared == report.devices.count)
    }

    /// Compares device lists; returns how many devices were compared.
    @discardableResult
    func compare(_ ours: [PCIDeviceInfo], _ theirs: [LSPCIDevice], live: Bool, source: String) -> Int {
        #expect(ours.map(\.address.description) == theirs.map(\.slot), "device lists differ in \(source)")
        var compared = 0
        for (d, l) in zip(ours, theirs) where d.address.description == l.slot {
            let at = "\(source) \(l.slot)"
            compared += 1

            // Capability offsets, in list order, standard then extended.
            #expect(d.capabilities.map { [$0.offset, $0.extended ? 1 : 0] } == l.capabilities.map { [$0.offset, $0.extended ? 1 : 0] },
                    "capability offsets differ at \(at)")
            for problem in l.chainProblems {
                switch problem.word {
                case "chain looped":
                    #expect(d.standardChain == .looped(at: problem.offset ?? -1) || d.extendedChain == .looped(at: problem.offset ?? -1), "\(at)")
                case "chain broken":
                    #expect(d.standardChain == .broken(at: problem.offset ?? -1) || d.extendedChain == .broken(at: problem.offset ?? -1), "\(at)")
                case "access denied":
                    if case .accessDenied = d.standardChain {} else { Issue.record("lspci: access denied, ours \(d.standardChain) at \(at)") }
                default:
                    Issue.record("unexpected lspci capability word '\(problem.word)' at \(at)")
                }
            }

            // MSI, field by field.
            #expect((d.msi == nil) == (l.msi == nil), "MSI presence differs at \(at)")
            if let m = d.msi, let lm = l.msi {
                #expect(m.enabled == lm.enabled, "MSI enable at \(at)")
                #expect(m.countEnabled == lm.countEnabled, "MSI count enabled at \(at)")
                #expect(m.countCapable == lm.countCapable, "MSI count capable at \(at)")
                #expect(m.maskable == lm.maskable, "MSI maskable at \(at)")
                #expect(m.is64Bit == lm.is64Bit, "MSI 64bit at \(at)")
                #expect(lm.address != nil, "lspci printed no MSI address at \(at)")
                #expect((m.is64Bit ? hex(m.address, width: 16) : hex(m.address, width: 8)) == lm.address, "MSI address at \(at)")
                #expect(hex(m.data, width: 4) == lm.data, "MSI data at \(at)")
                #expect(m.mask.map { hex($0, width: 8) } == lm.mask, "MSI mask at \(at)")
                #expect(m.pending.map { hex($0, width: 8) } == lm.pending, "MSI pending at \(at)")
            }

            // MSI-X, field by field.
            #expect((d.msix == nil) == (l.msix == nil), "MSI-X presence differs at \(at)")
            if let x = d.msix, let lx = l.msix {
                #expect(x.enabled == lx.enabled, "MSI-X enable at \(at)")
                #expect(x.tableSize == lx.count, "MSI-X count at \(at)")
                #expect(x.functionMasked == lx.masked, "MSI-X masked at \(at)")
                #expect(x.tableBIR == lx.tableBAR, "MSI-X table BAR at \(at)")
                #expect(x.tableOffset == lx.tableOffset, "MSI-X table offset at \(at)")
                #expect(x.pbaBIR == lx.pbaBAR, "MSI-X PBA BAR at \(at)")
                #expect(x.pbaOffset == lx.pbaOffset, "MSI-X PBA offset at \(at)")
            }

            // PCIe device/port type: lspci adds "(Slot±)" to ports.
            if let type = l.expressType {
                let ours = d.pcieType?.description ?? "Unknown type \(d.express?.typeCode ?? -1)"
                #expect(type.hasPrefix(ours), "PCIe type '\(ours)' vs lspci '\(type)' at \(at)")
            } else {
                #expect(d.express == nil, "PCIe capability only in ours at \(at)")
            }

            // BARs ("Region N" lines). lspci 3.9 reads a dump's BAR registers one by one and
            // prints the upper half of a 64-bit BAR as a region of its own when the address
            // is above 4 GiB ("Region 1: Memory at <unassigned> (32-bit, ...)"); that register
            // belongs to the BAR before it, which both report correctly.
            let upperHalves = Set(d.bars.filter(\.is64Bit).map { $0.index + 1 })
            let regions = l.regions.filter { !(upperHalves.contains($0.index) && $0.base == nil && !live) }
            #expect(d.bars.map(\.index) == regions.map(\.index), "BAR indexes differ at \(at)")
            for (b, r) in zip(d.bars, regions) where b.index == r.index {
                #expect(b.isIO == r.isIO, "BAR \(b.index) I/O at \(at)")
                #expect((b.base == 0 ? nil : b.base) == r.base, "BAR \(b.index) base at \(at)")
                if !b.isIO {
                    #expect(b.is64Bit == r.is64Bit, "BAR \(b.index) 64-bit at \(at)")
                    #expect(b.prefetchable == r.prefetchable, "BAR \(b.index) prefetchable at \(at)")
                }
                #expect(b.isDisabled == r.disabled, "BAR \(b.index) disabled at \(at)")
                #expect(b.isVirtual == r.virtual, "BAR \(b.index) virtual at \(at)")
                if live {
                    let size = b.size.flatMap { $0 == 0 ? nil : sizeText($0) }
                    #expect(size == r.sizeText, "BAR \(b.index) size at \(at)")
                } else {
                    #expect(b.size == nil && r.sizeText == nil, "dumps carry no BAR sizes at \(at)")
                }
            }

            // Names, with the same libpci defaults lspci uses.
            if let cls = d.className, let vendor = d.vendorName, let device = d.deviceName {
                #expect(l.title.hasPrefix("\(cls): \(vendor) \(device)"), "names '\(cls): \(vendor) \(device)' vs lspci '\(l.title)' at \(at)")
            } else if let cls = d.className {
                #expect(l.title.hasPrefix("\(cls): "), "class name at \(at)")
            }

            if live {
                #expect(d.driver == l.driver, "driver at \(at)")
            } else {
                #expect(d.driver == nil && d.iommuGroup == nil && d.irqs == nil, "dump mode has no kernel view at \(at)")
            }
        }
        return compared
    }

    func sizeText(_ size: UInt64) -> String {
        var x = size
        for suffix in ["", "K", "M", "G", "T"] {
            if x < 1024 || suffix == "T" { return "\(x)\(suffix)" }
            x /= 1024
        }
        return "\(x)"
    }
}

/// The parameterized tests above run once per fixture dump; with no fixtures they would run
/// zero times and pass. This test makes a missing or emptied fixture folder a failure.
@Test("the repository's fixture dumps are present and hold devices")
func fixtureDumpsPresent() throws {
    let names = TestEnvironment.fixtureDumps.map { URL(fileURLWithPath: $0).lastPathComponent }
    #expect(names == ["firecracker-virtio.dump", "qemu-q35-nodrivers.dump"])
    for path in TestEnvironment.fixtureDumps {
        #expect(try !LSPCIDump.read(path: path, collectBytes: false).isEmpty, "\(path) holds no device")
    }
}
