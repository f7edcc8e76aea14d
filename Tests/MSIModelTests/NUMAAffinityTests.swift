// NUMA in the model: group_cpus_evenly across nodes, the descriptor's node, the node-first
// vector search and irq_setup_affinity. The expected values are what Debian's Linux 6.1 did in
// the lab (6 CPUs, nodes 0-3 and 4-5; nvme with 6 and with 3 I/O queues; e1000e).
import Testing
@testable import MSIModel
import MSIShimCore

@Suite("NUMA affinity (group_cpus_evenly, node-first vectors)")
struct NUMAAffinityTests {
    let nodes = [CPUMask(0...3), CPUMask(4...5)]

    @Test("fewer groups than CPUs: the smaller node is served first, each node cut into consecutive CPUs")
    func threeGroupsOverTwoNodes() {
        let g = IRQAffinitySpreading.groupCPUsEvenly(3, cpus: .first(6), nodes: nodes)
        #expect(g == [CPUMask(4...5), CPUMask(0...1), CPUMask(2...3)])
    }

    @Test("one group per CPU: node 1's CPUs take the first groups")
    func oneGroupPerCPU() {
        let g = IRQAffinitySpreading.groupCPUsEvenly(6, cpus: .first(6), nodes: nodes)
        #expect(g == [.of(4), .of(5), .of(0), .of(1), .of(2), .of(3)])
    }

    // Seen in the lab too: 4 CPUs in nodes 0-1 and 2-3, the nvme's I/O vectors went to 2, 3, 0, 1.
    @Test("two nodes with equal CPU counts come out of the kernel's heap sort swapped")
    func equalNodesSwapped() {
        let g = IRQAffinitySpreading.groupCPUsEvenly(4, cpus: .first(4), nodes: [CPUMask(0...1), CPUMask(2...3)])
        #expect(g == [.of(2), .of(3), .of(0), .of(1)])
    }

    @Test("fewer groups than nodes: whole nodes share groups round-robin")
    func fewerGroupsThanNodes() {
        let three = [CPUMask([0, 1]), CPUMask([2]), CPUMask([3])]
        let g = IRQAffinitySpreading.groupCPUsEvenly(2, cpus: .first(4), nodes: three)
        #expect(g == [CPUMask([0, 1, 3]), CPUMask([2])])
    }

    @Test("one node: the single-node grouping is unchanged")
    func singleNode() {
        #expect(IRQAffinitySpreading.groupCPUsEvenly(3, cpus: .first(8))
            == [CPUMask(0...2), CPUMask(3...5), CPUMask(6...7)])
    }

    func numaPlatform() throws -> MSIPlatform {
        try MSIPlatform(MSIPlatformConfiguration(cpuCount: 6, cpuNodes: [0, 0, 0, 0, 1, 1]))
    }

    @Test("nvme's call on 6 CPUs in two nodes: spread, nodes, pre-vector held to node 0")
    func nvmeReplay() throws {
        let platform = try numaPlatform()
        let (dev, _) = pciDevice(platform, msix: 65)
        let n = try dev.allocIRQVectors(min: 1, max: 4, flags: [.allTypes, .affinity],
                                        affinity: IRQAffinity(preVectors: 1, calculateSets: { [$0] }))
        #expect(n == 4)
        for v in 0..<n { try dev.requestIRQ(try dev.irqVector(v)) }
        let irqs = try (0..<n).map { try #require(platform.irq(try dev.irqVector($0))) }
        #expect(irqs.map(\.isManaged) == [false, true, true, true])
        #expect(irqs.map(\.affinity) == [CPUMask(0...3), CPUMask(4...5), CPUMask(0...1), CPUMask(2...3)])
        #expect(irqs.map(\.node) == [0, 1, 0, 0])
        // CPUs 4 and 5 have more free vectors (no managed reservations on them for vector 0),
        // yet the pre-vector's node (that of its default mask's first CPU) wins.
        #expect(irqs[0].assignedCPU.map { (0...3).contains($0) } == true)
        // Managed: the CPU of the mask with the fewest managed vectors, the last on a tie.
        #expect(irqs.dropFirst().map(\.assignedCPU) == [5, 1, 3])
    }

    @Test("no affinity descriptor: the device's node decides the search and the affinity")
    func deviceNode() throws {
        let platform = try numaPlatform()
        let hw = SimulatedPCIFunction(.init(msixTableSize: 4))
        let onNode1 = MSIDevice(name: "0000:00:05.0", platform: platform, pci: hw.hardware, node: 1)
        _ = try onNode1.allocIRQVectors(min: 2, max: 2, flags: .msix)
        for v in 0..<2 { try onNode1.requestIRQ(try onNode1.irqVector(v)) }
        let a = try (0..<2).map { try #require(platform.irq(try onNode1.irqVector($0))) }
        #expect(a.map(\.node) == [1, 1])
        #expect(a.map(\.affinity) == [CPUMask(4...5), CPUMask(4...5)])
        #expect(a.allSatisfy { $0.assignedCPU.map { (4...5).contains($0) } == true })

        let (noNode, _) = pciDevice(platform, name: "0000:00:06.0", msix: 4)
        _ = try noNode.allocIRQVectors(min: 1, max: 1, flags: .msix)
        try noNode.requestIRQ(try noNode.irqVector(0))
        let b = try #require(platform.irq(try noNode.irqVector(0)))
        #expect(b.node == -1)
        #expect(b.affinity == .first(6))
    }

    @Test("vectors a real kernel holds are never handed out, and count against their CPU")
    func assignVector() throws {
        let platform = try MSIPlatform(MSIPlatformConfiguration(cpuCount: 2, legacyIRQs: 0))
        // CPU 1 loses three vectors to the "kernel": CPU 0 now has the most free vectors.
        for v in [0x21, 0x22, 0x23] { platform.assignVector(v, onCPU: 1) }
        platform.assignVector(0x24, onCPU: 0)
        let (dev, _) = pciDevice(platform, msix: 4)
        _ = try dev.allocIRQVectors(min: 1, max: 1, flags: .msix)
        try dev.requestIRQ(try dev.irqVector(0))
        let irq = try #require(platform.irq(try dev.irqVector(0)))
        #expect(irq.assignedCPU == 0)
        #expect(irq.assignedVector.map { $0 != 0x24 } == true)
    }

    @Test("cpuNodes must name a node for every CPU")
    func badNodes() {
        #expect(throws: MSIError.self) { try MSIPlatform(MSIPlatformConfiguration(cpuCount: 4, cpuNodes: [0, 1])) }
    }
}
