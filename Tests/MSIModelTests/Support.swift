import Testing
@testable import MSIModel
import MSIShimCore
import Synchronization

/// A machine with the x86 vector parent (no remapping), `cpus` CPUs.
func x86Platform(cpus: Int = 2) throws -> MSIPlatform {
    try MSIPlatform(.x86(cpus: cpus))
}

/// A machine with an Intel interrupt-remapping parent.
func irPlatform(cpus: Int = 2) throws -> MSIPlatform {
    try MSIPlatform(.intelRemapping(cpus: cpus))
}

/// A PCI function with `msix` table entries and/or an MSI capability, on `platform`.
/// `layout` chooses where its domains keep their descriptors (the conformance suites run with both).
func pciDevice(_ platform: MSIPlatform, layout: MSIStoreLayout = .device, name: String = "0000:00:03.0", msix: Int? = 8,
               msiMMC: Int? = nil, msi64: Bool = true, msiMask: Bool = true, intx: Int = 11) -> (MSIDevice, SimulatedPCIFunction) {
    let hw = SimulatedPCIFunction(.init(msixTableSize: msix, msiMultipleCapableLog2: msiMMC, msi64Bit: msi64,
                                        msiPerVectorMask: msiMask, intxIRQ: intx))
    return (MSIDevice(name: name, platform: platform, pci: hw.hardware, storeLayout: layout), hw)
}

/// A device with a domain created from `template` at `domain` (no PCI hardware needed).
/// With the external layout the domain gets a consumer-owned ``MSIDescriptorStore``.
func deviceWithDomain(_ platform: MSIPlatform, _ template: MSIDomainTemplate, domain: MSIDomainID = .secondary,
                      hwsize: Int, layout: MSIStoreLayout = .device) throws -> MSIDevice {
    let dev = MSIDevice(name: "0000:00:04.0", platform: platform, pci: SimulatedPCIFunction(.init(msixTableSize: nil)).hardware,
                        storeLayout: layout)
    try dev.createDomain(domain, template: template, hwsize: hwsize, store: layout == .external ? MSIDescriptorStore() : nil)
    #expect(dev.usesExternalStore(domain) == (layout == .external))
    return dev
}

/// An IMS chip that stores slots in memory and records its calls.
final class RecordingIMSChip: IMSChip, Sendable {
    enum Call: Equatable, Sendable { case prepare(Int), write(Int, MSIMessage), mask(Int), unmask(Int), shutdown(Int) }
    struct State {
        var calls: [Call] = []
        var slots: [Int: (message: MSIMessage, masked: Bool)] = [:]
    }
    let name: String
    let operations: IRQChipOperations
    let slotCount: Int?
    private let state = PackageMutex(State())

    init(name: String = "IMS-TEST", operations: IRQChipOperations = [.mask, .unmask, .writeMessage], slots: Int? = nil) {
        self.name = name
        self.operations = operations
        self.slotCount = slots
    }

    var calls: [Call] { state.withLock { $0.calls } }
    func slot(_ i: Int) -> (message: MSIMessage, masked: Bool)? { state.withLock { $0.slots[i] } }

    func prepare(_ d: inout IMSDescriptor) throws {
        let index = d.index
        state.withLock { s in
            s.calls.append(.prepare(index))
            s.slots[index] = (.zero, true)
        }
        d.domainCookie = 0x1000 + UInt64(d.index) * 16
    }
    func writeMessage(_ m: MSIMessage, for d: IMSDescriptor) throws {
        state.withLock { s in
            s.calls.append(.write(d.index, m))
            s.slots[d.index, default: (.zero, true)].message = m
        }
    }
    func mask(_ d: IMSDescriptor) throws {
        state.withLock { s in s.calls.append(.mask(d.index)); s.slots[d.index, default: (.zero, true)].masked = true }
    }
    func unmask(_ d: IMSDescriptor) throws {
        state.withLock { s in s.calls.append(.unmask(d.index)); s.slots[d.index, default: (.zero, true)].masked = false }
    }
    func shutdown(_ d: IMSDescriptor) throws { state.withLock { $0.calls.append(.shutdown(d.index)) } }
}

/// Asserts that `body` throws an ``MSIError`` with `code`.
func expectErrno(_ code: KernelErrno, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(code.name), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as MSIError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected MSIError \(code.name), got \(error)", sourceLocation: sourceLocation)
    }
}

/// A thread-safe counter for handlers.
final class Counter: Sendable {
    let v = Atomic<Int>(0)
    func bump() { v.add(1, ordering: .relaxed) }
    var value: Int { v.load(ordering: .relaxed) }
}
