// The domain-indexed store: the number of domains comes from one configuration value, and a
// domain's descriptors can live in a consumer-owned store with the same behaviour.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("domain-indexed stores and external stores")
struct DomainStoreTests {
    func imsTemplate(slots: Int? = nil) -> MSIDomainTemplate { .ims(chip: RecordingIMSChip(slots: slots)) }

    @Test("raising maxDeviceDomains to 3 gives a working third domain with no other change")
    func thirdDomain() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: 3))
        let (dev, _) = pciDevice(p)
        #expect(dev.maxDeviceDomains == 3)
        let third = MSIDomainID(rawValue: 2)
        try dev.createIMSDomain(template: imsTemplate(), hwsize: 16)
        try dev.createDomain(third, template: imsTemplate(), hwsize: 8)
        #expect(dev.domainInfo(third)?.hwsize == 8)
        _ = try dev.allocIRQs(domain: third, first: 2, last: 4)
        let ims = try dev.allocIRQ(domain: .secondary, at: .any)
        let any = try dev.allocIRQ(domain: third, at: .any)
        #expect(any.index == 0)
        #expect(dev.descriptors(domain: third).map(\.index) == [0, 2, 3, 4])
        #expect(dev.descriptors(domain: .secondary).map(\.index) == [0], "the domains' stores are separate")
        let virqs = try (0..<5).map { try dev.getVirq(domain: third, index: $0) }
        #expect(virqs[1] == 0 && virqs.filter { $0 != 0 }.count == 4 && !virqs.contains(ims.virq))
        let visited = try dev.withLockedDescriptors { (d: inout MSIDeviceData) throws(MSIError) -> [Int] in
            var r: [Int] = []
            d.forEachDescriptor(domain: third, .associated) { _, desc in r.append(desc.index) }
            var cur = try d.first(domain: third, .notAssociated)
            while let c = cur { r.append(-c.index); cur = try d.next(domain: third, .notAssociated) }
            return r
        }
        #expect(visited == [0, 2, 3, 4])
        expectErrno(.EINVAL) { try dev.createDomain(MSIDomainID(rawValue: 3), template: imsTemplate(), hwsize: 8) }
        try dev.freeAllIRQs(domain: third)
        #expect(dev.descriptors(domain: third).isEmpty)
        #expect(dev.descriptors(domain: .secondary).count == 1)
        #expect(dev.withLockedDescriptors { $0.checkStoreInvariants() } == nil)
    }

    @Test("the default configuration refuses domain id 2; maxDeviceDomains 1 models v6.10 (no IMS domain)")
    func domainCountBounds() throws {
        let (dev, _) = pciDevice(try x86Platform())
        expectErrno(.EINVAL) { try dev.createDomain(MSIDomainID(rawValue: 2), template: imsTemplate(), hwsize: 8) }
        dev.setupDeviceData()
        expectErrno(.EINVAL) { _ = try dev.getVirq(domain: MSIDomainID(rawValue: 2), index: 0) }
        let v610 = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: 1))
        let (old, _) = pciDevice(v610)
        expectErrno(.EINVAL) { try old.createIMSDomain(template: imsTemplate(), hwsize: 8) }
        #expect(try old.allocIRQVectors(min: 1, max: 4, flags: .msix) == 4, "MSI-X on domain 0 is unaffected")
        #expect(throws: MSIError.self) { try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: 0)) }
        #expect(throws: MSIError.self) { try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, maxDeviceDomains: 9)) }
    }

    @Test("a consumer-owned store: attached while its domain lives, refused elsewhere, detached when emptied")
    func externalStoreLifetime() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        let (other, _) = pciDevice(p, name: "0000:00:05.0")
        let store = MSIDescriptorStore()
        #expect(!store.isAttached)
        try dev.createIMSDomain(template: imsTemplate(), hwsize: 32, store: store)
        #expect(store.isAttached && dev.usesExternalStore(.secondary) && !dev.usesExternalStore(.default))
        let maps = try (0..<3).map { _ in try dev.imsAllocIRQ(cookie: 7) }
        #expect(maps.map(\.index) == [0, 1, 2])
        expectErrno(.EBUSY) { try other.createIMSDomain(template: imsTemplate(), hwsize: 32, store: store) }
        #expect(other.domainInfo(.secondary) == nil, "the refused creation left nothing behind")
        #expect(dev.descriptors(domain: .secondary).count == 3)
        // Teardown of the consumer: free its interrupts, remove its domain, take the store back.
        try dev.freeAllIRQs(domain: .secondary)
        dev.removeDomain(.secondary)
        #expect(!store.isAttached && !dev.usesExternalStore(.secondary))
        #expect(p.allocatedIRQs.isEmpty)
        try other.createIMSDomain(template: imsTemplate(), hwsize: 32, store: store)
        #expect(try other.imsAllocIRQ(cookie: 1).index == 0, "the reused store is empty")
    }

    @Test("a domain removed with descriptors left keeps its store; a new store there is refused with EBUSY")
    func removeWithLeftovers() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        let store = MSIDescriptorStore()
        try dev.createIMSDomain(template: imsTemplate(), hwsize: 8, store: store)
        _ = try dev.imsAllocIRQ(cookie: 0)
        dev.removeDomain(.secondary)
        #expect(store.isAttached && dev.descriptors(domain: .secondary).count == 1)
        let fresh = MSIDescriptorStore()
        expectErrno(.EBUSY) { try dev.createIMSDomain(template: imsTemplate(), hwsize: 8, store: fresh) }
        #expect(!fresh.isAttached && dev.domainInfo(.secondary) == nil)
        dev.releaseDeviceData()
        #expect(!store.isAttached, "release empties and detaches every store")
        #expect(dev.warnings.contains { $0.function == "msi_device_data_release" })
    }

    @Test("the ASSOCIATED mark follows association through alloc, free and leaks", arguments: MSIStoreLayout.allCases)
    func marksFollowAssociation(_ layout: MSIStoreLayout) throws {
        let p = try x86Platform()
        var t = MSIDomainTemplate.ims(chip: RecordingIMSChip())
        t.flags = []  // descriptors inserted by hand, kept when their interrupts are freed
        let dev = try deviceWithDomain(p, t, hwsize: 256, layout: layout)
        for i in stride(from: 0, to: 256, by: 3) { try dev.insertDescriptor(MSIDescriptor(index: i), domain: .secondary) }
        _ = try dev.allocIRQs(domain: .secondary, first: 60, last: 200)
        let assoc = dev.descriptors(domain: .secondary, .associated).map(\.index)
        let notAssoc = dev.descriptors(domain: .secondary, .notAssociated).map(\.index)
        #expect(assoc == Array(stride(from: 60, through: 200, by: 3)))
        #expect(Set(assoc).isDisjoint(with: notAssoc) && assoc.count + notAssoc.count == dev.descriptors(domain: .secondary).count)
        #expect(dev.withLockedDescriptors { $0.checkStoreInvariants() } == nil)
        try dev.freeIRQs(domain: .secondary, first: 0, last: 255)
        #expect(dev.descriptors(domain: .secondary, .associated).isEmpty)
        #expect(dev.withLockedDescriptors { $0.checkStoreInvariants() } == nil)
    }
}
