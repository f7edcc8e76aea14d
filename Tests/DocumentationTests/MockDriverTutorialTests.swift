// The code of the article "Testing a driver against the mock"
// (Sources/MockDevice/MockDevice.docc/TestingADriverAgainstTheMock.md), compiled and run here.
// Each ```swift block of the article is one `tutorial:begin` … `tutorial:end` region of this
// file, in order; `articleCodeIsThisFile` fails when the two differ.
import Foundation
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice
import Synchronization
import Testing

// tutorial:begin
/// A driver for a device with one MSI-X vector per queue, written against the model's
/// `pci_*` and `request_irq` calls the way a Linux driver is.
final class QueueDriver {
    let device: MSIDevice
    /// Interrupts handled per queue.
    let handled = HandledCounts()
    private(set) var virqs: [Int] = []

    init(device: MSIDevice) { self.device = device }

    /// Probe: one vector per queue, then a handler on each.
    func probe(queues: Int) throws {
        let granted = try device.allocIRQVectors(min: 1, max: queues, flags: .msix)  // pci_alloc_irq_vectors
        for queue in 0..<granted {
            let virq = try device.irqVector(queue)                                    // pci_irq_vector
            try device.requestIRQ(virq) { [handled] _ in handled.add(queue) }        // request_irq
            virqs.append(virq)
        }
    }

    /// Holds back one queue's interrupts (disable_irq-style masking), then lets them through.
    func quiesce(queue: Int) throws { try device.maskIRQ(virqs[queue]) }
    func resume(queue: Int) throws { try device.unmaskIRQ(virqs[queue]) }

    /// Remove: free each interrupt, then the vectors (MSI-X off).
    func remove() throws {
        for virq in virqs { try device.freeIRQ(virq) }
        try device.freeIRQVectors()
        virqs = []
    }
}

/// Per-queue counts; handlers run on whichever thread delivers the interrupt.
final class HandledCounts: Sendable {
    private let counts = Mutex<[Int: Int]>([:])
    func add(_ queue: Int) { counts.withLock { $0[queue, default: 0] += 1 } }
    subscript(queue: Int) -> Int { counts.withLock { $0[queue, default: 0] } }
}
// tutorial:end

@Suite("Testing a driver against the mock (the DocC article)")
struct MockDriverTutorialTests {
    @Test("the article's driver: MSI-X enabled, interrupts handled, masked and unmasked, device state checked")
    func queueDriverAgainstTheMock() throws {
        // tutorial:begin
        // The interrupt controller: x86, two CPUs. It receives the device's message writes.
        let platform = try MSIPlatform(.x86(cpus: 2))
        let mock = try MockPCIDevice.builtIn(sink: platform)

        // The model reaches the mock as it reaches hardware: config space and BARs.
        let bars: @Sendable (Int) throws -> any MMIORegion = { index in
            guard let bar = mock.bar(index) else {
                throw DeviceAccessError.unsupported("BAR\(index)", what: "an unimplemented BAR")
            }
            return bar
        }
        let hardware = try PCIFunctionHardware.discover(config: mock.config, intxIRQ: 11, region: bars)
        let driver = QueueDriver(device: MSIDevice(name: "0000:00:03.0", platform: platform, pci: hardware))
        try driver.probe(queues: 4)
        #expect(driver.virqs.count == 4)
        // tutorial:end

        // tutorial:begin
        // The device raises queue 2's interrupt: the platform decodes the message, finds the
        // Linux irq and runs its handler.
        guard case .sent(_, .delivered(let virq, _, _)) = mock.fireMSIX(2) else {
            Issue.record("queue 2's interrupt was not delivered")
            return
        }
        #expect(virq == driver.virqs[2] && driver.handled[2] == 1)
        // tutorial:end

        // tutorial:begin
        // Masked, the device only sets the pending bit...
        try driver.quiesce(queue: 2)
        #expect(mock.fireMSIX(2) == .pending && mock.msixPending(2))
        #expect(driver.handled[2] == 1)
        // ...and sends the interrupt once when unmasked.
        try driver.resume(queue: 2)
        #expect(!mock.msixPending(2) && driver.handled[2] == 2)
        #expect(mock.takeReleased().count == 1)
        // tutorial:end

        // tutorial:begin
        // What the device saw: MSI-X on, the function unmasked, each queue's entry unmasked and
        // aimed at the CPU and vector the kernel gave that irq, and no rule of the spec broken.
        let table = try MSIXTable(config: mock.config, capOffset: 0xA0, region: bars)
        let control = try table.readControl()
        #expect(control & PCIReg.MSIX.enable != 0 && control & PCIReg.MSIX.functionMask == 0)
        for (queue, virq) in driver.virqs.enumerated() {
            let entry = try table.readEntry(queue)
            let irq = try #require(platform.irq(virq))
            let message = MSIMessage(addressLo: entry.addressLo, addressHi: entry.addressHi, data: entry.data)
            guard case .compatibility(let decoded) = X86MSIFormat.decode(message) else {
                Issue.record("entry \(queue) holds no x86 message")
                continue
            }
            #expect(!entry.masked && decoded.vector == irq.effectiveVector)
            #expect(decoded.destination == platform.apicID(ofCPU: irq.effectiveCPU))
        }
        #expect(mock.violations.isEmpty)

        try driver.remove()
        #expect(try table.readControl() & PCIReg.MSIX.enable == 0)
        // tutorial:end
    }

    @Test("every swift code block of the article is a tutorial region of this file, verbatim")
    func articleCodeIsThisFile() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let article = root.appendingPathComponent(
            "Sources/MockDevice/MockDevice.docc/TestingADriverAgainstTheMock.md")
        let blocks = Self.codeBlocks(try String(contentsOf: article, encoding: .utf8))
        let regions = Self.regions(try String(contentsOf: here, encoding: .utf8))
        #expect(regions.count == 5)
        #expect(blocks.count == regions.count)
        for (i, (block, region)) in zip(blocks, regions).enumerated() {
            #expect(block == region, "code block \(i + 1) of the article differs from tutorial region \(i + 1)")
        }
    }

    /// The ```swift fenced blocks of a Markdown text.
    static func codeBlocks(_ text: String) -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```swift" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(dedent(current ?? []))
                current = nil
            } else if current != nil {
                current?.append(line)
            }
        }
        return blocks
    }

    /// The lines between `// tutorial:begin` and `// tutorial:end` markers, dedented.
    static func regions(_ text: String) -> [[String]] {
        var regions: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "// tutorial:begin" {
                current = []
            } else if trimmed == "// tutorial:end" {
                regions.append(dedent(current ?? []))
                current = nil
            } else if current != nil {
                current?.append(line)
            }
        }
        return regions
    }

    static func dedent(_ lines: [String]) -> [String] {
        let indent = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { $0.count >= indent ? String($0.dropFirst(indent)) : $0.trimmingCharacters(in: .whitespaces) }
    }
}
