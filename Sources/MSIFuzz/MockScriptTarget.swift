// A mock script run the way `msictl mock --json` runs it. The first input byte picks the
// platform (bit 0: interrupt remapping; bits 1-3: CPUs - 1), the rest is the script. After
// every command: the line's JSON object parses and says what happened, the descriptor stores
// are consistent, the mock saw no rule broken, and every unmasked MSI-X entry, MSI vector or
// IMS slot belongs to a requested, enabled interrupt. After the script, tearing everything
// down must give back every irq, vector and reservation.
import Foundation
import InterruptTables
import MSIModel
import MSIShimCore
import MockDevice
import MockHarness

enum MockScriptTarget {
    /// Commands run per input (bounds the time of one execution).
    static let maxCommands = 64

    static func check(_ input: [UInt8]) -> String? {
        guard let first = input.first else { return nil }
        let options = MockSessionOptions(cpus: Int(first >> 1 & 7) + 1, remap: first & 1 != 0)
        let session: MockSession
        do { session = try MockSession(device: try MockPCIDevice.builtIn(), options: options) } catch {
            return "the built-in mock cannot be set up: \(error)"
        }
        let matrixBefore = session.platform.vectorMatrix
        var mentioned = Set(0..<8)
        var cpuWentOffline = false
        for line in parseMockScript(String(decoding: input.dropFirst(), as: UTF8.self)).prefix(maxCommands) {
            if case .success(let command) = line.command { mentioned.formUnion(indices(command)) }
            let outcome = session.run(line)
            if case .success(.cpu(_, online: false)) = line.command, case .success = outcome { cpuWentOffline = true }
            if let problem = checkJSON(line, outcome) { return "line \(line.number) (\(echoed(line.text))): \(problem)" }
            if let problem = checkState(session, mentioned) { return "after line \(line.number) (\(echoed(line.text))): \(problem)" }
        }
        return teardown(session, matrixBefore: matrixBefore, countAvailable: !cpuWentOffline)
    }

    /// Table indices a command names (the entries worth checking afterwards).
    static func indices(_ command: MockCommand) -> [Int] {
        switch command {
        // Entries past the first 64 of an enable stay masked unless a later command names them.
        case .enable(_, _, let max, _): Array(0..<min(max, 64))
        case .allocMSIX(let i?): [i]
        case .freeMSIX(let i), .freeIMS(let i), .request(_, let i), .release(_, let i), .mask(_, let i),
             .unmask(_, let i), .fire(_, let i): [i]
        default: []
        }
    }

