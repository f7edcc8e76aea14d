import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

/// The rate arithmetic of `msictl watch`, against recorded /proc/interrupts sequences
/// (Tests/Fixtures/interrupts, see its README).
@Suite("interrupt rates from /proc/interrupts sequences")
struct InterruptRatesTests {
    static func snapshot(_ name: String) throws -> ProcInterrupts {
        let url = TestEnvironment.packageRoot.appendingPathComponent("Tests/Fixtures/interrupts/\(name).txt")
        return ProcInterrupts(parsing: try String(contentsOf: url, encoding: .utf8))
    }

    static func vector(_ frame: RateFrame, irq: Int) throws -> VectorRate {
        let matches = frame.vectors.filter { $0.key.irq == irq }
        try #require(matches.count == 1, "irq \(irq): \(matches)")
        return matches[0]
    }

    @Test("a recorded live sequence: per-CPU and total rates are count deltas over the interval")
    func live() throws {
        var meter = InterruptRateMeter()
        let s0 = try Self.snapshot("live-0"), s1 = try Self.snapshot("live-1"), s2 = try Self.snapshot("live-2")
        let none = meter.advance(to: s0, at: 10.0)
        #expect(none == nil)  // the baseline
        let f1_ = meter.advance(to: s1, at: 10.5)
        let f1 = try #require(f1_)
        let f2_ = meter.advance(to: s2, at: 11.5)
        let f2 = try #require(f2_)
        #expect(f1.interval == 0.5 && f2.interval == 1.0 && f2.cpus == [0, 1])
        for (frame, old, new) in [(f1, s0, s1), (f2, s1, s2)] {
            #expect(frame.vectors.count == new.rows.count)
            for v in frame.vectors {
                let a = try #require(old.row(irq: v.key.irq)), b = try #require(new.row(irq: v.key.irq))
                #expect(v.change == .steady)
                #expect(v.delta == b.total - a.total, "irq \(v.key.irq)")
                #expect(v.perCPU == zip(a.counts, b.counts).map { Double($1 - $0) / frame.interval })
                #expect(v.rate == Double(b.total - a.total) / frame.interval)
                #expect(v.total == b.total)
            }
        }
        // virtio1-req.0 (irq 36) is this VM's busiest vector: 97768 → 97821 on CPU1 over 2 s.
        let busiest = try Self.vector(f2, irq: 36)
        #expect(try Self.vector(f1, irq: 36).delta! + busiest.delta! == 97821 - 97768)
        #expect(busiest.perCPU?[0] == 0)
        // Grouped by device, busiest device first, busiest vector first; IO-APIC rows are not a device's.
        let groups = f2.byDevice()
        #expect(groups.count == 5 && groups.first?.address.description == "0000:00:02.0")
        #expect(groups.first?.vectors.first?.key.irq == 36)
        #expect(!groups.flatMap(\.vectors).contains { $0.key.irq == 24 })
        for g in groups {
            let rates = g.vectors.compactMap(\.rate)
            #expect(rates == rates.sorted(by: >), "\(g.address)")
        }
    }

    @Test("a removed device, a driver rebound on the same irqs, an irq re-requested, a device back on new irqs")
    func hotplug() throws {
        var meter = InterruptRateMeter()
        _ = meter.advance(to: try Self.snapshot("live-2"), at: 0)
        let h1 = try Self.snapshot("hotplug-1"), h2 = try Self.snapshot("hotplug-2")
        let f_ = meter.advance(to: h1, at: 1)
        let f = try #require(f_)
        // 00:05.0 removed: its vectors are reported gone, once, with their last totals.
        let gone = f.vectors.filter { $0.change == .disappeared }
        #expect(gone.map(\.key.irq) == [33, 34] && gone[1].total == 24 && gone.allSatisfy { $0.rate == nil })
        // Counts that went backwards without a wrap: restarted, rate from the new counter.
        let rx = try Self.vector(f, irq: 41)
        #expect(rx.change == .restarted && rx.delta == 12 && rx.rate == 12)
        #expect(try Self.vector(f, irq: 43).change == .restarted)
        #expect(try Self.vector(f, irq: 36).change == .restarted && Self.vector(f, irq: 36).delta == 25)
        #expect(try Self.vector(f, irq: 40).change == .steady)
        #expect(f.vectors.allSatisfy { ($0.rate ?? 0) >= 0 && ($0.perCPU ?? []).allSatisfy { $0 >= 0 } })

        let back_ = meter.advance(to: h2, at: 2)
        let back = try #require(back_)
        let new = back.vectors.filter { $0.change == .appeared }
        #expect(new.map(\.key.irq) == [44, 45] && new[1].total == 3 && new.allSatisfy { $0.rate == nil })
        #expect(!back.vectors.contains { $0.change == .disappeared })
        #expect(try Self.vector(back, irq: 41).change == .steady)
        // The next frame has the returned device's vectors steady again.
        let later_ = meter.advance(to: h2, at: 3)
        let later = try #require(later_)
        #expect(later.vectors.allSatisfy { $0.change == .steady && $0.rate == 0 })
    }

    @Test("32-bit per-CPU counters that wrap give the wrapped distance, not a negative or huge rate")
    func wrap() throws {
        let f = InterruptRateMeter.frame(from: try Self.snapshot("wrap-0"), to: try Self.snapshot("wrap-1"), interval: 2)
        let req = try Self.vector(f, irq: 36)
        #expect(req.change == .steady && req.delta == 26 && req.perCPU == [0, 13])
        let rx = try Self.vector(f, irq: 41)
        #expect(rx.change == .steady && rx.delta == 5 && rx.rate == 2.5)
    }

    @Test("delta: forward, wrapped, restarted", arguments: [
        (UInt64(5), UInt64(9), UInt64?(4)), (4_294_967_290, 20, 26), (4_294_967_295, 0, 1), (100, 3, nil),
        (3_000_000_000, 2_000_000_000, nil), (1 << 40, 5, nil), (7, 7, 0),
    ])
    func delta(old: UInt64, new: UInt64, expected: UInt64?) {
        #expect(InterruptRateMeter.delta(old: old, new: new) == expected)
    }

    @Test("a CPU that comes online has no baseline: rate 0 there, the others exact; time must advance")
    func cpuHotplug() {
        let a = ProcInterrupts(parsing: "           CPU0\n 40:         10 PCI-MSIX-0000:00:04.0   1-edge      q\n")
        let b = ProcInterrupts(parsing: "           CPU0       CPU1\n 40:         14        900 PCI-MSIX-0000:00:04.0   1-edge      q\n")
        var meter = InterruptRateMeter()
        _ = meter.advance(to: a, at: 5)
        let none = meter.advance(to: a, at: 5)
        #expect(none == nil)  // no time passed: no frame
        let f = InterruptRateMeter.frame(from: a, to: b, interval: 1)
        #expect(f.cpus == [0, 1] && f.vectors[0].perCPU == [4, 0] && f.vectors[0].rate == 4)
    }
}
