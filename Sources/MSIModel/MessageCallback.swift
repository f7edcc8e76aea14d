// msi_desc::write_msi_msg: a per-descriptor callback that __pci_write_msi_msg() calls after
// every message write, with the message already cached in the descriptor. Its one in-tree
// user is NTB (drivers/ntb/msi.c), which re-publishes a moved interrupt to its peer.

/// `desc->write_msi_msg(desc, data)`: called with the descriptor after each PCI message write
/// (the hardware may have been skipped for a device not in D0; the cached message is new
/// either way). It runs with the device lock held: it must not call back into the device.
public typealias MSIMessageWrittenCallback = @Sendable (MSIDescriptor) -> Void

extension MSIDeviceData {
    /// Sets (or, with nil, clears) `write_msi_msg` of the default-domain descriptor at `index`.
    /// - Throws: EINVAL when there is no descriptor at `index`.
    public mutating func setMessageWrittenCallback(index: Int, _ callback: MSIMessageWrittenCallback?) throws(MSIError) {
        guard let s = slot(.default, index) else {
            throw MSIError(.EINVAL, "write_msi_msg", "no descriptor at index \(index) on \(deviceName)")
        }
        if let callback {
            writeCallbacks[index] = callback
            s.pointee.flags |= PackedDescriptor.hasWriteCallback
        } else {
            writeCallbacks[index] = nil
            s.pointee.flags &= ~PackedDescriptor.hasWriteCallback
        }
    }

    /// Whether the default-domain descriptor at `index` has a `write_msi_msg` callback.
    public func hasMessageWrittenCallback(index: Int) -> Bool {
        slot(.default, index).map { $0.pointee.flags & PackedDescriptor.hasWriteCallback != 0 } ?? false
    }
}
