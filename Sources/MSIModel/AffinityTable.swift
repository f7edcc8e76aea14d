// Interned affinity arrays (struct irq_affinity_desc[] of a descriptor), so that a descriptor
// is a plain value: the store and every MSIDescriptor copy hold a 32-bit id instead of an array
// reference, and copying one out of the store (iteration, lookup) does no reference counting.
import MSIShimCore

/// The process-wide set of affinity arrays descriptors refer to, each kept once per distinct
/// content for the life of the process (the set stays as small as the distinct CPU spreads in
/// use: one entry per vector mask pattern, not per descriptor).
final class AffinityTable: Sendable {
    static let shared = AffinityTable()

    private struct State {
        var arrays: [[IRQAffinityDescriptor]] = []
        var ids: [[IRQAffinityDescriptor]: UInt32] = [:]
    }
    private let state = PackageMutex(State())

    /// The id of `affinity` (0 for nil), adding it on first use.
    func intern(_ affinity: [IRQAffinityDescriptor]?) -> UInt32 {
        guard let affinity else { return 0 }
        return state.withLock { s in
            if let id = s.ids[affinity] { return id }
            s.arrays.append(affinity)
            let id = UInt32(s.arrays.count)
            s.ids[affinity] = id
            return id
        }
    }

    /// The array behind `id`, nil for 0 or an unknown id.
    func lookup(_ id: UInt32) -> [IRQAffinityDescriptor]? {
        guard id != 0 else { return nil }
        return state.withLock { s in Int(id) <= s.arrays.count ? s.arrays[Int(id) - 1] : nil }
    }
}
