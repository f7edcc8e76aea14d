// Conformance cases 1–21 of Docs/kernel-msi-model.md §6: the descriptor store, domains, iteration,
// lookup and the core allocator (kernel/irq/msi.c).
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("kernel/irq/msi.c: store, domains, iteration, allocation")
struct ConformanceStoreTests {
    /// An IMS-style domain (non-PCI token) of `hwsize` on a fresh device.
    func imsDevice(hwsize: Int, layout: MSIStoreLayout,
                   flags: MSIDomainFlags = [.allocSimpleDescriptors, .freeDescriptors]) throws -> (MSIPlatform, MSIDevice) {
        let p = try x86Platform()
        var t = MSIDomainTemplate.ims(chip: RecordingIMSChip())
        t.flags = flags
        return (p, try deviceWithDomain(p, t, hwsize: hwsize, layout: layout))
    }

    @Test("1 msi_setup_device_data: a second call succeeds and keeps the same data", arguments: MSIStoreLayout.allCases)
    func case01(_ layout: MSIStoreLayout) {
        let p = try! x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        let a = dev.setupDeviceData()
        let b = dev.setupDeviceData()
        #expect(a == b)
        dev.releaseDeviceData()
        #expect(dev.setupDeviceData() != a, "after release a new msi_device_data is allocated")
    }

    @Test("2 __msi_create_irq_domain: hwsize 0 means 65536, hwsize 65537 fails", arguments: MSIStoreLayout.allCases)
    func case02(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        try dev.createDomain(.default, template: .pciMSIX(), hwsize: 0)
        #expect(dev.domainInfo(.default)?.hwsize == 65536)
        let (dev2, _) = pciDevice(p, layout: layout, name: "0000:00:05.0")
        expectErrno(.EINVAL) { try dev2.createDomain(.default, template: .pciMSIX(), hwsize: 65537) }
        #expect(dev2.domainInfo(.default) == nil)
    }

    @Test("3 msi_create_device_irq_domain: a second domain at the same id fails with a WARN", arguments: MSIStoreLayout.allCases)
    func case03(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        try dev.createDomain(.default, template: .pciMSIX(), hwsize: 8)
        expectErrno(.EEXIST) { try dev.createDomain(.default, template: .pciMSIX(), hwsize: 16) }
        #expect(dev.domainInfo(.default)?.hwsize == 8)
        #expect(dev.warnings.contains { $0.function == "msi_create_device_irq_domain" })
    }

    @Test("4 msi_create_device_irq_domain: domid MSI_MAX_DEVICE_IRQDOMAINS fails", arguments: MSIStoreLayout.allCases)
    func case04(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        expectErrno(.EINVAL) {
            try dev.createDomain(MSIDomainID(rawValue: MSIDomainID.maxDomains), template: .pciMSIX(), hwsize: 8)
        }
    }

    @Test("5 msi_insert_desc: occupied index gives -EBUSY, first desc intact", arguments: MSIStoreLayout.allCases)
    func case05(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        var first = MSIDescriptor(index: 5)
        first.pci.defaultIRQ = 42
        try dev.insertDescriptor(first, domain: .secondary)
        expectErrno(.EBUSY) { try dev.insertDescriptor(MSIDescriptor(index: 5, vectorCount: 2), domain: .secondary) }
        let kept = try #require(dev.descriptor(domain: .secondary, index: 5))
        #expect(kept.pci.defaultIRQ == 42 && kept.vectorCount == 1)
        #expect(dev.descriptors(domain: .secondary).count == 1)
    }

    @Test("6 msi_insert_desc: index >= hwsize gives -ERANGE", arguments: MSIStoreLayout.allCases)
    func case06(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        expectErrno(.ERANGE) { try dev.insertDescriptor(MSIDescriptor(index: 8), domain: .secondary) }
        #expect(dev.descriptors(domain: .secondary).isEmpty)
    }

    @Test("7 msi_insert_desc (xa_alloc): MSI_ANY_INDEX takes the lowest free index", arguments: MSIStoreLayout.allCases)
    func case07(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        for i in [0, 1, 3] { _ = try dev.allocIRQ(domain: .secondary, at: .index(i)) }
        let map = try dev.allocIRQ(domain: .secondary, at: .any)
        #expect(map.index == 2)
        #expect(map.virq > 0)
    }

    @Test("8 msi_insert_desc (xa_alloc): a full domain gives -EBUSY", arguments: MSIStoreLayout.allCases)
    func case08(_ layout: MSIStoreLayout) throws {
        let (p, dev) = try imsDevice(hwsize: 4, layout: layout)
        for _ in 0..<4 { _ = try dev.allocIRQ(domain: .secondary, at: .any) }
        let before = p.allocatedIRQs
        expectErrno(.EBUSY) { _ = try dev.allocIRQ(domain: .secondary, at: .any) }
        #expect(p.allocatedIRQs == before)
    }

