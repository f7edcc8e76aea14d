#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// The kernel's sysfs view of PCI devices, rooted at a configurable path so tests can use a
/// fake tree in a temporary folder (`root` = that folder, holding `bus/pci/devices/...`).
///
/// Reads return `nil` for absent attributes (a device without a driver, a kernel without
/// IOMMU groups) rather than throwing: absence is information, not an error. Writes throw
/// `FileError` carrying the errno.
public struct SysfsPCI: Sendable {
    /// The sysfs mount point, `/sys` on a live system.
    public var root: String

    /// A reader of the sysfs tree mounted at `root`.
    public init(root: String = "/sys") {
        self.root = root
    }

    /// `<root>/bus/pci/devices/<bdf>`.
    public func devicePath(_ address: PCIAddress) -> String {
        root + "/bus/pci/devices/" + address.description
    }

    /// Whether the device directory exists (false once the device is removed).
    public func exists(_ address: PCIAddress) -> Bool {
        access(devicePath(address), F_OK) == 0
    }

    /// Every PCI function sysfs lists, sorted.
    public func addresses() -> [PCIAddress] {
        listDirectory(root + "/bus/pci/devices").compactMap { try? PCIAddress(parsing: $0) }.sorted()
    }

    /// Name of the bound driver (basename of the `driver` link), or nil when unbound.
    public func driver(of address: PCIAddress) -> String? {
        readLinkBasename(devicePath(address) + "/driver")
    }

    /// IOMMU group number (basename of the `iommu_group` link), or nil without an IOMMU.
    public func iommuGroup(of address: PCIAddress) -> Int? {
        readLinkBasename(devicePath(address) + "/iommu_group").flatMap { Int($0) }
    }

    /// Other functions in the same IOMMU group (from `iommu_group/devices`).
    public func iommuGroupMembers(of address: PCIAddress) -> [PCIAddress] {
        listDirectory(devicePath(address) + "/iommu_group/devices").compactMap { try? PCIAddress(parsing: $0) }.sorted()
    }

    /// The kernel's MSI/MSI-X interrupts of the device: `msi_irqs/<irq>` files, each holding
    /// `msi` or `msix`. Empty when none are allocated (the directory is then absent).
    public func msiIRQs(of address: PCIAddress) -> [(irq: Int, kind: String)] {
        let dir = devicePath(address) + "/msi_irqs"
        return listDirectory(dir).compactMap { name -> (irq: Int, kind: String)? in
            guard let irq = Int(name) else { return nil }
            let kind = readText(dir + "/" + name)?.trimmingWhitespace() ?? "msi"
            return (irq, kind)
        }.sorted { $0.irq < $1.irq }
    }

    /// Size of the `config` file (256 or 4096; what root may read), nil if absent.
    public func configFileSize(of address: PCIAddress) -> Int? {
        var st = stat()
        guard stat(devicePath(address) + "/config", &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    /// The Linux IRQ numbers in `msi_irqs/`, sorted (without reading each file's kind).
    public func msiIRQNumbers(of address: PCIAddress) -> [Int] {
        listDirectory(devicePath(address) + "/msi_irqs").compactMap { Int($0) }.sorted()
    }

    /// The content of `msi_irqs/<irq>`: "msi" or "msix"; nil if absent.
    public func msiIRQKind(of address: PCIAddress, irq: Int) -> String? {
        readText(devicePath(address) + "/msi_irqs/\(irq)")?.trimmingWhitespace()
    }

    /// The contents of an attribute file, without the trailing newline; nil if unreadable.
    public func attribute(_ name: String, of address: PCIAddress) -> String? {
        readText(devicePath(address) + "/" + name)?.trimmingWhitespace()
    }

    /// Writes `value` to an attribute file (e.g. `driver_override`), as `echo value > file`.
    public func writeAttribute(_ name: String, of address: PCIAddress, _ value: String) throws(FileError) {
        try writeFile(devicePath(address) + "/" + name, value)
    }

    /// Writes `value` to a file below the sysfs root (e.g. `bus/pci/drivers_probe`).
    public func writeFile(relative path: String, _ value: String) throws(FileError) {
        try writeFile(root + "/" + path, value)
    }

    // MARK: - Small file helpers (no Foundation: probe must start fast)

    func writeFile(_ path: String, _ value: String) throws(FileError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var bytes = Array(value.utf8)
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw FileError(operation: "write", path: path, errno: n < 0 ? errno : EIO) }
    }
}
