// The structural checks of a device's descriptor stores, for callers outside the module
// (the fuzz targets run them after every command; the property tests run them in-module).

extension MSIDevice {
    /// Checks every descriptor store of the device (page table, occupancy words, indices,
    /// counts) under the device lock. Returns nil when all hold, else what is broken.
    public func checkInvariants() -> String? {
        withLockedDescriptors { $0.checkStoreInvariants() }
    }
}