    @Test("9 msi_domain_alloc_irq_at: no domain at domid gives -ENODEV", arguments: MSIStoreLayout.allCases)
    func case09(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        dev.setupDeviceData()
        expectErrno(.ENODEV) { _ = try dev.allocIRQ(domain: .secondary, at: .any) }
    }

    @Test("10 msi_insert_desc: alloc_irq_at(index = hwsize) gives -ERANGE", arguments: MSIStoreLayout.allCases)
    func case10(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        expectErrno(.ERANGE) { _ = try dev.allocIRQ(domain: .secondary, at: .index(8)) }
    }

    @Test("11 msi_ctrl_valid: first > last or last >= hwsize gives -EINVAL with a WARN", arguments: MSIStoreLayout.allCases)
    func case11(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        expectErrno(.EINVAL) { _ = try dev.allocIRQs(domain: .secondary, first: 3, last: 2) }
        expectErrno(.EINVAL) { _ = try dev.allocIRQs(domain: .secondary, first: 0, last: 8) }
        #expect(dev.warnings.filter { $0.function == "msi_ctrl_valid" }.count == 2)
        #expect(dev.descriptors(domain: .secondary).isEmpty)
    }

    @Test("12 msi_ctrl_valid: with an MSI parent, an empty domain slot gives -EINVAL, not -ENODEV", arguments: MSIStoreLayout.allCases)
    func case12(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        dev.setupDeviceData()
        expectErrno(.EINVAL) { _ = try dev.allocIRQs(domain: .secondary, first: 0, last: 0) }
        // Without an MSI parent the validity check passes and the missing domain is -ENODEV.
        let orphan = MSIDevice(name: "0000:00:06.0", platform: p, hasMSIParent: false, storeLayout: layout)
        orphan.setupDeviceData()
        expectErrno(.ENODEV) { _ = try orphan.allocIRQs(domain: .secondary, first: 0, last: 0) }
    }

