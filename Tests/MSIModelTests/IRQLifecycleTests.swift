// request_irq / free_irq, delivery through the vector domain and through interrupt remapping,
// managed affinity, IMS end to end, vector exhaustion.
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("request_irq, free_irq and delivery")
struct IRQLifecycleTests {
    @Test("request_irq in reservation mode takes a real vector, rewrites the masked entry, then unmasks")
    func requestTrace() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let virq = try dev.irqVector(0)
        hw.clearLog()
        let reservedBefore = p.vectorMatrix.globalReserved
        try dev.requestIRQ(virq)
        let irq = try #require(p.irq(virq))
        let vector = try #require(irq.assignedVector)
        let cpu = try #require(irq.assignedCPU)
        let msg = try X86MSIFormat.compose(vector: vector, destinationAPICID: UInt32(cpu))
        #expect(hw.log == [
            .msixWrite(entry: 0, .addressLo, msg.addressLo), .msixWrite(entry: 0, .addressHi, 0),
            .msixWrite(entry: 0, .data, msg.data), .msixRead(entry: 0, .data, msg.data),
            .msixWrite(entry: 0, .vectorControl, 0),
        ])
        #expect(irq.isRequested && irq.isStarted && irq.isActivated && !irq.isMasked && !irq.hasReservation)
        #expect(p.vectorMatrix.globalReserved == reservedBefore - 1)
        #expect(dev.descriptor(index: 0)?.pci.maskCache == 0)
    }

    @Test("free_irq masks (with the flush read of the table base), writes the all-zero message and re-reserves")
    func freeTrace() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        let virq = try dev.irqVector(1)
        try dev.requestIRQ(virq)
        let vector = try #require(p.irq(virq)?.assignedVector)
        let cpu = try #require(p.irq(virq)?.assignedCPU)
        hw.clearLog()
        try dev.freeIRQ(virq)
        #expect(hw.log == [
            .msixWrite(entry: 1, .vectorControl, 1), .msixRead(entry: 0, .addressLo, 0xFEE0_0000),
            .msixWrite(entry: 1, .addressLo, 0), .msixWrite(entry: 1, .addressHi, 0), .msixWrite(entry: 1, .data, 0),
            .msixRead(entry: 1, .data, 0),
        ])
        let irq = try #require(p.irq(virq))
        #expect(!irq.isRequested && !irq.isActivated && irq.isMasked && irq.hasReservation)
        #expect(irq.effectiveVector == 0xEF)
        #expect(!p.vectorMatrix.allocatedVectors(cpu: cpu).contains(vector))
        // The vector no longer routes anywhere.
        let old = try X86MSIFormat.compose(vector: vector, destinationAPICID: UInt32(cpu))
        #expect(p.deliver(old) == .dropped(.noIRQ(cpu: cpu, vector: vector)))
        expectErrno(.EINVAL) { try dev.freeIRQ(virq) }
        #expect(dev.warnings.contains { $0.message.contains("already-free IRQ") })
        // Request again: a new vector.
        try dev.requestIRQ(virq)
        #expect(p.irq(virq)?.assignedVector != nil)
    }

    @Test("deliver: compatibility-format messages reach the requested interrupt and count per CPU")
    func deliverX86() throws {
        let p = try x86Platform(cpus: 4)
        let (dev, hw) = pciDevice(p, msix: 8)
        _ = try dev.allocIRQVectors(min: 8, max: 8, flags: .msix)
        let fired = Counter()
        var virqs: [Int] = []
        for i in 0..<8 {
            let v = try dev.irqVector(i)
            virqs.append(v)
            try dev.requestIRQ(v) { _ in fired.bump() }
        }
        for (i, v) in virqs.enumerated() {
            let (msg, ctrl) = try #require(hw.msixEntry(i))
            #expect(ctrl == 0)
            let irq = try #require(p.irq(v))
            #expect(p.deliver(msg) == .delivered(virq: v, cpu: irq.assignedCPU ?? -1, vector: irq.assignedVector ?? -1))
        }
        #expect(fired.value == 8)
        let cpus = Set(virqs.compactMap { p.irq($0)?.assignedCPU })
        #expect(cpus.count > 1, "irq_matrix_alloc spreads over the CPU with the most free vectors")
        #expect(virqs.map { p.irq($0)?.count ?? 0 } == Array(repeating: 1, count: 8))
        // An allocated but unrequested interrupt is dropped, not counted.
        try dev.freeIRQ(virqs[0])
        let (stale, _) = try #require(hw.msixEntry(0))
        #expect(stale == .zero)
        #expect(p.deliver(stale) == .dropped(.badAddress(0)))
    }

    @Test("deliver: drop reasons — bad address, unknown APIC, exception vector, system vector, no irq, NMI")
    func deliverDrops() throws {
        let p = try x86Platform(cpus: 2)
        #expect(p.deliver(MSIMessage(addressLo: 0x1000, data: 0x41)) == .dropped(.badAddress(0x1000)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, addressHi: 1, data: 0x41)) == .dropped(.badAddress(0x1_FEE0_0000)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_9000, data: 0x41)) == .dropped(.noSuchDestination(9)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, data: 0x10)) == .dropped(.invalidVector(0x10)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_1000, data: 0xFD)) == .dropped(.systemVector(cpu: 1, vector: 0xFD)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_1000, data: 0x41)) == .dropped(.noIRQ(cpu: 1, vector: 0x41)))
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, data: 0x400 | 0x41)) == .dropped(.unsupportedDeliveryMode(4)))
        // ISA vector 0x31 on CPU 0 is legacy irq 1, which nobody requested here.
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, data: 0x31)) == .dropped(.notRequested(virq: 1, cpu: 0, vector: 0x31)))
        // A remappable message without remapping.
        #expect(p.deliver(X86MSIFormat.composeRemappable(handle: 3, subhandle: 0)) == .dropped(.remappingFault(.remappingDisabled)))
    }

    @Test("Intel remapping: messages carry the IRTE handle, the IRTE carries CPU and vector, multi-MSI uses subhandles")
    func remappedDelivery() throws {
        let p = try irPlatform(cpus: 2)
        let (dev, hw) = pciDevice(p, msix: nil, msiMMC: 2)
        #expect(try dev.allocIRQVectors(min: 4, max: 4, flags: .msi) == 4)
        let base = try dev.irqVector(0)
        let handle = try #require(p.irq(base)?.irteIndex)
        let written = hw.msiRegisters.message
        #expect(written == X86MSIFormat.composeRemappable(handle: handle, subhandle: 0))
        guard case .remappable(let r) = X86MSIFormat.decode(written) else { Issue.record("not remappable"); return }
        #expect(r.handle == handle && r.subhandleValid && r.subhandle == 0)
        // Before request_irq the early (reservation) activation already went through the
        // remapping domain: the IRTE is present and points at the shutdown vector on CPU 0.
        #expect(p.irte(handle) == IRTEntry(present: true, vector: 0xEF, cpu: 0, destinationAPICID: 0))
        #expect(p.deliver(written) == .dropped(.shutdownVector(cpu: 0)))
        for i in 0..<4 { try dev.requestIRQ(base + i) }
        for i in 0..<4 {
            let e = try #require(p.irte(handle + i))
            #expect(e.present && e.vector == p.irq(base + i)?.assignedVector)
            // The device ORs the vector number into the low data bits.
            var m = written
            m.data |= UInt32(i)
            #expect(p.deliver(m) == .delivered(virq: base + i, cpu: e.cpu, vector: e.vector))
        }
        #expect(hw.msiRegisters.mask == 0, "every requested vector is unmasked")
        #expect(p.deliver(MSIMessage(addressLo: 0xFEE0_0000, data: 0x41)) == .dropped(.remappingFault(.compatibilityFormatBlocked)))
        #expect(p.deliver(X86MSIFormat.composeRemappable(handle: 65535, subhandle: 5)) == .dropped(.remappingFault(.indexOutOfRange(65540))))
        for i in 0..<4 { try dev.freeIRQ(base + i) }
        #expect(p.irte(handle)?.present == false, "deactivation clears the IRTE")
        #expect(p.deliver(written) == .dropped(.remappingFault(.entryNotPresent(handle))))
        try dev.freeIRQVectors()
        #expect(p.allocatedIRQs.isEmpty)
    }

    @Test("PCI_IRQ_AFFINITY: vectors capped at the CPU count, managed masks spread, reserved on every CPU, vector taken at request")
    func managedAffinity() throws {
        let p = try x86Platform(cpus: 4)
        let (dev, _) = pciDevice(p, msix: 16)
        let affd = IRQAffinity(preVectors: 1)
        #expect(try dev.allocIRQVectors(min: 2, max: 16, flags: [.msix, .affinity], affinity: affd) == 5)
        let irqs = try (0..<5).map { try #require(p.irq(try dev.irqVector($0))) }
        #expect(!irqs[0].isManaged && irqs[0].affinity == .first(4))
        #expect(irqs.dropFirst().filter { !$0.isManaged }.isEmpty)
        #expect(irqs[1...].map(\.affinity) == [.of(0), .of(1), .of(2), .of(3)])
        #expect((0..<4).map { p.vectorMatrix.counters(cpu: $0)?.managed } == [1, 1, 1, 1])
        try dev.requestIRQ(irqs[3].virq)
        let after = try #require(p.irq(irqs[3].virq))
        #expect(after.assignedCPU == 2 && after.assignedVector != nil)
        #expect(p.vectorMatrix.counters(cpu: 2)?.managedAllocated == 1)
        try dev.freeIRQ(irqs[3].virq)
        #expect(p.vectorMatrix.counters(cpu: 2)?.managedAllocated == 0)
        #expect(p.vectorMatrix.counters(cpu: 2)?.managed == 1, "a managed vector stays reserved after free_irq")
        try dev.freeIRQVectors()
        #expect((0..<4).map { p.vectorMatrix.counters(cpu: $0)?.managed } == [0, 0, 0, 0])
    }

    @Test("a managed interrupt whose CPUs are all offline stays in managed shutdown when requested")
    func managedShutdown() throws {
        let p = try x86Platform(cpus: 2)
        try p.setCPUOnline(1, false)
        let (dev, _) = pciDevice(p, msix: 4)
        #expect(try dev.allocIRQVectors(min: 2, max: 2, flags: [.msix, .affinity]) == 2)
        let v1 = try dev.irqVector(1)
        #expect(p.irq(v1)?.affinity == .of(1))
        try dev.requestIRQ(v1)
        let irq = try #require(p.irq(v1))
        #expect(irq.isRequested && irq.isManagedShutdown && !irq.isStarted && irq.assignedVector == nil)
        try dev.freeIRQ(v1)
        try dev.freeIRQVectors()
        #expect(p.vectorMatrix.counters(cpu: 1)?.managed == 0)
    }

    @Test("IMS end to end: prepare, request writes the real message and unmasks, delivery, free masks and zeroes")
    func imsFlow() throws {
        let p = try x86Platform()
        let (dev, _) = pciDevice(p)
        let chip = RecordingIMSChip(name: "IMS-SW")
        try dev.createIMSDomain(template: .ims(chip: chip), hwsize: 0)
        #expect(dev.domainInfo(.secondary)?.hwsize == 65536)
        let map = try dev.imsAllocIRQ(cookie: 7)
        #expect(chip.calls == [.prepare(0)], "IMS templates do not activate early")
        #expect(p.irq(map.virq)?.hasReservation == true)
        let hits = Counter()
        try dev.requestIRQ(map.virq) { _ in hits.bump() }
        let slot = try #require(chip.slot(0))
        #expect(!slot.masked)
        let irq = try #require(p.irq(map.virq))
        let expected = try X86MSIFormat.compose(vector: irq.assignedVector ?? 0, destinationAPICID: UInt32(irq.assignedCPU ?? 0))
        #expect(slot.message == expected)
        #expect(p.deliver(slot.message) == .delivered(virq: map.virq, cpu: irq.assignedCPU ?? 0, vector: irq.assignedVector ?? 0))
        #expect(hits.value == 1)
        try dev.freeIRQ(map.virq)
        #expect(Array(chip.calls.suffix(2)) == [.mask(0), .write(0, .zero)])
        // The vector stays with the interrupt: IMS is not in reservation mode, so after the first
        // activation the vector domain keeps it until the interrupt is freed.
        #expect(p.irq(map.virq)?.assignedVector == irq.assignedVector)
        try dev.imsFreeIRQ(map)
        #expect(p.vectorMatrix.allocatedVectors(cpu: irq.assignedCPU ?? 0).contains(irq.assignedVector ?? 0) == false)
        #expect(dev.descriptors(domain: .secondary).isEmpty)
    }

    @Test("an IMS chip with irq_shutdown gets shutdown instead of mask on free_irq")
    func imsShutdown() throws {
        let p = try irPlatform()
        let (dev, _) = pciDevice(p)
        let chip = RecordingIMSChip(operations: [.mask, .unmask, .writeMessage, .shutdown])
        try dev.createIMSDomain(template: .ims(chip: chip), hwsize: 8)
        let map = try dev.imsAllocIRQ(cookie: 1)
        try dev.requestIRQ(map.virq)
        try dev.freeIRQ(map.virq)
        #expect(chip.calls.contains(.shutdown(0)) && !chip.calls.contains(.mask(0)))
    }

    @Test("reservation mode: vectors are exhausted at request_irq (-ENOSPC), not at allocation")
    func vectorExhaustion() throws {
        let p = try x86Platform(cpus: 1)
        let (dev, _) = pciDevice(p, msix: 256)
        #expect(try dev.allocIRQVectors(min: 256, max: 256, flags: .msix) == 256)
        let available = try #require(p.vectorMatrix.counters(cpu: 0)?.available)
        #expect(available == 0xEC - 0x20 - 2 - 15)
        #expect(p.warnings.contains { $0.message.contains("reservation exceeds available") })
        var granted = 0
        for i in 0..<256 {
            let v = try dev.irqVector(i)
            do {
                try dev.requestIRQ(v)
                granted += 1
            } catch {
                #expect(error.code == .ENOSPC)
                #expect(p.irq(v)?.isRequested == false && p.irq(v)?.hasReservation == true)
                break
            }
        }
        #expect(granted == available)
        for i in 0..<granted { try dev.freeIRQ(try dev.irqVector(i)) }
        try dev.freeIRQVectors()
        #expect(p.vectorMatrix.globalReserved == 0)
        #expect(p.vectorMatrix.counters(cpu: 0)?.available == available)
    }

    @Test("a device not in D0 only caches messages; pci_free_irq_vectors refuses while an irq is requested")
    func powerStateAndBusyFree() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        let v = try dev.irqVector(0)
        try dev.requestIRQ(v)
        expectErrno(.EBUSY) { try dev.freeIRQVectors() }
        dev.setPowerState(.lowPower)
        hw.clearLog()
        let m = MSIMessage(addressLo: 0xFEE0_0000, data: 0x55)
        try dev.writeMSIMessage(virq: v, m)
        #expect(hw.log.isEmpty)
        #expect(dev.descriptor(index: 0)?.message == m)
        dev.setPowerState(.d0)
        try dev.freeIRQ(v)
        try dev.freeIRQVectors()
        #expect(!dev.isMSIXEnabled && dev.descriptors().isEmpty)
    }

    @Test("concurrent deliveries while other threads request and free interrupts")
    func concurrentDelivery() async throws {
        let p = try x86Platform(cpus: 4)
        let (dev, hw) = pciDevice(p, msix: 16)
        _ = try dev.allocIRQVectors(min: 16, max: 16, flags: .msix)
        for i in 0..<8 { try dev.requestIRQ(try dev.irqVector(i)) }
        let messages = (0..<8).compactMap { hw.msixEntry($0)?.message }
        let delivered = Counter()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<3 {
                group.addTask {
                    for k in 0..<20_000 {
                        if case .delivered = p.deliver(messages[(k + t) % messages.count]) { delivered.bump() }
                    }
                }
            }
            group.addTask {
                for _ in 0..<200 {
                    for i in 8..<16 {
                        guard let v = try? dev.irqVector(i) else { continue }
                        try? dev.requestIRQ(v)
                        try? dev.freeIRQ(v)
                    }
                }
            }
        }
        #expect(delivered.value == 60_000)
        let total = try (0..<8).map { p.irq(try dev.irqVector($0))?.count ?? 0 }.reduce(0, +)
        #expect(total == 60_000)
    }
}

