// Conformance cases 22–44 of Docs/kernel-msi-model.md §6: the PCI/MSI layer, the hardware
// programming order, x86 message composition, the vector matrix and IMS.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("drivers/pci/msi, x86 vectors and formats, IMS")
struct ConformancePCITests {
    @Test("22 __pci_enable_msix_range: parent fails on the 3rd vector, min 1 → retry with 2 → 2", arguments: MSIStoreLayout.allCases)
    func case22(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        p.failIRQAllocations(after: 2)
        #expect(try dev.allocIRQVectors(min: 1, max: 4, flags: .msix) == 2)
        #expect(dev.descriptors().map(\.index) == [0, 1])
        #expect(dev.descriptors(.associated).count == 2)
        #expect(p.allocatedIRQs.count == 2)
    }

    @Test("23 __pci_enable_msix_range: same failure with min 3 → -ENOSPC, store empty", arguments: MSIStoreLayout.allCases)
    func case23(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout)
        p.failIRQAllocations(after: 2)
        expectErrno(.ENOSPC) { _ = try dev.allocIRQVectors(min: 3, max: 4, flags: .msix) }
        #expect(dev.descriptors().isEmpty)
        #expect(p.allocatedIRQs.isEmpty)
        #expect(!dev.isMSIXEnabled)
        #expect(hw.msixControlRegister & (PCIReg.MSIX.enable | PCIReg.MSIX.functionMask) == 0)
    }

    @Test("24 __pci_enable_msix_range: max < min gives -ERANGE", arguments: MSIStoreLayout.allCases)
    func case24(_ layout: MSIStoreLayout) throws {
        let (dev, _) = pciDevice(try x86Platform(), layout: layout)
        expectErrno(.ERANGE) { _ = try dev.allocIRQVectors(min: 4, max: 2, flags: .msix) }
    }

    @Test("25 pci_alloc_irq_vectors_affinity: (1, 0, ALL_TYPES) with an INTx irq falls back to INTx", arguments: MSIStoreLayout.allCases)
    func case25(_ layout: MSIStoreLayout) throws {
        let (dev, hw) = pciDevice(try x86Platform(), layout: layout, intx: 11)
        try hw.writeCommand(hw.commandRegister | PCIReg.Command.intxDisable)
        #expect(try dev.allocIRQVectors(min: 1, max: 0, flags: .allTypes) == 1)
        #expect(hw.commandRegister & PCIReg.Command.intxDisable == 0, "pci_intx(dev, 1) re-enables INTx")
        #expect(try dev.irqVector(0) == 11)
        // Without INTx the last error (-ERANGE from the MSI attempt) is returned.
        let (noPin, _) = pciDevice(try x86Platform(), layout: layout, intx: 0)
        expectErrno(.ERANGE) { _ = try noPin.allocIRQVectors(min: 1, max: 0, flags: .allTypes) }
    }

    @Test("26 __pci_enable_msix_range: a 4-entry table gives 4 for (1, 8) and -ENOSPC for (8, 16)", arguments: MSIStoreLayout.allCases)
    func case26(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout, msix: 4)
        #expect(try dev.allocIRQVectors(min: 1, max: 8, flags: .msix) == 4)
        let (dev2, _) = pciDevice(p, layout: layout, name: "0000:00:05.0", msix: 4)
        expectErrno(.ENOSPC) { _ = try dev2.allocIRQVectors(min: 8, max: 16, flags: .msix) }
    }

    @Test("27 pci_msix_vec_count: no MSI-X capability gives -EINVAL", arguments: MSIStoreLayout.allCases)
    func case27(_ layout: MSIStoreLayout) throws {
        let (dev, _) = pciDevice(try x86Platform(), layout: layout, msix: nil, msiMMC: 0)
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix) }
    }

    @Test("28 __pci_enable_msi[x]_range: MSI and MSI-X exclude each other with -EINVAL", arguments: MSIStoreLayout.allCases)
    func case28(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout, msix: 8, msiMMC: 0)
        #expect(try dev.allocIRQVectors(min: 1, max: 1, flags: .msi) == 1)
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix) }
        try dev.freeIRQVectors()
        #expect(try dev.allocIRQVectors(min: 1, max: 1, flags: .msix) == 1)
        expectErrno(.EINVAL) { _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msi) }
    }

    @Test("29 msi_capability_init: the vector parent has no MULTI_PCI_MSI: (1,4) → 1, (2,4) → -ENOSPC", arguments: MSIStoreLayout.allCases)
    func case29(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: nil, msiMMC: 3)
        #expect(try dev.allocIRQVectors(min: 1, max: 4, flags: .msi) == 1)
        #expect((hw.msiControlRegister & PCIReg.MSI.qsize) >> 4 == 0)
        try dev.freeIRQVectors()
        expectErrno(.ENOSPC) { _ = try dev.allocIRQVectors(min: 2, max: 4, flags: .msi) }
        #expect(!dev.isMSIEnabled)
    }

    @Test("30 msi_setup_msi_desc: IR parent (3,3,MSI) → 3 vectors, MME 2, one descriptor, pci_irq_vector(2) = irq+2", arguments: MSIStoreLayout.allCases)
    func case30(_ layout: MSIStoreLayout) throws {
        let p = try irPlatform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: nil, msiMMC: 3)
        #expect(try dev.allocIRQVectors(min: 3, max: 3, flags: .msi) == 3)
        #expect((hw.msiControlRegister & PCIReg.MSI.qsize) >> 4 == 2)
        let descs = dev.descriptors()
        #expect(descs.count == 1)
        #expect(descs.first?.vectorCount == 3)
        #expect(descs.first?.pci.multipleLog2 == 2)
        let irq = try dev.irqVector(0)
        #expect(try dev.irqVector(2) == irq + 2)
        expectErrno(.EINVAL) { _ = try dev.irqVector(3) }
        #expect(dev.irq == irq, "dev->irq is the first MSI interrupt")
        // The remapping domain hands out a naturally aligned block of 4 IRTEs.
        let handles = (0..<3).compactMap { p.irq(irq + $0)?.irteIndex }
        #expect(handles.count == 3 && handles[0] % 4 == 0 && handles == [handles[0], handles[0] + 1, handles[0] + 2])
        #expect(p.irq(irq)?.domainName == "IR-PCI-MSI-0000:00:03.0")
    }

    @Test("31 pci_irq_vector: with nothing enabled, 0 is dev->irq and 1 is -EINVAL", arguments: MSIStoreLayout.allCases)
    func case31(_ layout: MSIStoreLayout) throws {
        let (dev, _) = pciDevice(try x86Platform(), layout: layout, intx: 17)
        #expect(try dev.irqVector(0) == 17)
        expectErrno(.EINVAL) { _ = try dev.irqVector(1) }
    }

    @Test("32 pci_msix_alloc_irq_at: before MSI-X is enabled → -ENOTSUPP (524)", arguments: MSIStoreLayout.allCases)
    func case32(_ layout: MSIStoreLayout) throws {
        let (dev, _) = pciDevice(try x86Platform(), layout: layout)
        do {
            _ = try dev.msixAllocIRQ(at: .any)
            Issue.record("expected ENOTSUPP")
        } catch {
            #expect(error.code == .ENOTSUPP)
            #expect(error.kernelReturnValue == -524)
        }
    }

    @Test("33 msi_insert_desc: dynamic MSI-X on a table of 8: ANY → 1, 5 → 5, 5 → -EBUSY, 8 → -ERANGE", arguments: MSIStoreLayout.allCases)
    func case33(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: 8)
        #expect(try dev.allocIRQVectors(min: 1, max: 1, flags: .msix) == 1)
        #expect(dev.msixCanAllocateDynamically)
        #expect(try dev.msixAllocIRQ(at: .any).index == 1)
        let five = try dev.msixAllocIRQ(at: .index(5))
        #expect(five.index == 5 && five.virq > 0)
        expectErrno(.EBUSY) { _ = try dev.msixAllocIRQ(at: .index(5)) }
        expectErrno(.ERANGE) { _ = try dev.msixAllocIRQ(at: .index(8)) }
        // pci_msix_prepare_desc filled the new descriptor from the (masked) table entry, and
        // early activation in reservation mode pointed it at the shutdown vector.
        let d5 = try #require(dev.descriptor(index: 5))
        #expect(d5.pci.isMSIX && d5.pci.canMask && d5.pci.maskCache == 1)
        #expect(hw.msixEntry(5)?.message.data == 0xEF)
        try dev.msixFreeIRQ(five)
        #expect(dev.descriptor(index: 5) == nil)
        #expect(p.irq(five.virq) == nil)
    }

    @Test("34 pci_msix_validate_entries: duplicate legacy entries {0, 0} give -EINVAL", arguments: MSIStoreLayout.allCases)
    func case34(_ layout: MSIStoreLayout) throws {
        let (dev, hw) = pciDevice(try x86Platform(), layout: layout)
        expectErrno(.EINVAL) { _ = try dev.enableMSIXRange(entries: [0, 0], min: 2, max: 2) }
        #expect(!hw.log.contains { $0.isWrite })
        #expect(try dev.enableMSIXRange(entries: [3, 6], min: 2, max: 2) == 2)
        #expect(dev.descriptors().map(\.index) == [3, 6])
    }

    @Test("35 msix_capability_init: MASKALL|ENABLE, table read, entries written, INTx off, all entries masked, MASKALL cleared", arguments: MSIStoreLayout.allCases)
    func case35(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: 4)
        #expect(try dev.allocIRQVectors(min: 2, max: 2, flags: .msix) == 2)
        var expected: [HardwareAccess] = [
            .msixReadControl(0x0003),                 // pci_msix_vec_count
            .msixReadControl(0x0003), .msixWriteControl(0xC003),  // MASKALL | ENABLE
            .msixReadControl(0xC003),                 // table size
            .msixMapTable(entries: 4),
            .msixReadControl(0xC003),                 // msix_setup_msi_descs: pci_msix_vec_count
            .msixRead(entry: 0, .vectorControl, 1), .msixRead(entry: 1, .vectorControl, 1),
        ]
        for i in 0..<2 {                              // early activation: reserved → 0xEF on CPU 0
            expected += [.msixWrite(entry: i, .addressLo, 0xFEE0_0000), .msixWrite(entry: i, .addressHi, 0),
                         .msixWrite(entry: i, .data, 0xEF), .msixRead(entry: i, .data, 0xEF)]
        }
        expected += [.readCommand(0x0006), .writeCommand(0x0406)]                 // INTx off
        expected += (0..<4).map { .msixWrite(entry: $0, .vectorControl, 1) }      // msix_mask_all
        expected += [.msixReadControl(0xC003), .msixWriteControl(0x8003)]         // clear MASKALL
        #expect(hw.log == expected)
    }

    @Test("36 pci_write_msg_msix: rewriting an unmasked entry masks it, writes lo/hi/data, restores, flushes", arguments: MSIStoreLayout.allCases)
    func case36(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        try dev.requestIRQ(virq)
        #expect(hw.msixEntry(0)?.vectorControl == 0, "request_irq unmasked the entry")
        hw.clearLog()
        let msg = MSIMessage(addressLo: 0xFEE0_1000, data: 0x41)
        try dev.writeMSIMessage(virq: virq, msg)
        #expect(hw.log == [
            .msixWrite(entry: 0, .vectorControl, 1),
            .msixWrite(entry: 0, .addressLo, 0xFEE0_1000), .msixWrite(entry: 0, .addressHi, 0), .msixWrite(entry: 0, .data, 0x41),
            .msixWrite(entry: 0, .vectorControl, 0),
            .msixRead(entry: 0, .data, 0x41),
        ])
        #expect(dev.descriptor(index: 0)?.message == msg)
    }

    @Test("37 __msi_capability_init / pci_msi_shutdown: enable and disable traces", arguments: MSIStoreLayout.allCases)
    func case37(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: nil, msiMMC: 2, msi64: true, msiMask: true)
        #expect(try dev.allocIRQVectors(min: 1, max: 1, flags: .msi) == 1)
        let cap: UInt16 = 2 << 1 | PCIReg.MSI.is64Bit | PCIReg.MSI.perVectorMask  // 0x0184
        #expect(hw.log == [
            .msiReadControl(cap),                            // pci_msi_vec_count
            .msiReadControl(cap), .msiWriteControl(cap),     // pci_msi_set_enable(0)
            .msiReadControl(cap), .msiReadMask(0),           // msi_setup_msi_desc
            .msiWriteMask(0xF),                              // msi_multi_mask (multi_cap 2)
            .msiReadControl(cap), .msiWriteControl(cap),     // pci_write_msg_msi: MME 0
            .msiWriteAddressLo(0xFEE0_0000), .msiWriteAddressHi(0), .msiWriteData(0xEF), .msiReadControl(cap),
            .readCommand(0x0006), .writeCommand(0x0406),     // INTx off
            .msiReadControl(cap), .msiWriteControl(cap | PCIReg.MSI.enable),
        ])
        hw.clearLog()
        try dev.freeIRQVectors()
        #expect(hw.log == [
            .msiReadControl(cap | PCIReg.MSI.enable), .msiWriteControl(cap),   // clear enable
            .readCommand(0x0406), .writeCommand(0x0006),                        // INTx on
            .msiWriteMask(0),                                                   // unmask all
        ])
        #expect(dev.irq == 11)
    }

    @Test("38 msi_multi_mask: multi_cap 2 → 0xF, 5 → 0xFFFFFFFF", arguments: MSIStoreLayout.allCases)
    func case38(_ layout: MSIStoreLayout) {
        #expect(MSIDeviceData.msiMultiMask(multiCapLog2: 2) == 0xF)
        #expect(MSIDeviceData.msiMultiMask(multiCapLog2: 5) == 0xFFFF_FFFF)
        #expect(MSIDeviceData.msiMultiMask(multiCapLog2: 0) == 0x1)
    }

    @Test("39 reserve_irq_vector / msix_mask_all: after alloc, before request_irq, entries are masked with data 0xEF", arguments: MSIStoreLayout.allCases)
    func case39(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, layout: layout, msix: 8)
        #expect(try dev.allocIRQVectors(min: 4, max: 4, flags: .msix) == 4)
        for i in 0..<8 { #expect(hw.msixEntry(i)?.vectorControl == 1) }
        for i in 0..<4 {
            #expect(hw.msixEntry(i)?.message == MSIMessage(addressLo: 0xFEE0_0000, data: 0xEF))
            let irq = try #require(p.irq(try dev.irqVector(i)))
            #expect(irq.hasReservation && irq.assignedVector == nil && !irq.isActivated)
        }
        #expect(p.vectorMatrix.globalReserved == 4)
        // A message the device sends now lands on the shutdown vector.
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, data: 0xEF)) == .dropped(.shutdownVector(cpu: 0)))
    }

    @Test("40 __irq_msi_compose_msg: vector 0x41 to physical APIC 3, and to APIC 0x1234 with the extended destination ID", arguments: MSIStoreLayout.allCases)
    func case40(_ layout: MSIStoreLayout) throws {
        let m = try X86MSIFormat.compose(vector: 0x41, destinationAPICID: 3)
        #expect(m == MSIMessage(addressLo: 0xFEE0_3000, addressHi: 0, data: 0x41))
        let ext = try X86MSIFormat.compose(vector: 0x41, destinationAPICID: 0x1234, extendedDestinationID: true)
        #expect(ext.addressLo == 0xFEE3_4240 && ext.data == 0x41)
        expectErrno(.EINVAL) { _ = try X86MSIFormat.compose(vector: 0x41, destinationAPICID: 0x1234) }
        guard case .compatibility(let d) = X86MSIFormat.decode(ext, extendedDestinationID: true) else {
            Issue.record("not decoded")
            return
        }
        #expect(d.destination == 0x1234 && d.vector == 0x41 && d.destinationMode == .physical && d.deliveryMode == 0)
    }

    @Test("41 irq_matrix_alloc: an empty mask is -EINVAL, all CPUs offline is -ENOSPC", arguments: MSIStoreLayout.allCases)
    func case41(_ layout: MSIStoreLayout) {
        var m = VectorMatrix.x86(cpus: 2)
        expectErrno(.EINVAL) { _ = try m.alloc(mask: CPUMask(), reserved: false) }
        var offline = VectorMatrix(cpus: 2)
        expectErrno(.ENOSPC) { _ = try offline.alloc(mask: .first(2), reserved: false) }
    }

    @Test("42 irq_matrix_reserve_managed: failing on the 3rd CPU undoes the first two reservations", arguments: MSIStoreLayout.allCases)
    func case42(_ layout: MSIStoreLayout) throws {
        var m = VectorMatrix.x86(cpus: 4)
        while (try? m.alloc(mask: .of(2), reserved: false)) != nil {}
        #expect(m.counters(cpu: 2)?.available == 0)
        let before = (0..<4).map { m.counters(cpu: $0) }
        let globalBefore = m.globalAvailable
        expectErrno(.ENOSPC) { try m.reserveManaged(mask: .first(4)) }
        #expect((0..<4).map { m.counters(cpu: $0) } == before)
        #expect(m.globalAvailable == globalBefore)
        #expect(m.managedVectors(cpu: 0).isEmpty && m.managedVectors(cpu: 1).isEmpty)
    }

    @Test("43 pci_ims_alloc_irq: two allocations get 0 and 1, after freeing 0 the next gets 0; the cookie is kept", arguments: MSIStoreLayout.allCases)
    func case43(_ layout: MSIStoreLayout) throws {
        let p = try irPlatform()
        let (dev, _) = pciDevice(p, layout: layout)
        let chip = RecordingIMSChip(name: "IMS-IDXD", slots: 64)
        try dev.createIMSDomain(template: .ims(chip: chip), hwsize: 64)
        #expect(dev.domainInfo(.secondary)?.name == "IR-IMS-IDXD-0000:00:03.0")
        let a = try dev.imsAllocIRQ(cookie: 0x11)
        let b = try dev.imsAllocIRQ(cookie: 0x22)
        #expect(a.index == 0 && b.index == 1)
        #expect(dev.descriptor(domain: .secondary, index: 1)?.instanceCookie == 0x22)
        #expect(dev.descriptor(domain: .secondary, index: 1)?.domainCookie == 0x1010, "prepare_desc set the slot cookie")
        try dev.imsFreeIRQ(a)
        let c = try dev.imsAllocIRQ(cookie: 0x33)
        #expect(c.index == 0)
        #expect(dev.descriptor(domain: .secondary, index: 0)?.instanceCookie == 0x33)
        #expect(chip.calls.filter { if case .prepare = $0 { true } else { false } }.count == 3)
    }

    @Test("44 pci_create_ims_domain: a template whose chip has irq_set_affinity is refused", arguments: MSIStoreLayout.allCases)
    func case44(_ layout: MSIStoreLayout) throws {
        let p = try irPlatform()
        let (dev, _) = pciDevice(p, layout: layout)
        let chip = RecordingIMSChip(operations: [.mask, .unmask, .writeMessage, .setAffinity])
        expectErrno(.EINVAL) { try dev.createIMSDomain(template: .ims(chip: chip), hwsize: 16) }
        #expect(dev.domainInfo(.secondary) == nil)
        var noSimple = MSIDomainTemplate.ims(chip: RecordingIMSChip())
        noSimple.flags = [.freeDescriptors]
        expectErrno(.EINVAL) { try dev.createIMSDomain(template: noSimple, hwsize: 16) }
        var noWrite = MSIDomainTemplate.ims(chip: RecordingIMSChip())
        noWrite.chipOperations = [.mask, .unmask]
        expectErrno(.EINVAL) { try dev.createIMSDomain(template: noWrite, hwsize: 16) }
    }
}