    @Test("13 msi_find_desc: iteration visits indices in ascending order", arguments: MSIStoreLayout.allCases)
    func case13(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        for i in [7, 2, 5] { try dev.insertDescriptor(MSIDescriptor(index: i), domain: .secondary) }
        let seen = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [Int] in
            var r: [Int] = []
            var cur = try d.first(domain: .secondary, .all)
            while let c = cur { r.append(c.index); cur = try d.next(domain: .secondary, .all) }
            return r
        }
        #expect(seen == [2, 5, 7])
    }

    @Test("14 msi_desc_match: ASSOCIATED and NOTASSOCIATED filters", arguments: MSIStoreLayout.allCases)
    func case14(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p, layout: layout)
        try dev.createDomain(.default, template: .pciMSIX(), hwsize: 8)
        for i in [7, 2, 5] { try dev.insertDescriptor(MSIDescriptor(index: i)) }
        #expect(try dev.allocIRQs(first: 2, last: 2) == .allocated)
        func walk(_ f: MSIDescriptorFilter) throws -> [Int] {
            try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [Int] in
                var r: [Int] = []
                var cur = try d.first(f)
                while let c = cur { r.append(c.index); cur = try d.next(f) }
                return r
            }
        }
        #expect(try walk(.associated) == [2])
        #expect(try walk(.notAssociated) == [5, 7])
        #expect(try walk(.all) == [2, 5, 7])
    }

    @Test("15 msi_next_desc: freeing the current descriptor inside the loop continues with the next", arguments: MSIStoreLayout.allCases)
    func case15(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 16, layout: layout)
        for i in [1, 4, 9, 12] { try dev.insertDescriptor(MSIDescriptor(index: i), domain: .secondary) }
        let visited = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [Int] in
            var r: [Int] = []
            var cur = try d.first(domain: .secondary)
            while let c = cur {
                r.append(c.index)
                if c.index == 4 || c.index == 9 { try d.freeDescriptors(domain: .secondary, first: c.index, last: c.index) }
                cur = try d.next(domain: .secondary)
            }
            return r
        }
        #expect(visited == [1, 4, 9, 12])
        #expect(dev.descriptors(domain: .secondary).map(\.index) == [1, 12])
        // The closure form does the same.
        try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in
            var seen: [Int] = []
            try d.forEachDescriptor(domain: .secondary) { (d: inout MSIDeviceData, desc) throws(MSIError) in
                seen.append(desc.index)
                try d.freeDescriptors(domain: .secondary, first: desc.index, last: desc.index)
            }
            #expect(seen == [1, 12])
        }
        #expect(dev.descriptors(domain: .secondary).isEmpty)
    }

    @Test("16 __msi_unlock_descs: unlocking parks the cursor, msi_next_desc then returns NULL", arguments: MSIStoreLayout.allCases)
    func case16(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout)
        for i in [1, 2, 3] { try dev.insertDescriptor(MSIDescriptor(index: i), domain: .secondary) }
        let firstIndex = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.first(domain: .secondary)?.index }
        #expect(firstIndex == 1)
        let afterRelock = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) in try d.next(domain: .secondary) }
        #expect(afterRelock == nil)
    }

    @Test("17 msi_domain_get_virq: absent / unassociated give 0, index 70000 gives 0 with a WARN", arguments: MSIStoreLayout.allCases)
    func case17(_ layout: MSIStoreLayout) throws {
        let (_, dev) = try imsDevice(hwsize: 8, layout: layout, flags: [.allocSimpleDescriptors])
        try dev.insertDescriptor(MSIDescriptor(index: 3), domain: .secondary)
        #expect(try dev.getVirq(domain: .secondary, index: 5) == 0)
        #expect(try dev.getVirq(domain: .secondary, index: 3) == 0)
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: .secondary, index: 70000) }
        #expect(dev.warnings.contains { $0.function == "msi_domain_get_virq" })
        let map = try dev.allocIRQ(domain: .secondary, at: .index(6))
        #expect(try dev.getVirq(domain: .secondary, index: 6) == map.virq)
    }

    @Test("18 msi_domain_free_descs: an associated descriptor is WARNed, erased and leaked", arguments: MSIStoreLayout.allCases)
    func case18(_ layout: MSIStoreLayout) throws {
        let (p, dev) = try imsDevice(hwsize: 8, layout: layout)
        let map = try dev.allocIRQ(domain: .secondary, at: .index(2))
        try dev.freeDescriptors(domain: .secondary, first: 0, last: 7)
        #expect(dev.descriptor(domain: .secondary, index: 2) == nil)
        #expect(dev.warnings.contains { $0.function == "msi_domain_free_descs" })
        #expect(p.irq(map.virq) != nil, "the interrupt is leaked, not freed")
    }

    @Test("19 __msi_domain_free_irqs: freeing an empty range is a no-op", arguments: MSIStoreLayout.allCases)
    func case19(_ layout: MSIStoreLayout) throws {
        let (p, dev) = try imsDevice(hwsize: 8, layout: layout)
        let map = try dev.allocIRQ(domain: .secondary, at: .index(0))
        try dev.freeIRQs(domain: .secondary, first: 4, last: 7)
        #expect(dev.descriptors(domain: .secondary).map(\.index) == [0])
        #expect(p.allocatedIRQs == [map.virq])
        #expect(dev.warnings.isEmpty)
    }

    @Test("20 msi_domain_free_locked: FREE_MSI_DESCS erases descriptors, without it they stay with irq 0", arguments: MSIStoreLayout.allCases)
    func case20(_ layout: MSIStoreLayout) throws {
        let (p, withFree) = try imsDevice(hwsize: 8, layout: layout)
        _ = try withFree.allocIRQs(domain: .secondary, first: 0, last: 1)
        try withFree.freeIRQs(domain: .secondary, first: 0, last: 1)
        #expect(withFree.descriptors(domain: .secondary).isEmpty)

        var t = MSIDomainTemplate.ims(chip: RecordingIMSChip())
        t.flags = [.allocSimpleDescriptors]
        let keep = try deviceWithDomain(p, t, hwsize: 8, layout: layout)
        _ = try keep.allocIRQs(domain: .secondary, first: 0, last: 1)
        #expect(keep.descriptors(domain: .secondary, .associated).count == 2)
        try keep.freeIRQs(domain: .secondary, first: 0, last: 1)
        let left = keep.descriptors(domain: .secondary)
        #expect(left.map(\.index) == [0, 1])
        #expect(left.allSatisfy { $0.virq == 0 })
        #expect(p.allocatedIRQs.isEmpty)
    }

    @Test("21 msi_handle_pci_fail: a non-PCI domain failing at index 2 gives -ENOSPC and frees 0 and 1", arguments: MSIStoreLayout.allCases)
    func case21(_ layout: MSIStoreLayout) throws {
        let (p, dev) = try imsDevice(hwsize: 8, layout: layout)
        p.failIRQAllocations(after: 2)
        expectErrno(.ENOSPC) { _ = try dev.allocIRQs(domain: .secondary, first: 0, last: 3) }
        #expect(dev.descriptors(domain: .secondary).isEmpty)
        #expect(p.allocatedIRQs.isEmpty)
        #expect(p.vectorMatrix.globalReserved == 0)
    }
}
