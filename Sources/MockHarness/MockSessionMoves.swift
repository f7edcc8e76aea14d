// What the `ntb` and `affinity` mock commands do (see MockScriptMoves.swift): the NTB client
// of the MSIModel on the mock device, and irq_set_affinity on its interrupts.
import MSIModel
import MSIShimCore

extension MockSession {
    /// The NTB client, created (`ntb_msi_init`) on first use.
    func ntb() -> NTBMSIClient {
        if let c = ntbClient { return c }
        let c = NTBMSIClient(device: model)
        ntbClient = c
        return c
    }

    static func window(_ w: NTBMemoryWindow) -> JSONValue {
        .object([("base", .int(Int(w.base))), ("end", .int(Int(w.end))), ("translated", .int(Int(w.translatedSize)))])
    }

    func executeNTB(_ command: NTBCommand) throws -> JSONValue {
        let client = ntb()
        switch command {
        case let .setup(align, max):
            var a = NTBWindowAlignment()
            if let align { a.address = align }
            if let max { a.maximumSize = max }
            return Self.window(try client.setupMemoryWindows(a))
        case .request:
            // A client sets the windows up at link-up; the first request does it if not yet.
            if client.window == nil { try client.setupMemoryWindows() }
            let r = try client.requestIRQ { [handled] v in handled.count(v) }
            return .object([
                ("index", .int(r.index)), ("virq", .int(r.virq)),
                ("offset", .int(Int(r.descriptor.addressOffset))), ("data", .int(Int(r.descriptor.data))),
            ])
        case let .trigger(index, offset, data):
            guard let (_, published) = client.published(index: index) else {
                throw MockCommandError(.EINVAL, "ntb_msi_peer_trigger: nothing was published to the peer for index \(index)")
            }
            let descriptor = NTBMSIDescriptor(addressOffset: offset ?? published.addressOffset, data: data ?? published.data)
            let result = try client.peerTrigger(descriptor)
            let source = JSONValue.string("ntb peer offset 0x\(String(descriptor.addressOffset, radix: 16)) data 0x\(String(descriptor.data, radix: 16))")
            switch result {
            case let .delivered(virq, cpu, vector):
                return .object([
                    ("source", source),
                    ("delivered", .object([("virq", .int(virq)), ("cpu", .int(cpu)), ("vector", .int(vector))])),
                ])
            case .dropped(let why):
                return .object([("source", source), ("dropped", .string(why.description))])
            }
        case .free(let index):
            guard let (virq, _) = client.published(index: index) else {
                throw MockCommandError(.EINVAL, "ntbm_msi_free_irq: index \(index) was not requested through NTB")
            }
            try client.freeIRQ(virq)
            return .object([("freed", .int(virq))])
        }
    }

    func executeAffinity(_ kind: InterruptKind, index: Int, cpu: Int) throws -> JSONValue {
        let virq = try virq(kind, index)
        let changesBefore = ntbClient?.changeCount ?? 0
        let warningsBefore = ntbClient?.warnings.count ?? 0
        let t = try model.setAffinity(virq, toCPU: cpu)
        var out: [(String, JSONValue)] = [("virq", .int(t.virq)), ("cpu", .int(t.cpu)), ("vector", .int(t.vector))]
        if let client = ntbClient, let published = client.published(virq: virq) {
            var ntb: [(String, JSONValue)] = [
                ("offset", .int(Int(published.addressOffset))), ("data", .int(Int(published.data))),
                ("republished", .int(client.changeCount - changesBefore)),
            ]
            if client.warnings.count > warningsBefore { ntb.append(("stale", .bool(true))) }
            out.append(("ntb", .object(ntb)))
        }
        return .object(out)
    }
}
