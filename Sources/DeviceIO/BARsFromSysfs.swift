// The BARs of a live function, from its sysfs `resource` file (decoding is MSIShimCore's).
public import MSIShimCore
public import PCIAccess

extension PCIBAR {
    /// Reads `resource` of `address` from sysfs; nil when the device has none.
    public static func fromSysfs(_ address: PCIAddress, sysfs: SysfsPCI) -> [PCIBAR]? {
        guard let text = readText(sysfs.devicePath(address) + "/resource") else { return nil }
        return parseSysfsResource(text)
    }
}
