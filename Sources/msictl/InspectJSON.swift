// `msictl inspect --json`: the report as JSON (keys documented in README).
import InterruptTables
import MSIModel
import MSIShimCore
import PCIAccess

extension InspectReport {
    static func decode(_ e: MSIXEntry) -> JSONValue {
        switch X86MSIFormat.decode(MSIMessage(addressLo: e.addressLo, addressHi: e.addressHi, data: e.data)) {
        case .compatibility(let m):
            .object([
                ("format", .string("compatibility")), ("destination", .int(Int(m.destination))),
                ("destinationMode", .string(m.destinationMode == .logical ? "logical" : "physical")),
                ("vector", .int(m.vector)),
            ])
        case .remappable(let m):
            .object([
                ("format", .string("remappable")), ("handle", .int(m.handle)),
                ("subhandleValid", .bool(m.subhandleValid)), ("subhandle", .int(m.subhandle)),
            ])
        case .notAnInterrupt:
            .object([("format", .string("none"))])
        }
    }

    /// `true`/`false` when the table's destination was compared with the effective affinity,
    /// null when it could not be.
    static func differsJSON(_ check: PlacementCheck) -> JSONValue {
        switch check {
        case .agrees: .bool(false)
        case .differs: .bool(true)
        case .notCompared: .null
        }
    }

    var json: JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("slot", .string(address.description)), ("source", .string(source)),
            ("driver", driver.map { .string($0) } ?? .null),
        ]
        if let m = msi {
            pairs.append(("msi", .object([
                ("capOffset", .int(m.capOffset)), ("enabled", .bool(m.enabled)), ("countCapable", .int(m.countCapable)),
                ("countEnabled", .int(m.countEnabled)), ("maskable", .bool(m.maskable)), ("is64Bit", .bool(m.is64Bit)),
                ("address", .uint(m.address)), ("data", .int(Int(m.data))),
                ("mask", m.mask.map { .int(Int($0)) } ?? .null), ("pending", m.pending.map { .int(Int($0)) } ?? .null),
            ])))
        } else {
            pairs.append(("msi", .null))
        }
        if let x = msix {
            pairs.append(("msix", .object([
                ("capOffset", .int(x.capOffset)), ("enabled", .bool(x.enabled)), ("functionMasked", .bool(x.functionMasked)),
                ("tableSize", .int(x.tableSize)), ("tableBAR", .int(x.tableBIR)), ("tableOffset", .int(Int(x.tableOffset))),
                ("pbaBAR", .int(x.pbaBIR)), ("pbaOffset", .int(Int(x.pbaOffset))),
                ("tableReadable", .bool(tableRead)), ("tableNote", tableNote.map { .string($0) } ?? .null),
                ("entries", tableRead ? .array(entries.map { e in
                    .object([
                        ("index", .int(e.index)), ("addressLo", .int(Int(e.entry.addressLo))),
                        ("addressHi", .int(Int(e.entry.addressHi))), ("data", .int(Int(e.entry.data))),
                        ("vectorControl", .int(Int(e.entry.vectorControl))), ("masked", .bool(e.entry.masked)),
                        ("pending", .bool(e.pending)), ("decoded", Self.decode(e.entry)),
                        ("irq", e.irq.map { .int($0) } ?? .null), ("counts", .array(e.counts.map { .int(Int($0)) })),
                        ("smpAffinity", e.placement?.smpAffinity.map { .string($0.text) } ?? .null),
                        ("effectiveAffinity", e.placement?.effectiveAffinity.map { .string($0.text) } ?? .null),
                        ("node", e.placement?.node.map { .int($0) } ?? .null),
                        ("placementDiffers", Self.differsJSON(e.check)),
                    ])
                }) : .null),
                ("pending", tableRead ? .array(entries.filter(\.pending).map { .int($0.index) }) : .null),
            ])))
        } else {
            pairs.append(("msix", .null))
        }
        pairs.append(("kernelIRQs", .array(kernelIRQs.map { .int($0) })))
        pairs.append(("kernelIRQPlacement", .array(kernelIRQs.compactMap { irq in
            kernelPlacements[irq].map { p in
                .object([
                    ("irq", .int(irq)), ("smpAffinity", p.smpAffinity.map { .string($0.text) } ?? .null),
                    ("effectiveAffinity", p.effectiveAffinity.map { .string($0.text) } ?? .null),
                    ("node", p.node.map { .int($0) } ?? .null),
                ])
            }
        })))
        pairs.append(("ims", ims?.json(includeReset: true) ?? .null))
        return .object(pairs)
    }
}
