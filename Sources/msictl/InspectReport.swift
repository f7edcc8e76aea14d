// The model of what `msictl inspect` shows: capabilities, table entries joined with their
// irqs, the kernel's view, the IMS table.
import InterruptTables
import MSIShimCore
import MockHarness
import PCIAccess

/// Everything `inspect` shows about one device.
struct InspectReport {
    struct Entry {
        var index: Int
        var entry: MSIXEntry
        var pending: Bool
        var irq: Int?
        var counts: [UInt64] = []
        /// The kernel's placement of the entry's irq (live only).
        var placement: IRQPlacement?
        var check = PlacementCheck.notCompared
        var isReset: Bool { entry.addressLo == 0 && entry.addressHi == 0 && entry.data == 0 && entry.masked && !pending }
    }

    var address: PCIAddress
    var source: String
    var driver: String?
    var msi: MSICapability?
    var msix: MSIXCapability?
    var entries: [Entry] = []
    var tableRead = false
    var tableNote: String?
    var kernelIRQs: [Int] = []
    var kernelRows: [InterruptRow] = []
    /// `/proc/irq/N` placement of each kernel irq (live only).
    var kernelPlacements: [Int: IRQPlacement] = [:]
    var cpus: [Int] = []
    /// The IMS table (mock only).
    var ims: IMSView?

    init(address: PCIAddress, source: String, config: some ConfigSpaceAccess) throws {
        self.address = address
        self.source = source
        let caps = try config.capabilityList()
        if let c = caps.first(PCICapabilityID.msi) { msi = try MSICapability(config: config, at: c.offset) }
        if let c = caps.first(PCICapabilityID.msix) { msix = try MSIXCapability(config: config, at: c.offset) }
        if case .accessDenied = caps.standardStatus {
            tableNote = "capabilities are beyond the readable config space: run as root"
        }
    }

    mutating func readTable(config: any ConfigSpaceAccess, _ region: (Int) throws -> any MMIORegion) throws {
        guard let msix else { return }
        let table = try MSIXTable(config: config, capability: msix, region: region)
        let pba = try table.readPBA()
        entries = try (0..<table.tableSize).map { i in
            Entry(index: i, entry: try table.readEntry(i), pending: pba[i / 64] & (1 << UInt64(i % 64)) != 0)
        }
        tableRead = true
    }
}
