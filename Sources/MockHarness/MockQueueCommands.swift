// `queue …` lines of a mock script: work queues shared by consumers (WorkQueues), driven as a
// thin layer over WorkQueueDevice. The session builds the work-queue device (the driver's
// probe: MSI-X vector 0 for the control block) at the first queue command.
public import WorkQueues
import MSIModel
import MSIShimCore
import MockDevice

/// A `queue` command of a mock script.
public enum QueueCommand: Hashable, Sendable {
    /// `queue create kernel|vfio|cdev [pasid=HEX]` → a queue with its completion interrupt.
    case create(QueueConsumer, pasid: UInt32?)
    /// `queue free CONSUMER Q` → free_irq, then the IMS slot or MSI-X entry.
    case free(QueueConsumer, queue: Int)
    /// `queue mask CONSUMER Q` → disable_irq of the queue's interrupt.
    case mask(QueueConsumer, queue: Int)
    /// `queue unmask CONSUMER Q` → enable_irq of the queue's interrupt.
    case unmask(QueueConsumer, queue: Int)
    /// `queue fire Q` → the device completes work on queue Q and raises its interrupt.
    case fire(queue: Int)
    /// `queue list` → the control block and every queue.
    case list
}

/// The usage line of the queue commands.
let queueUsage = "queue create kernel|vfio|cdev [pasid=HEX] | queue free|mask|unmask CONSUMER Q | queue fire Q | queue list"

/// Parses the words after `queue`.
func parseQueueCommand(_ args: [String], line: Int) -> Result<MockCommand, MockScriptError> {
    func fail(_ m: String) -> Result<MockCommand, MockScriptError> { .failure(MockScriptError(line: line, message: m)) }
    func consumer(_ word: String) -> QueueConsumer? { QueueConsumer(rawValue: word) }
    func number(_ word: String) -> Int? { parseScriptNumber(word) }
    guard let verb = args.first else { return fail("usage: \(queueUsage)") }
    switch verb {
    case "create":
        guard args.count == 2 || args.count == 3 else { return fail("usage: queue create kernel|vfio|cdev [pasid=HEX]") }
        guard let c = consumer(args[1]) else { return fail("unknown consumer '\(echoed(args[1]))': use kernel, vfio or cdev") }
        guard args.count == 3 else { return .success(.queue(.create(c, pasid: nil))) }
        guard args[2].hasPrefix("pasid=") else { return fail("expected pasid=HEX, got '\(echoed(args[2]))'") }
        var text = args[2].dropFirst("pasid=".count)
        if text.hasPrefix("0x") || text.hasPrefix("0X") { text = text.dropFirst(2) }
        guard let wide = parseHexUInt64(text), let pasid = UInt32(exactly: wide) else {
            return fail("PASID '\(echoed(args[2].dropFirst("pasid=".count)))' is not a hex number of at most 32 bits")
        }
        return .success(.queue(.create(c, pasid: pasid)))
    case "free", "mask", "unmask":
        guard args.count == 3 else { return fail("usage: queue \(verb) kernel|vfio|cdev Q") }
        guard let c = consumer(args[1]) else { return fail("unknown consumer '\(echoed(args[1]))': use kernel, vfio or cdev") }
        guard let q = number(args[2]) else { return fail("'\(echoed(args[2]))' is not a queue number") }
        switch verb {
        case "free": return .success(.queue(.free(c, queue: q)))
        case "mask": return .success(.queue(.mask(c, queue: q)))
        default: return .success(.queue(.unmask(c, queue: q)))
        }
    case "fire":
        guard args.count == 2, let q = number(args[1]) else { return fail("usage: queue fire Q") }
        return .success(.queue(.fire(queue: q)))
    case "list":
        guard args.count == 1 else { return fail("queue list takes no arguments") }
        return .success(.queue(.list))
    default:
        return fail("unknown queue command '\(verb)' (usage: \(queueUsage))")
    }
}

/// The mock device raising a queue's interrupt.
struct MockQueueSignals: QueueSignals {
    let device: MockPCIDevice
    func raise(_ interrupt: QueueInterrupt) -> FireResult {
        switch interrupt {
        case .ims(let index): device.fireIMS(index)
        case .msix(let index): device.fireMSIX(index)
        }
    }
}

extension MockSession {
    /// The work-queue device, probed at the first queue command. Its IMS pool is the IMS
    /// domain when that domain is a device slot array (the PASID rides in the slot); a
    /// software-storage domain finds its storage through the cookie, which therefore cannot
    /// also carry the PASID, so queues then use MSI-X.
    func workQueues() throws -> WorkQueueDevice {
        let wq: WorkQueueDevice
        if let existing = queueDevice {
            wq = existing
        } else {
            wq = try WorkQueueDevice(device: model, signals: MockQueueSignals(device: device)) { [handled] v in handled.count(v) }
            queueDevice = wq
        }
        wq.usesIMS = imsStorage == .device
        return wq
    }

    func executeQueue(_ command: QueueCommand) throws -> JSONValue {
        do {
            return try runQueue(command)
        } catch let e as WorkQueueError {
            throw MockCommandError(e.code, e.message)
        }
    }

    func runQueue(_ command: QueueCommand) throws -> JSONValue {
        let wq = try workQueues()
        switch command {
        case let .create(consumer, pasid):
            return Self.describe(try wq.createQueue(for: consumer, pasid: pasid), full: false)
        case let .free(consumer, q):
            try wq.freeQueue(q, by: consumer)
            return .object([("freed", .int(q))])
        case let .mask(consumer, q):
            try wq.maskQueue(q, by: consumer)
            return .object([("queue", .int(q)), ("masked", .bool(true))])
        case let .unmask(consumer, q):
            try wq.unmaskQueue(q, by: consumer)
            return .object([("queue", .int(q)), ("masked", .bool(false))])
        case .fire(let q):
            let result = try wq.complete(q)
            _ = sink.take()  // reported here, not again under "sent"
            guard case .object(let pairs) = Self.describe(result) else { return Self.describe(result) }
            return .object([("queue", .int(q))] + pairs)
        case .list:
            let control = wq.controlBlock
            return .object([
                ("controlBlock", .object([
                    ("interrupt", .string("msix")), ("index", .int(0)), ("virq", .int(control.virq)),
                    ("count", .int(handlerCounts[control.virq] ?? 0)),
                ])),
                ("queues", .array(wq.queues.map { Self.describe($0, full: true) })),
            ])
        }
    }

    /// `{queue, consumer, pasid, interrupt, index, virq}` (+ `masked, completions` in full).
    static func describe(_ q: WorkQueueInfo, full: Bool) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("queue", .int(q.queue)), ("consumer", .string(q.consumer.rawValue)),
            ("pasid", q.pasid.map { .int(Int($0)) } ?? .null), ("interrupt", .string(q.interrupt.kind)),
            ("index", .int(q.interrupt.index)), ("virq", .int(q.virq)),
        ]
        if full { pairs += [("masked", .bool(q.masked)), ("completions", .int(q.completions))] }
        return .object(pairs)
    }
}
