import ArgumentParser
import MSIShimCore
import PCIAccess
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// `msictl export`: the machine's MSI/MSI-X state and per-vector interrupt counts as metrics,
/// for Prometheus' node exporter (textfile collector) or as JSON.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export MSI/MSI-X state and per-vector interrupt counts as Prometheus metrics or JSON.",
        discussion: """
            Prometheus text exposition format (default): msictl_msix_enabled, \
            msictl_msix_table_size, msictl_msi_enabled, msictl_msi_vectors per device \
            {slot, driver}; msictl_interrupts_total per vector and CPU {slot, driver, kind, \
            index, cpu} (a counter, from /proc/interrupts) and msictl_vector_effective_cpu \
            {slot, driver, kind, index}. --output FILE replaces FILE atomically (a temporary \
            file beside it, then rename), so node exporter's textfile collector never reads a \
            partial file: point it at a *.prom file in the collector's directory.

            Exit status: 0 written; 2 usage/input error (an unwritable --output, PCI devices \
            unreadable).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case prometheus, json
    }

    @Option(name: .long, help: ArgumentHelp("prometheus (text exposition format) or json.", valueName: "prometheus|json"))
    var format: Format = .prometheus

    @Option(name: .long, help: ArgumentHelp("Write to this file atomically instead of stdout.", valueName: "file"))
    var output: String?

    func run() throws {
        let report: ProbeReport
        do {
            report = try PCIProbe.run(liveSource(), options: ProbeOptions(lookupNames: false))
        } catch {
            throw ValidationError("\(error)")
        }
        if report.devices.contains(where: { $0.problems.contains { if case .capabilitiesNeedRoot = $0 { true } else { false } } }) {
            printError("warning: capabilities need root: only interrupt counts and placement are exported", command: "export")
        }
        let metrics = ExportMetrics(report)
        let bytes = format == .prometheus ? metrics.prometheus() : metrics.json()
        if let output {
            do { try writeFileAtomically(output, bytes) } catch { throw ValidationError(error.description) }
        } else {
            ProbeIO.writeAll(1, bytes)
        }
    }
}

/// The exported values, one record per device with MSI or MSI-X.
struct ExportMetrics {
    struct Vector {
        var kind: MSIKind
        var index: Int
        var irq: Int
        var counts: [(cpu: Int, count: UInt64)]
        var effectiveAffinity: CPUList?
    }

    struct Device {
        var slot: String
        var driver: String
        var msix: MSIXCapability?
        var msi: MSICapability?
        var vectors: [Vector]
    }

    var devices: [Device]

    init(_ report: ProbeReport) {
        let cpus = report.cpus ?? []
        // Devices with MSI or MSI-X, or with MSI irqs (a non-root reader sees the irqs and
        // their counts but not the capabilities).
        devices = report.devices.filter { $0.msi != nil || $0.msix != nil || !($0.irqs ?? []).isEmpty }.map { d in
            Device(
                slot: d.address.description, driver: d.driver ?? "", msix: d.msix, msi: d.msi,
                vectors: (d.irqs ?? []).compactMap { irq in
                    // Allocated but never requested: no row in /proc/interrupts, nothing counted.
                    guard let index = irq.index, let counts = irq.counts, counts.count == cpus.count else { return nil }
                    return Vector(
                        kind: irq.kind, index: index, irq: irq.irq, counts: Array(zip(cpus, counts)),
                        effectiveAffinity: irq.placement.effectiveAffinity)
                })
        }
    }

    /// MSI vectors in use: Multiple Message Enable's count while MSI is on, else 0.
    static func vectorsInUse(_ m: MSICapability) -> Int { m.enabled ? m.countEnabled : 0 }

    // MARK: Prometheus

    /// The metric names and HELP texts (name = namespace_metricName_unitName).
    static func metric(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "msictl", metricName: name, unitName: unit, helpText: help)
    }
    static var msixEnabled: MetricNameDescriptor {
        metric("msix", "enabled", "Whether MSI-X is enabled (1) or not (0) in the device's capability.")
    }
    static var msixTableSize: MetricNameDescriptor { metric("msix_table", "size", "Entries in the device's MSI-X table.") }
    static var msiEnabled: MetricNameDescriptor {
        metric("msi", "enabled", "Whether MSI is enabled (1) or not (0) in the device's capability.")
    }
    static var msiVectors: MetricNameDescriptor {
        metric("msi", "vectors", "MSI vectors enabled (Multiple Message Enable; 0 while MSI is off).")
    }
    static var interruptsTotal: MetricNameDescriptor {
        metric("interrupts", "total", "Interrupts of one MSI/MSI-X vector handled on one CPU (from /proc/interrupts).")
    }
    static var vectorEffectiveCPU: MetricNameDescriptor {
        metric("vector_effective", "cpu", "The CPU the kernel targets with the vector (lowest of /proc/irq/N/effective_affinity_list).")
    }

    /// The text exposition format, rendered by swift-prometheus (names, HELP/TYPE lines, label
    /// escaping). One registry per metric family keeps the families in this order; within a
    /// family the samples are sorted so the file is the same for the same state.
    func prometheus() -> [UInt8] {
        var out: [UInt8] = []
        func family(_ build: (PrometheusCollectorRegistry) -> Void) {
            let registry = PrometheusCollectorRegistry()
            build(registry)
            let lines = registry.emitToBuffer().split(separator: UInt8(ascii: "\n"))
            let comments = lines.filter { $0.first == UInt8(ascii: "#") }
            let samples = lines.filter { $0.first != UInt8(ascii: "#") }.sorted { $0.lexicographicallyPrecedes($1) }
            for line in comments + samples {
                out.append(contentsOf: line)
                out.append(UInt8(ascii: "\n"))
            }
        }
        func labels(_ d: Device) -> [(String, String)] { [("slot", d.slot), ("driver", d.driver)] }
        func labels(_ d: Device, _ v: Vector) -> [(String, String)] {
            labels(d) + [("kind", v.kind.rawValue), ("index", String(v.index))]
        }
        let flag: (Bool) -> Double = { $0 ? 1 : 0 }

        family { r in
            for d in devices { if let x = d.msix {
                r.makeGauge(descriptor: Self.msixEnabled, labels: labels(d)).set(to: flag(x.enabled))
            } }
        }
        family { r in
            for d in devices { if let x = d.msix {
                r.makeGauge(descriptor: Self.msixTableSize, labels: labels(d)).set(to: Double(x.tableSize))
            } }
        }
        family { r in
            for d in devices { if let m = d.msi {
                r.makeGauge(descriptor: Self.msiEnabled, labels: labels(d)).set(to: flag(m.enabled))
            } }
        }
        family { r in
            for d in devices { if let m = d.msi {
                r.makeGauge(descriptor: Self.msiVectors, labels: labels(d)).set(to: Double(Self.vectorsInUse(m)))
            } }
        }
        family { r in
            for d in devices {
                for v in d.vectors {
                    for (cpu, count) in v.counts {
                        r.makeCounter(descriptor: Self.interruptsTotal, labels: labels(d, v) + [("cpu", String(cpu))])
                            .increment(by: Int64(clamping: count))
                    }
                }
            }
        }
        family { r in
            for d in devices {
                for v in d.vectors {
                    guard let cpu = v.effectiveAffinity?.cpus.first else { continue }
                    r.makeGauge(descriptor: Self.vectorEffectiveCPU, labels: labels(d, v)).set(to: Double(cpu))
                }
            }
        }
        return out
    }

    // MARK: JSON

    /// The same values as one JSON object (`devices` → `vectors` → per-CPU `counts`).
    func json() -> [UInt8] {
        var w = JSONWriter(capacity: 256 + 512 * devices.count)
        w.beginObject()
        w.key("devices")
        w.beginArray()
        for d in devices {
            w.newline()
            w.beginObject()
            w.key("slot"); w.string(d.slot)
            w.key("driver"); w.string(d.driver.isEmpty ? nil : d.driver)
            w.key("msixEnabled")
            if let x = d.msix { w.bool(x.enabled) } else { w.null() }
            w.key("msixTableSize"); w.number(d.msix?.tableSize)
            w.key("msiEnabled")
            if let m = d.msi { w.bool(m.enabled) } else { w.null() }
            w.key("msiVectors"); w.number(d.msi.map(Self.vectorsInUse))
            w.key("vectors")
            w.beginArray()
            for v in d.vectors {
                w.beginObject()
                w.key("kind"); w.string(v.kind.rawValue)
                w.key("index"); w.number(v.index)
                w.key("irq"); w.number(v.irq)
                w.key("cpus"); w.beginArray(); for c in v.counts { w.number(c.cpu) }; w.endArray()
                w.key("counts"); w.beginArray(); for c in v.counts { w.number(c.count) }; w.endArray()
                w.key("effectiveAffinity"); w.string(v.effectiveAffinity?.text)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.raw("\n")
        w.endArray()
        w.endObject()
        w.raw("\n")
        return w.takeBytes()
    }
}