@Suite("more traces and destination modes")
struct MoreTraceTests {
    @Test("pci_msix_shutdown: every descriptor masked (cache, write, flush), ENABLE cleared, INTx on, table unmapped")
    func msixDisableTrace() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        hw.clearLog()
        try dev.freeIRQVectors()
        #expect(hw.log == [
            .msixWrite(entry: 0, .vectorControl, 1), .msixRead(entry: 0, .addressLo, 0xFEE0_0000),
            .msixWrite(entry: 1, .vectorControl, 1), .msixRead(entry: 0, .addressLo, 0xFEE0_0000),
            .msixReadControl(0x8003), .msixWriteControl(0x0003),
            .readCommand(0x0406), .writeCommand(0x0006),
            .msixUnmapTable,
        ])
        #expect(p.vectorMatrix.globalReserved == 0 && p.allocatedIRQs.isEmpty)
    }

    @Test("logical (flat) destination mode: the message carries a CPU bitmap and is delivered to that CPU")
    func logicalMode() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 4, destinationMode: .logical))
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 4, max: 4, flags: .msix)
        for i in 0..<4 {
            let v = try dev.irqVector(i)
            try dev.requestIRQ(v)
            let m = try #require(hw.msixEntry(i)?.message)
            let cpu = try #require(p.irq(v)?.assignedCPU)
            #expect(m.addressLo & (1 << 2) != 0)
            #expect((m.addressLo >> 12) & 0xFF == 1 << UInt32(cpu))
            #expect(p.deliver(m) == .delivered(virq: v, cpu: cpu, vector: p.irq(v)?.assignedVector ?? -1))
        }
    }

    @Test("extended destination ID: CPUs with APIC IDs above 0xff are reached through address bits 11:5")
    func extendedDestination() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, apicIDs: [0x100, 0x1234], extendedDestinationID: true))
        let (dev, hw) = pciDevice(p, msix: 2)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        for i in 0..<2 {
            let v = try dev.irqVector(i)
            try dev.requestIRQ(v)
            let m = try #require(hw.msixEntry(i)?.message)
            let cpu = try #require(p.irq(v)?.assignedCPU)
            guard case .compatibility(let c) = X86MSIFormat.decode(m, extendedDestinationID: true) else {
                Issue.record("not compatibility format"); continue
            }
            #expect(c.destination == p.apicID(ofCPU: cpu))
            #expect(p.deliver(m) == .delivered(virq: v, cpu: cpu, vector: c.vector))
        }
        // The reserved message before request_irq already names the first online CPU's APIC.
        let (dev2, hw2) = pciDevice(p, name: "0000:00:0a.0", msix: 1)
        _ = try dev2.allocIRQVectors(min: 1, max: 1, flags: .msix)
        #expect(hw2.msixEntry(0)?.message == MSIMessage(addressLo: 0xFEE0_0020, data: 0xEF))
    }
}

