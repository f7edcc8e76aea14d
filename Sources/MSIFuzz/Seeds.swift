// The seed corpora: the real dumps of Tests/Fixtures/dumps (whole, and device by device,
// as dump text and as raw config bytes) and the reproducers of the hardening review.
// `msifuzz --make-seeds` writes them to Tests/Fuzz/Corpus/<target>/seed-*/repro-*.
import MSIShimCore
import PCIAccess

/// One named input of a seed corpus.
public struct SeedInput: Hashable, Sendable {
    /// The file name in the corpus folder (`seed-…` or `repro-…`).
    public var name: String
    /// The input.
    public var bytes: [UInt8]

    /// An input named `name`.
    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    init(_ name: String, text: String, prefix: [UInt8] = []) {
        self.init(name, prefix + Array(text.utf8))
    }
}

/// The seeds of every target, from the fixture dumps (`name`, file bytes).
public func seedCorpora(fixtureDumps: [(name: String, bytes: [UInt8])]) -> [FuzzTarget: [SeedInput]] {
    var dumps: [SeedInput] = []
    var configs: [SeedInput] = []
    for (name, bytes) in fixtureDumps {
        let stem = name.hasSuffix(".dump") ? String(name.dropLast(5)) : name
        dumps.append(SeedInput("seed-\(stem)", bytes))
        guard let records = try? LSPCIDump.parse(bytes: bytes, name: name) else { continue }
        for r in records {
            let tag = "\(stem)-\(hex(r.address.bus, width: 2))\(hex(r.address.device, width: 2))\(r.address.function)"
            dumps.append(SeedInput("seed-\(tag)", DumpNativeTarget.render([r])))
            configs.append(SeedInput("seed-\(tag)", r.bytes))
        }
    }
    dumps += [
        SeedInput("repro-device-20", text: "00:20.0 Device: x\n00: 86 80 00 00\n"),
        SeedInput("repro-function-8", text: "00:03.8 Device: x\n00: 86 80 00 00\n"),
        SeedInput("repro-offset-80000000", text: "00:03.0 Device: x\n80000000: 00\n"),
        SeedInput("repro-bare-address", text: "00:03.0\n00: 86 80 00 00\n"),
        SeedInput("repro-crlf", text: "00:03.0 Device: x\r\n00: 86 80 00 00\r\n"),
        SeedInput("repro-duplicate", text: "00:03.0 A\n00: 86 80\n\n00:03.0 B\n00: 86 80\n"),
        SeedInput("repro-empty", []),
        SeedInput("repro-long-line", text: "00:03.0 Device: " + String(repeating: "x", count: 300) + "\n"),
    ]
    configs += [
        SeedInput("repro-looped-chain", chain([(0x40, 0x05, 0x50), (0x50, 0x11, 0x40)])),
        SeedInput("repro-pointer-into-header", chain([(0x40, 0x05, 0x20)])),
        SeedInput("repro-id-ff", chain([(0x40, 0xFF, 0x00)])),
        SeedInput("repro-short", Array(repeating: 0xFF, count: 7)),
        SeedInput("repro-64-bytes-denied", Array(chain([(0x80, 0x05, 0)]).prefix(64))),
    ]
    // Mock scripts: the first byte picks the platform (bit 0 remapping, bits 1-3 CPUs - 1).
    let x86: [UInt8] = [0x02], remap: [UInt8] = [0x03]
    let scripts: [SeedInput] = [
        SeedInput("repro-crlf", text: "enable msix 1 4\r\nshow\r\n", prefix: x86),
        SeedInput("repro-freed-entry", text: "enable msix 1 4\nunmask msix 1\nfree msix 1\nfire msix 1\nshow\n", prefix: x86),
        SeedInput("repro-negative-hex", text: "enable msix 1 4\nvector 0x-1\nvector -1\n", prefix: x86),
        SeedInput("repro-huge-word", text: "frobnicate " + String(repeating: "w", count: 1500) + "\n", prefix: x86),
        SeedInput("repro-control-chars", text: "show\u{1B}[31m\nfire \u{7}msix 0\n", prefix: x86),
        SeedInput("repro-ims-shutdown", text: "ims create 4096 device\nalloc ims\nrequest ims 0\nrelease ims 0\nfree ims 0\nalloc ims\nrequest ims 0\nshow\n", prefix: x86),
        SeedInput("seed-readme", text: """
            enable msix 1 4
            request msix 0
            fire msix 0
            mask msix 0
            fire msix 0
            unmask msix 0
            ims create 4096 device
            alloc ims cookie=2a
            request ims 0
            fire ims 0
            counters
            alloc msix 2
            """, prefix: x86),
        SeedInput("seed-multi-msi-remap", text: "enable msi 4 4\nrequest msi 2\nfire msi 2\nmask msi 2\nfire msi 2\nunmask msi 2\nshow\n", prefix: remap),
        SeedInput("seed-ims-software", text: "ims create 64 software\nalloc ims\nalloc ims cookie=0x10\nrequest ims 1\nmask ims 1\nfire ims 1\nunmask ims 1\nfree ims 0\n", prefix: remap),
        SeedInput("seed-dynamic-msix", text: "enable msix 1 1\nalloc msix any\nalloc msix 7\nrequest msix 7\nfunction-mask on\nfire msix 7\nfunction-mask off\nrelease msix 7\nfree msix 7\ndisable\n", prefix: x86),
        SeedInput("seed-ntb-affinity", text: """
            enable msix 1 4
            ntb setup
            request msix 0
            ntb request
            ntb trigger 1
            affinity msix 1 0
            fire msix 1
            ntb trigger 1 offset=0x100000
            cpu 1 offline
            ntb free 1
            """, prefix: x86),
        SeedInput("seed-queues", text: """
            ims create 2 device
            queue create kernel
            queue create vfio pasid=2a
            queue create cdev pasid=1f
            queue fire 1
            queue mask vfio 1
            queue fire 1
            queue unmask vfio 1
            queue free cdev 1
            queue list
            """, prefix: remap),
        SeedInput("seed-nesting", text: "enable any 2 8 affinity\nrequest msix 1\nmask msix 1\nmask msix 1\nunmask msix 1\nfire msix 1\nunmask msix 1\nunmask msix 1\n", prefix: [0x0E]),
    ]
    // Selectors: the first byte picks the parser (0 address, 1 -s, 2 -d, 3 script number, 4 echo).
    let selectors: [SeedInput] = [
        SeedInput("repro-signed-slot", text: "00:+3.0", prefix: [0]),
        SeedInput("repro-signed-domain", text: "+0000:00:05.0", prefix: [0]),
        SeedInput("repro-newline-slot", text: "0000:00:03.0\n", prefix: [0]),
        SeedInput("seed-address", text: "0000:00:03.0", prefix: [0]),
        SeedInput("seed-short-address", text: "3a:1f.7", prefix: [0]),
        SeedInput("seed-slot-filter", text: "0000:00:1f.2", prefix: [1]),
        SeedInput("seed-slot-wildcards", text: "*:*.*", prefix: [1]),
        SeedInput("repro-slot-filter-signed", text: "00:+3.0", prefix: [1]),
        SeedInput("seed-id-filter", text: "8086::02xx", prefix: [2]),
        SeedInput("repro-negative-hex", text: "0x-1", prefix: [3]),
        SeedInput("seed-number", text: "0x1f", prefix: [3]),
        SeedInput("repro-escape", text: "\u{1B}]0;title\u{7}" + String(repeating: "e", count: 100), prefix: [4]),
    ]
    return [.dumpNative: dumps, .dumpLibPCI: dumps, .capabilities: configs, .mockScript: scripts, .selectors: selectors]
}

/// 256 config bytes with the capability list bit set and a chain of (offset, id, next).
func chain(_ entries: [(Int, UInt8, Int)]) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 256)
    b[0] = 0x86; b[1] = 0x80
    b[PCIReg.status] = UInt8(PCIReg.Status.capabilityList)
    b[PCIReg.capabilityListPointer] = UInt8(entries.first?.0 ?? 0)
    for (at, id, next) in entries {
        b[at] = id
        b[at + 1] = UInt8(next)
    }
    return b
}
