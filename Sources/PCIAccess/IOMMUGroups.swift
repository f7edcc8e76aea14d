// IOMMU groups as vfio-pci judges them: a group is viable only when every member is bound to
// a vfio driver or pci-stub, unbound, or a bridge. Binding explains this before a bind; VFIO
// names the blockers when a group cannot be opened.
#if canImport(Glibc)
import Glibc
#endif
public import MSIShimCore

/// A device in an IOMMU group, with the driver it is bound to (nil = none).
public struct GroupMember: Hashable, Sendable, CustomStringConvertible {
    /// The member.
    public var address: PCIAddress
    /// Its driver (nil = none).
    public var driver: String?

    /// Creates a member description.
    public init(address: PCIAddress, driver: String?) {
        self.address = address
        self.driver = driver
    }

    public var description: String { "\(address) (\(driver.map { "bound to \($0)" } ?? "no driver"))" }
}

extension SysfsPCI {
    /// Members of the device's IOMMU group that make it non-viable: bound to a driver that is
    /// neither a vfio driver nor pci-stub, and not a bridge (vfio allows kernel drivers on
    /// non-type-0 headers).
    public func vfioGroupBlockers(of address: PCIAddress) -> [GroupMember] {
        iommuGroupMembers(of: address).filter { $0 != address }.compactMap { member -> GroupMember? in
            let driver = self.driver(of: member)
            guard let d = driver, !d.hasPrefix("vfio"), d != "pci-stub" else { return nil }
            if let header = headerType(of: member), header & 0x7F != 0 { return nil }
            return GroupMember(address: member, driver: driver)
        }
    }

    /// The Header Type register of `address`, read from its sysfs `config` file.
    func headerType(of address: PCIAddress) -> UInt8? {
        let fd = Glibc.open(devicePath(address) + "/config", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var byte: UInt8 = 0
        return Glibc.pread(fd, &byte, 1, off_t(PCIReg.headerType)) == 1 ? byte : nil
    }
}