@Suite("reservation mode boundaries")
struct ReservationModeTests {
    @Test("msi_check_reservation_mode: MSI without per-vector masking gets its real vector at allocation, and keeps it after free_irq")
    func nonMaskableMSI() throws {
        let p = try x86Platform()
        let (dev, hw) = pciDevice(p, msix: nil, msiMMC: 0, msiMask: false)
        #expect(try dev.allocIRQVectors(min: 1, max: 1, flags: .msi) == 1)
        let v = try dev.irqVector(0)
        let irq = try #require(p.irq(v))
        #expect(irq.assignedVector != nil && irq.isActivated && !irq.hasReservation)
        #expect(!hw.log.contains { if case .msiWriteMask = $0 { true } else { false } }, "can_mask is 0: no mask writes")
        #expect(hw.msiRegisters.message.data == UInt32(irq.assignedVector ?? 0))
        try dev.requestIRQ(v)
        try dev.freeIRQ(v)
        // x86_vector_deactivate: neither managed nor reservable any more, so the vector stays…
        #expect(p.irq(v)?.assignedVector == irq.assignedVector)
        // …until the interrupt itself is freed.
        try dev.freeIRQVectors()
        #expect(!p.vectorMatrix.allocatedVectors(cpu: irq.assignedCPU ?? 0).contains(irq.assignedVector ?? 0))
        #expect(p.vectorMatrix.globalReserved == 0)
    }

    @Test("CONFIG_GENERIC_IRQ_RESERVATION_MODE off: MSI-X vectors are real from allocation on")
    func reservationModeOff() throws {
        let p = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, reservationMode: false))
        let (dev, hw) = pciDevice(p, msix: 4)
        _ = try dev.allocIRQVectors(min: 2, max: 2, flags: .msix)
        for i in 0..<2 {
            let irq = try #require(p.irq(try dev.irqVector(i)))
            #expect(irq.assignedVector != nil)
            #expect(hw.msixEntry(i)?.message.data == UInt32(irq.assignedVector ?? 0))
            #expect(hw.msixEntry(i)?.vectorControl == 1, "still masked until request_irq")
        }
        #expect(dev.domainInfo(.default)?.flags.contains(.mustReactivate) == false)
    }
}
