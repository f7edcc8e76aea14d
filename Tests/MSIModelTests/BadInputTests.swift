// Misuse is a thrown MSIError carrying an errno, never a trap.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("bad input")
struct BadInputTests {
    @Test("out-of-range indices: negative and > 65535 are -ERANGE on insert and alloc, -EINVAL on lookup")
    func outOfRangeIndices() throws {
        let p = try x86Platform()
        let dev = try deviceWithDomain(p, .ims(chip: RecordingIMSChip()), hwsize: 0)
        expectErrno(.ERANGE) { try dev.insertDescriptor(MSIDescriptor(index: -1), domain: .secondary) }
        expectErrno(.ERANGE) { try dev.insertDescriptor(MSIDescriptor(index: 65536), domain: .secondary) }
        expectErrno(.ERANGE) { _ = try dev.allocIRQ(domain: .secondary, at: .index(-5)) }
        expectErrno(.ERANGE) { _ = try dev.allocIRQ(domain: .secondary, at: .index(1 << 20)) }
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: .secondary, index: -1) }
        expectErrno(.EINVAL) { _ = try dev.freeIRQs(domain: .secondary, first: -1, last: 3) }
        #expect(dev.descriptors(domain: .secondary).isEmpty && p.allocatedIRQs.isEmpty)
    }

    @Test("first > last is -EINVAL for every range operation")
    func reversedRanges() throws {
        let p = try x86Platform()
        let dev = try deviceWithDomain(p, .ims(chip: RecordingIMSChip()), hwsize: 16)
        expectErrno(.EINVAL) { _ = try dev.allocIRQs(domain: .secondary, first: 5, last: 4) }
        expectErrno(.EINVAL) { try dev.freeIRQs(domain: .secondary, first: 5, last: 4) }
        expectErrno(.EINVAL) { try dev.freeDescriptors(domain: .secondary, first: 9, last: 1) }
    }

    @Test("unknown domain ids are -EINVAL")
    func unknownDomain() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        dev.setupDeviceData()
        let bogus = MSIDomainID(rawValue: 7)
        expectErrno(.EINVAL) { try dev.insertDescriptor(MSIDescriptor(index: 0), domain: bogus) }
        expectErrno(.EINVAL) { _ = try dev.allocIRQs(domain: bogus, first: 0, last: 0) }
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: bogus, index: 0) }
        expectErrno(.EINVAL) { try dev.createDomain(MSIDomainID(rawValue: -1), template: .pciMSIX(), hwsize: 8) }
        expectErrno(.EINVAL) {
            _ = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.first(domain: bogus) }
        }
    }

    @Test("double free and free of unknown maps are -EINVAL; freeing an interrupt twice is -EINVAL")
    func doubleFree() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let map = try dev.msixAllocIRQ(at: .any)
        try dev.msixFreeIRQ(map)
        expectErrno(.EINVAL) { try dev.msixFreeIRQ(map) }
        expectErrno(.EINVAL) { try dev.msixFreeIRQ(MSIMap(index: -22, virq: 0)) }
        expectErrno(.EINVAL) { try dev.msixFreeIRQ(MSIMap(index: 0, virq: 9999)) }
        try dev.createIMSDomain(template: .ims(chip: RecordingIMSChip()), hwsize: 4)
        let ims = try dev.imsAllocIRQ(cookie: 1)
        try dev.imsFreeIRQ(ims)
        expectErrno(.EINVAL) { try dev.imsFreeIRQ(ims) }
        let v = try dev.irqVector(0)
        expectErrno(.EINVAL) { try dev.freeIRQ(v) }
        try dev.requestIRQ(v)
        expectErrno(.EBUSY) { try dev.requestIRQ(v) }
        try dev.freeIRQ(v)
        expectErrno(.EINVAL) { try dev.freeIRQ(v) }
        expectErrno(.EINVAL) { try dev.requestIRQ(123_456) }
        #expect(dev.warnings.contains { $0.function == "pci_msix_free_irq" })
    }

    @Test("negative or oversized vector counts are -EINVAL and leave nothing enabled")
    func vectorCounts() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: -1, max: 4, flags: .allTypes) }
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: Int.max, flags: [.msix, .affinity]) }
        expectErrno(.EINVAL) { _ = try dev.enableMSIXRange(entries: [0], min: -3, max: 1) }
        #expect(!dev.isMSIXEnabled && p.allocatedIRQs.isEmpty)
        #expect(IRQAffinitySpreading.calcVectors(minVectors: 1, maxVectors: Int.max, affinity: IRQAffinity(preVectors: Int.max), possibleCPUs: 2) == 0)
        #expect(IRQAffinitySpreading.createMasks(vectors: Int.max, affinity: IRQAffinity(), cpus: .first(2), defaultAffinity: .first(2)) == nil)
    }

    @Test("hwsize over 65536 is -EINVAL, an IMS hwsize over the chip's slots too")
    func hwsizeLimits() throws {
        let p = try irPlatform()
        let (dev, _) = pciDevice(p)
        expectErrno(.EINVAL) { try dev.createDomain(.default, template: .pciMSIX(), hwsize: 70000) }
        expectErrno(.EINVAL) { try dev.createDomain(.default, template: .pciMSIX(), hwsize: -1) }
        expectErrno(.EINVAL) { try dev.createIMSDomain(template: .ims(chip: RecordingIMSChip(slots: 8)), hwsize: 9) }
        try dev.createIMSDomain(template: .ims(chip: RecordingIMSChip(slots: 8)), hwsize: 8)
    }

    @Test("an instance cookie on a PCI MSI-X domain is kept as given (the kernel has no check); interrupts of another device are refused")
    func wrongDomainCookie() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let map = try dev.allocIRQ(domain: .default, at: .any, cookie: 0xABCD_0000_1234_5678)
        let d = try #require(dev.descriptor(domain: .default, index: map.index))
        #expect(d.instanceCookie == 0xABCD_0000_1234_5678 && d.pci.isMSIX && d.isAssociated)
        try dev.freeIRQs(domain: .default, first: map.index, last: map.index)
        let (other, _) = pciDevice(p, name: "0000:00:07.0")
        let v = try dev.irqVector(0)
        expectErrno(.EINVAL) { try other.requestIRQ(v) }
        expectErrno(.EINVAL) { try other.writeMSIMessage(virq: v, .zero) }
    }

    @Test("operations without device data, PCI calls on a non-PCI device, no MSI parent, pci=nomsi")
    func missingPieces() throws {
        let p = try x86Platform()
        let plain = MSIDevice(name: "platform-dev", platform: p)
        expectErrno(.EINVAL) { try plain.insertDescriptor(MSIDescriptor(index: 0)) }
        #expect(try plain.getVirq(index: 0) == 0, "msi_domain_get_virq returns 0 without data")
        expectErrno(.ENODEV) { _ = try plain.allocIRQVectors(min: 1, max: 1, flags: .msix) }
        let hw = SimulatedPCIFunction()
        let orphan = MSIDevice(name: "0000:00:08.0", platform: p, pci: hw.hardware, hasMSIParent: false)
        expectErrno(.ENOTSUPP) { _ = try orphan.allocIRQVectors(min: 1, max: 1, flags: .msix) }
        expectErrno(.ENODEV) { try orphan.createDomain(.default, template: .pciMSIX(), hwsize: 8) }
        let off = try MSIPlatform(MSIPlatformConfiguration(msiEnabled: false))
        let (dev, _) = pciDevice(off)
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix) }
        var quirky = SimulatedPCIFunction().hardware
        quirky.quirks.noMSI = true
        expectErrno(.EINVAL) { _ = try MSIDevice(name: "q", platform: p, pci: quirky).allocIRQVectors(min: 1, max: 1, flags: .msix) }
    }

    @Test("an unmappable MSI-X table fails the enable with -ENOMEM and leaves MSI-X off")
    func unmappableTable() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p)
        hw.setMappingFails(true)
        expectErrno(.ENOMEM) { _ = try dev.allocIRQVectors(min: 1, max: 2, flags: .msix) }
        #expect(!dev.isMSIXEnabled && hw.msixControlRegister & PCIReg.MSIX.enable == 0)
        #expect(dev.descriptors().isEmpty && p.allocatedIRQs.isEmpty)
    }

    @Test("impossible platform configurations are -EINVAL")
    func platformConfiguration() {
        expectErrno(.EINVAL) { _ = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 0)) }
        expectErrno(.EINVAL) { _ = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 300)) }
        expectErrno(.EINVAL) { _ = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0, 0x300])) }
        expectErrno(.EINVAL) { _ = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [1, 1])) }
        expectErrno(.EINVAL) { _ = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 16, destinationMode: .logical)) }
        expectErrno(.EINVAL) { _ = try MSIPlatform(.intelRemapping(cpus: 2, tableEntries: 0)) }
        // APIC IDs above 0xFF work with the extended destination ID or with remapping.
        #expect((try? MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0, 0x1234], extendedDestinationID: true))) != nil)
        #expect((try? MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0, 0x1234], interruptRemapping: .init()))) != nil)
    }
}

