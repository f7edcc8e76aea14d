import MSIShimCore
import PCIAccess

/// `msictl probe --json`: a JSON array, one object per device, one device per line.
///
/// Keys are camelCase; numbers are JSON numbers; an absent capability is `null`. In dump
/// mode `driver`, `iommuGroup` and `irqs` are `null` (unknown, not "none"); on the live
/// system `irqs` is `[]` for a device without MSI/MSI-X interrupts. README's "msictl probe"
/// section documents every key.
enum ProbeJSON {
    static func render(_ report: ProbeReport) -> [UInt8] {
        var w = JSONWriter(capacity: 1536 * report.devices.count + 64)
        w.beginArray()
        for device in report.devices {
            w.newline()
            write(device, cpus: report.cpus, to: &w)
        }
        w.raw("\n")
        w.endArray()
        w.raw("\n")
        return w.takeBytes()
    }

    static func write(_ d: PCIDeviceInfo, cpus: [Int]?, to w: inout JSONWriter) {
        w.beginObject()
        w.key("slot"); w.string(d.address.description)
        w.key("vendorId"); w.number(Int(d.vendorID))
        w.key("deviceId"); w.number(Int(d.deviceID))
        w.key("classId"); w.number(Int(d.classCode))
        w.key("progIf"); w.number(Int(d.programmingInterface))
        w.key("revision"); w.number(Int(d.revision))
        w.key("headerType"); w.number(Int(d.headerType))
        w.key("vendorName"); w.string(d.vendorName)
        w.key("deviceName"); w.string(d.deviceName)
        w.key("className"); w.string(d.className)
        w.key("pcieType"); w.string(d.pcieType?.description)
        w.key("driver"); w.string(d.driver)
        w.key("iommuGroup"); w.number(d.iommuGroup)
        w.key("configSize"); w.number(d.configSize)

        w.key("bars")
        w.beginArray()
        for bar in d.bars {
            w.beginObject()
            w.key("index"); w.number(bar.index)
            w.key("base"); w.number(bar.base)
            w.key("size"); w.number(bar.size)
            w.key("is64Bit"); w.bool(bar.is64Bit)
            w.key("prefetchable"); w.bool(bar.prefetchable)
            w.key("isIO"); w.bool(bar.isIO)
            w.key("disabled"); w.bool(bar.isDisabled)
            w.endObject()
        }
        w.endArray()

        w.key("capabilities")
        w.beginArray()
        for cap in d.capabilities {
            w.beginObject()
            w.key("id"); w.number(Int(cap.id))
            w.key("offset"); w.number(cap.offset)
            w.key("name"); w.string(cap.name)
            w.key("extended"); w.bool(cap.extended)
            if cap.extended { w.key("version"); w.number(Int(cap.version)) }
            w.endObject()
        }
        w.endArray()
        w.key("capabilityChain")
        w.beginObject()
        w.key("standard"); chain(d.standardChain, &w)
        w.key("extended"); chain(d.extendedChain, &w)
        w.endObject()

        w.key("msi")
        if let m = d.msi {
            w.beginObject()
            w.key("capOffset"); w.number(m.capOffset)
            w.key("enabled"); w.bool(m.enabled)
            w.key("countCapable"); w.number(m.countCapable)
            w.key("countEnabled"); w.number(m.countEnabled)
            w.key("maskable"); w.bool(m.maskable)
            w.key("is64Bit"); w.bool(m.is64Bit)
            w.key("address"); w.number(m.address)
            w.key("data"); w.number(Int(m.data))
            w.key("mask"); w.number(m.mask.map { UInt64($0) })
            w.key("pending"); w.number(m.pending.map { UInt64($0) })
            w.endObject()
        } else {
            w.null()
        }

        w.key("msix")
        if let x = d.msix {
            w.beginObject()
            w.key("capOffset"); w.number(x.capOffset)
            w.key("enabled"); w.bool(x.enabled)
            w.key("functionMasked"); w.bool(x.functionMasked)
            w.key("tableSize"); w.number(x.tableSize)
            w.key("tableBAR"); w.number(x.tableBIR)
            w.key("tableOffset"); w.number(UInt64(x.tableOffset))
            w.key("pbaBAR"); w.number(x.pbaBIR)
            w.key("pbaOffset"); w.number(UInt64(x.pbaOffset))
            w.endObject()
        } else {
            w.null()
        }

        w.key("irqs")
        if let irqs = d.irqs {
            w.beginArray()
            for irq in irqs {
                w.beginObject()
                w.key("irq"); w.number(irq.irq)
                w.key("kind"); w.string(irq.kind.rawValue)
                w.key("index"); w.number(irq.index)
                w.key("counts")
                if let counts = irq.counts {
                    w.beginArray()
                    for c in counts { w.number(c) }
                    w.endArray()
                } else {
                    w.null()
                }
                w.key("cpus")
                if irq.counts != nil, let cpus {
                    w.beginArray()
                    for c in cpus { w.number(c) }
                    w.endArray()
                } else {
                    w.null()
                }
                w.key("actions"); w.string(irq.actions)
                w.key("smpAffinity"); w.string(irq.placement.smpAffinity?.text)
                w.key("effectiveAffinity"); w.string(irq.placement.effectiveAffinity?.text)
                w.key("node"); w.number(irq.placement.node)
                w.endObject()
            }
            w.endArray()
        } else {
            w.null()
        }

        w.key("problems")
        w.beginArray()
        for p in d.problems { w.string(p.description) }
        w.endArray()
        w.endObject()
    }

    static func chain(_ status: CapabilityChainStatus, _ w: inout JSONWriter) {
        w.beginObject()
        w.key("status")
        switch status {
        case .complete: w.string("complete")
        case .looped: w.string("looped")
        case .broken: w.string("broken")
        case .accessDenied: w.string("accessDenied")
        }
        w.key("at"); w.number(status.offset)
        w.endObject()
    }
}
