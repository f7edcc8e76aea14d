// Scenario differential: one sequence of kernel operations and device events, run by the
// kernel model on the real emulated 82574 (uio_pci_generic) and on a mock built from that
// device's own config bytes. After every step both must hold the same Command register, MSI-X
// Message Control, table and PBA, and every raise must end the same way (pending or not).
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice

struct DifferentialScenario {
    let address: PCIAddress
    let report: Report

    enum Step: CustomStringConvertible {
        case enable(Int)
        case enableMSI
        case request(Int)
        case release(Int)
        case mask(Int)
        case unmask(Int)
        case raise(Int)
        case functionMask(Bool)
        case disable

        var description: String {
            switch self {
            case .enable(let n): "enable msix \(n)"
            case .enableMSI: "enable msi"
            case .request(let i): "request \(i)"
            case .release(let i): "release \(i)"
            case .mask(let i): "mask \(i)"
            case .unmask(let i): "unmask \(i)"
            case .raise(let i): "device raises \(i)"
            case .functionMask(let on): "function-mask \(on ? "on" : "off")"
            case .disable: "disable"
            }
        }
    }

    /// Kernel calls in the order a driver makes them, with the device raising vectors in
    /// every state: MSI-X off, allocated but not requested (masked), requested, masked,
    /// function-masked, released, disabled again.
    static let steps: [Step] = [
        .raise(0),
        .enable(5),
        .raise(0), .raise(3),
        .request(0), .request(1), .request(2), .request(3), .request(4),
        .raise(1),
        .mask(2), .raise(2), .raise(2), .unmask(2), .raise(2),
        .functionMask(true), .raise(0), .raise(4), .mask(4), .functionMask(false),
        .unmask(4),
        .release(3), .raise(3),
        .release(0), .release(1), .release(2), .release(4),
        .disable,
        .raise(1),
        .enable(3),
        .raise(2), .request(2), .raise(2),
        .release(2), .disable,
        // MSI (the 82574's capability: 64-bit, one vector, no per-vector mask), then MSI-X again.
        .enableMSI, .raise(0), .request(0), .raise(0), .raise(3), .release(0), .raise(0), .disable,
        .raise(0), .enable(2), .request(1), .raise(1), .release(1), .disable,
    ]

    func run() {
        guard let real = report.attempt("diff-real-open", { try UIOE1000ERig(address) }) else { return }
        guard let bytes = report.attempt("diff-config-bytes", { try real.configBytes() }) else { return }
        report.check(bytes.count == 4096, "diff-config-bytes", "\(bytes.count) bytes of \(address)'s config space read in the guest")
        report.info("config dump of \(address) (lspci -xxxx layout):")
        for line in stride(from: 0, to: min(bytes.count, 256), by: 16) {
            report.info(String(format3(line)) + ": " + bytes[line..<(line + 16)].map { hex2($0) }.joined(separator: " "))
        }
        guard let mock = report.attempt("diff-mock-build", { try MockRig(config: bytes, address: address) }) else { return }
        report.pass("diff-mock-build", mock.name)
        compare(real, mock, after: "setup", name: "diff-00-setup")

        for (n, step) in Self.steps.enumerated() {
            let name = "diff-\(n + 1 < 10 ? "0" : "")\(n + 1)-" + step.description.replacingOccurrences(" ", "-")
            let a = apply(step, on: real)
            let b = apply(step, on: mock)
            guard a.outcome == b.outcome else {
                report.fail(name, "real: \(a.detail); mock: \(b.detail)")
                continue
            }
            compare(real, mock, after: step.description, name: name, outcome: "real: \(a.detail); mock: \(b.detail)")
        }
        report.check(mock.device.violations.isEmpty, "diff-mock-no-violations", "\(mock.device.violations)")
        report.check(
            real.model.warnings.isEmpty && mock.model.warnings.isEmpty, "diff-model-no-warnings",
            "real \(real.model.warnings), mock \(mock.model.warnings)")
    }

    /// The result of one step on one rig: a comparable outcome and a human detail.
    func apply(_ step: Step, on rig: any ModelRig) -> (outcome: String, detail: String) {
        do {
            switch step {
            case .enable(let n):
                E1000E.letThrottlingTimersExpire()
                let got = try rig.model.allocIRQVectors(min: n, max: n, flags: .msix)
                return ("enabled \(got)", "\(got) vectors")
            case .enableMSI:
                E1000E.letThrottlingTimersExpire()
                let got = try rig.model.allocIRQVectors(min: 1, max: 1, flags: .msi)
                return ("enabled msi \(got)", "\(got) MSI vector")
            case .request(let i):
                try rig.model.requestIRQ(try rig.virq(i))
            case .release(let i):
                try rig.model.freeIRQ(try rig.virq(i))
            case .mask(let i):
                try rig.model.maskIRQ(try rig.virq(i))
            case .unmask(let i):
                try rig.model.unmaskIRQ(try rig.virq(i))
            case .raise(let i):
                let r = try rig.raise(i)
                return ("\(r.outcome)", r.detail)
            case .functionMask(let on):
                try rig.setFunctionMask(on)
            case .disable:
                E1000E.letThrottlingTimersExpire()
                try rig.model.freeIRQVectors()
            }
            return ("ok", "ok")
        } catch {
            let text = "\(error)"
            return ("error " + ((error as? any ErrnoCarrying)?.errno?.name ?? text), text)
        }
    }

    func compare(_ real: any ModelRig, _ mock: any ModelRig, after: String, name: String, outcome: String = "") {
        do {
            let a = try real.snapshot()
            let b = try mock.snapshot()
            let diffs = a.differences(from: b)
            report.check(
                diffs.isEmpty, name,
                (outcome.isEmpty ? "" : outcome + "; ")
                    + (diffs.isEmpty ? "same state: \(a)" : "real vs mock differ: " + diffs.joined(separator: "; ")))
        } catch {
            report.fail(name, "snapshot after \(after) failed: \(error)")
        }
    }

    func hex2(_ b: UInt8) -> String { b < 16 ? "0" + String(b, radix: 16) : String(b, radix: 16) }
    func format3(_ v: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 2 - s.count)) + s
    }
}

extension String {
    func replacingOccurrences(_ a: Character, _ b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