/// A Command register whose writes fail as if the device had gone away.
struct VanishingCommand: PCICommandHardware {
    func readCommand() throws -> UInt16 { 0x0006 }
    func writeCommand(_ value: UInt16) throws { throw DeviceAccessError.deviceGone("test command") }
}

@Suite("backend failures")
struct BackendFailureTests {
    @Test("a hardware access failing after the interrupts are set up releases them and leaves MSI-X and MSI off")
    func failureAfterSetup() throws {
        let p = try x86Platform()
        let sim = SimulatedPCIFunction(.init(msixTableSize: 4, msiMultipleCapableLog2: 0))
        let dev = MSIDevice(name: "0000:00:0b.0", platform: p,
                            pci: PCIFunctionHardware(command: VanishingCommand(), msix: sim, msi: sim, intxIRQ: 11))
        expectErrno(.ENODEV) { _ = try dev.allocIRQVectors(min: 1, max: 2, flags: .msix) }
        #expect(!dev.isMSIXEnabled && dev.descriptors().isEmpty && p.allocatedIRQs.isEmpty)
        #expect(sim.msixControlRegister & (PCIReg.MSIX.enable | PCIReg.MSIX.functionMask) == 0)
        expectErrno(.ENODEV) { _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msi) }
        #expect(!dev.isMSIEnabled && dev.descriptors().isEmpty && p.allocatedIRQs.isEmpty)
        #expect(p.vectorMatrix.globalReserved == 0)
    }
}
