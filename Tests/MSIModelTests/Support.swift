import Testing
@testable import MSIModel
import MSIShimCore

/// A machine with the x86 vector parent (no remapping), `cpus` CPUs.
func x86Platform(cpus: Int = 2) throws -> MSIPlatform {
    try MSIPlatform(.x86(cpus: cpus))
}

/// A machine with an Intel interrupt-remapping parent.
func irPlatform(cpus: Int = 2) throws -> MSIPlatform {
    try MSIPlatform(.intelRemapping(cpus: cpus))
}

/// A PCI function with `msix` table entries and/or an MSI capability, on `platform`.
func pciDevice(_ platform: MSIPlatform, name: String = "0000:00:03.0", msix: Int? = 8, msiMMC: Int? = nil,
               msi64: Bool = true, msiMask: Bool = true, intx: Int = 11) -> (MSIDevice, SimulatedPCIFunction) {
    let hw = SimulatedPCIFunction(.init(msixTableSize: msix, msiMultipleCapableLog2: msiMMC, msi64Bit: msi64,
                                        msiPerVectorMask: msiMask, intxIRQ: intx))
    return (MSIDevice(name: name, platform: platform, pci: hw.hardware), hw)
}

/// A device with a domain created from `template` at `domain` (no PCI hardware needed).
func deviceWithDomain(_ platform: MSIPlatform, _ template: MSIDomainTemplate, domain: MSIDomainID = .secondary,
                      hwsize: Int) throws -> MSIDevice {
    let dev = MSIDevice(name: "0000:00:04.0", platform: platform, pci: SimulatedPCIFunction(.init(msixTableSize: nil)).hardware)
    try dev.createDomain(domain, template: template, hwsize: hwsize)
    return dev
}

/// An IMS chip that stores slots in memory and records its calls.
final class RecordingIMSChip: IMSChip, @unchecked Sendable {
    enum Call: Equatable { case prepare(Int), write(Int, MSIMessage), mask(Int), unmask(Int), shutdown(Int) }
    let name: String
    let operations: IRQChipOperations
    let slotCount: Int?
    private let lock = NSLockLike()
    private var _calls: [Call] = []
    private var _slots: [Int: (MSIMessage, Bool)] = [:]

    init(name: String = "IMS-TEST", operations: IRQChipOperations = [.mask, .unmask, .writeMessage], slots: Int? = nil) {
        self.name = name
        self.operations = operations
        self.slotCount = slots
    }

    var calls: [Call] { lock.with { _calls } }
    func slot(_ i: Int) -> (message: MSIMessage, masked: Bool)? { lock.with { _slots[i] } }

    func prepare(_ d: inout IMSDescriptor) throws {
        lock.with {
            _calls.append(.prepare(d.index))
            _slots[d.index] = (.zero, true)
        }
        d.domainCookie = 0x1000 + UInt64(d.index) * 16
    }
    func writeMessage(_ m: MSIMessage, for d: IMSDescriptor) throws {
        lock.with { _calls.append(.write(d.index, m)); _slots[d.index, default: (.zero, true)].0 = m }
    }
    func mask(_ d: IMSDescriptor) throws { lock.with { _calls.append(.mask(d.index)); _slots[d.index, default: (.zero, true)].1 = true } }
    func unmask(_ d: IMSDescriptor) throws { lock.with { _calls.append(.unmask(d.index)); _slots[d.index, default: (.zero, true)].1 = false } }
    func shutdown(_ d: IMSDescriptor) throws { lock.with { _calls.append(.shutdown(d.index)) } }
}

import Synchronization
final class NSLockLike: Sendable {
    let m = Mutex(())
    func with<T>(_ body: () throws -> T) rethrows -> T {
        m._unsafeLock(); defer { m._unsafeUnlock() }
        return try body()
    }
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
