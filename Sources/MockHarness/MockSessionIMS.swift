// The IMS commands of a mock session whose behaviour depends on where the messages live:
// software-managed IMS finds its storage through the instance cookie, so the session plays
// the driver that allocates that storage, passes its handle as the cookie, and frees it after
// the interrupt.
import MSIModel
import MSIShimCore
import InterruptTables

extension MockSession {
    /// `alloc ims [cookie=HEX]` → `pci_ims_alloc_irq`. Device storage: the cookie is the PASID
    /// (0 when omitted). Software storage: the cookie is the handle of the storage the message
    /// lives in; without one the session allocates fresh storage, with one it allocates
    /// storage at that handle when none is there. Storage the session allocated for a failed
    /// allocation is freed again.
    func allocIMS(cookie: UInt64?) throws -> MSIMap {
        guard imsStorage == .software, let store = softwareStore else {
            return try model.imsAllocIRQ(cookie: cookie ?? 0)
        }
        var created: UInt64?
        let handle: UInt64
        if let cookie {
            if cookie != 0 && !store.hasStorage(cookie) {
                try store.allocateStorage(at: cookie)
                created = cookie
            }
            handle = cookie
        } else {
            handle = store.allocateStorage()
            created = handle
        }
        do {
            return try model.imsAllocIRQ(cookie: handle)
        } catch {
            if let created { store.releaseStorage(created) }
            throw error
        }
    }

    /// `free ims INDEX` → `pci_ims_free_irq`, then (software storage) the storage is freed.
    func freeIMS(index: Int) throws {
        let d = model.descriptor(domain: .secondary, index: index)
        try model.imsFreeIRQ(MSIMap(index: index, virq: try associatedVirq(.secondary, index, kind: "IMS")))
        if imsStorage == .software, let d { softwareStore?.releaseStorage(d.instanceCookie) }
    }

    /// `fire ims INDEX`: the device signals IMS index `index`. A device array raises that
    /// slot; software storage is reached through the cookie of the descriptor at `index`.
    func fireIMS(index: Int) throws -> FireResult {
        switch imsStorage {
        case .device?:
            return device.fireIMS(index)
        case .software?:
            guard let store = softwareStore, let d = model.descriptor(domain: .secondary, index: index) else {
                return .dropped(.noIMSInterrupt(index: index))
            }
            return store.raise(d.instanceCookie)
        case nil:
            throw MockCommandError(.ENODEV, "no IMS domain: run 'ims create HWSIZE [software|device]' first")
        }
    }
}