    /// The `--json` line parses back to what it says.
    static func checkJSON(_ line: MockScriptLine, _ outcome: Result<JSONValue, MockCommandError>) -> String? {
        let text = mockJSONLine(line, outcome).jsonText
        guard !text.contains("\n") else { return "JSON line contains a newline" }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
            return "JSON line does not parse: \(error) in \(echoed(text, limit: 200))"
        }
        guard let object = parsed as? [String: Any] else { return "JSON line is not an object" }
        guard object["cmd"] as? String == line.text else { return "cmd does not round-trip" }
        guard object["line"] as? Int == line.number else { return "line number does not round-trip" }
        switch outcome {
        case .success:
            guard object["ok"] as? Bool == true, object["result"] != nil else { return "ok line without result" }
        case .failure(let e):
            guard object["ok"] as? Bool == false, object["message"] as? String == e.message,
                  object["errno"] is String || object["errno"] is NSNull
            else { return "error line without errno/message" }
        }
        return nil
    }

    /// The model, the mock and the table agree.
    static func checkState(_ s: MockSession, _ mentioned: Set<Int>) -> String? {
        if let broken = s.model.checkInvariants() { return "descriptor store: \(broken)" }
        let violations = s.device.violations
        guard violations.isEmpty else { return "mock rules broken: \(violations.prefix(3))" }
        func enabled(_ virq: Int) -> Bool {
            guard let irq = s.platform.irq(virq) else { return false }
            return irq.isRequested && irq.isStarted && irq.disableDepth == 0
        }
        do {
            let caps = try s.device.config.capabilityList()
            if let cap = caps.first(PCICapabilityID.msix) {
                let table = try MSIXTable(config: s.device.config, capOffset: cap.offset) { [device = s.device] bir in
                    guard let region = device.bar(bir) else { throw DeviceAccessError.unsupported("BAR\(bir)", what: "absent") }
                    return region
                }
                for i in mentioned where i >= 0 && i < table.tableSize {
                    guard try table.readVectorControl(i) & PCIReg.MSIX.vectorControlMask == 0 else { continue }
                    guard let d = s.model.descriptor(index: i), d.isAssociated, enabled(d.virq) else {
                        return "MSI-X entry \(i) is unmasked without a requested, enabled interrupt"
                    }
                }
            }
            if s.model.isMSIEnabled, let cap = caps.first(PCICapabilityID.msi) {
                let msi = try MSICapability(config: s.device.config, at: cap.offset)
                if let mask = msi.mask {
                    for v in 0..<min(msi.countEnabled, 32) where mask & (1 << UInt32(v)) == 0 {
                        guard let virq = try? s.model.irqVector(v), enabled(virq) else {
                            return "MSI vector \(v) is unmasked without a requested, enabled interrupt"
                        }
                    }
                }
            }
            if s.model.domainInfo(.secondary) != nil, let layout = s.device.imsLayout, let region = s.device.bar(layout.bar) {
                let slots = try IMSDeviceTable(region: region, offset: layout.offset, slots: layout.slots)
                for i in mentioned where i >= 0 && i < layout.slots {
                    guard try slots.readControl(i) & IMSSlotLayout.mask == 0 else { continue }
                    guard let d = s.model.descriptor(domain: .secondary, index: i), d.isAssociated, enabled(d.virq) else {
                        return "IMS slot \(i) is unmasked without a requested, enabled interrupt"
                    }
                }
            }
        } catch {
            return "reading the mock failed: \(error)"
        }
        return nil
    }

    /// free_irq, free and disable everything: every irq, vector and reservation comes back.
    /// With `countAvailable` false (a CPU went offline during the script) the available counts
    /// are left out: `irq_matrix_remove_managed()` on an offline CPU does not give the vector
    /// back to its available count and `irq_matrix_online()` does not recount it, so the
    /// kernel's figure drifts, and the model keeps the kernel's arithmetic (MSIModelTests:
    /// managedRemovalWhileOfflineDrifts). Vectors, reservations and allocations must still
    /// all come back.
    static func teardown(_ s: MockSession, matrixBefore: VectorMatrix, countAvailable: Bool) -> String? {
        do {
            for domain in [MSIDomainID.default, .secondary] {
                for d in s.model.descriptors(domain: domain, .associated) {
                    for virq in d.virq..<(d.virq + max(d.vectorCount, 1)) where s.platform.irq(virq)?.isRequested == true {
                        try s.model.freeIRQ(virq)
                    }
                }
            }
            for d in s.model.descriptors(domain: .secondary, .associated) {
                try s.model.imsFreeIRQ(MSIMap(index: d.index, virq: d.virq))
            }
            try s.model.freeIRQVectors()
            // CPUs a script took offline come back, so the matrix is compared like for like
            // (an offline CPU's vectors are not counted as available).
            for cpu in 0..<s.platform.vectorMatrix.cpuCount where !s.platform.onlineCPUs.contains(cpu) {
                try s.platform.setCPUOnline(cpu, true)
            }
        } catch {
            return "teardown failed: \(error)"
        }
        guard s.platform.allocatedIRQs.isEmpty else { return "irqs left after teardown: \(s.platform.allocatedIRQs.prefix(8))" }
        let before = resources(matrixBefore, countAvailable: countAvailable)
        let after = resources(s.platform.vectorMatrix, countAvailable: countAvailable)
        guard after == before else {
            let diff = zip(before, after).first { $0 != $1 }.map { "\($0) → \($1)" } ?? "\(before.count) vs \(after.count)"
            return "vectors or reservations not returned: \(diff)"
        }
        return nil
    }

    /// The matrix's resources (counters and allocated vectors per CPU), without its warning
    /// log: an over-reservation warning is history, not a leak.
    static func resources(_ m: VectorMatrix, countAvailable: Bool) -> [String] {
        let available = { (n: Int) in countAvailable ? "available \(n) " : "" }
        return ["\(available(m.globalAvailable))reserved \(m.globalReserved) allocated \(m.totalAllocated)"]
            + (0..<m.cpuCount).map { cpu in
                let c = m.counters(cpu: cpu)
                return "CPU \(cpu): \(available(c?.available ?? -1))allocated \(c?.allocated ?? -1) managed \(c?.managed ?? -1) "
                    + "managedAllocated \(c?.managedAllocated ?? -1) \(m.allocatedVectors(cpu: cpu)) \(m.managedVectors(cpu: cpu))"
            }
    }
}
