// The per-domain descriptor store (the kernel's XA_FLAGS_ALLOC xarray of msi_desc).
//
// Layout: a sparse two-level array. Indices 0…65535 split into pages of 64 slots; a top-level
// array of page pointers (grown on demand, at most 1024) and one 64-bit occupancy word per
// page. A lookup is two dependent loads; "lowest free index" scans occupancy words from a
// hint below which every page is known to be full; iteration walks occupancy bits. Pages are
// freed when they empty. No ARC traffic on any path: the store is a non-copyable value owning
// raw memory, living inside the device's Mutex.

/// A page of 64 absent (all-zero) descriptors shared by every store: unallocated pages point
/// here so a lookup needs no nil check. Never written.
nonisolated(unsafe) let emptyDescriptorPage: UnsafeMutablePointer<PackedDescriptor> = {
    let p = UnsafeMutablePointer<PackedDescriptor>.allocate(capacity: DescriptorStore.pageSize)
    p.initialize(repeating: PackedDescriptor(), count: DescriptorStore.pageSize)
    return p
}()

/// A page table whose 1024 entries all point at ``emptyDescriptorPage``: the table of a store
/// that never had a descriptor. Never written.
nonisolated(unsafe) let emptyPageTable: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>> = {
    let t = UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>.allocate(capacity: DescriptorStore.maxPages)
    t.initialize(repeating: emptyDescriptorPage, count: DescriptorStore.maxPages)
    return t
}()

/// The read-only part of a store a lookup needs: its page table (always 1024 entries, empty
/// pages pointing at the shared zero page). A plain value, so the owner can keep a copy in an
/// inlinable field, refreshed when the table changes (first insert, release).
@usableFromInline
struct StoreLookup {
    @usableFromInline var pages: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>

    @usableFromInline init(pages: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>) {
        self.pages = pages
    }

    /// The Linux interrupt stored at `index` (which must be 0…65535), 0 when absent or
    /// unassociated: absent slots are all-zero. Two loads, no branch.
    @inlinable @inline(__always)
    func virq(at index: Int) -> UInt32 {
        pages[index &>> 6][index & 63].virq
    }
}

/// The lookup table `msi_domain_get_virq()` effectively uses while PCI MSI is enabled: the
/// single descriptor at index 0 owns `nvec_used` consecutive interrupts, so index `n` maps to
/// `irq + n` for `n < nvec_used` and to 0 otherwise. Built at MSI enable, dropped at disable.
struct MultiMSIView: ~Copyable {
    let table: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>
    let page: UnsafeMutablePointer<PackedDescriptor>

    init(base: Int, count: Int) {
        table = .allocate(capacity: DescriptorStore.maxPages)
        table.initialize(repeating: emptyDescriptorPage, count: DescriptorStore.maxPages)
        page = .allocate(capacity: DescriptorStore.pageSize)
        page.initialize(repeating: PackedDescriptor(), count: DescriptorStore.pageSize)
        for i in 0..<min(max(count, 0), DescriptorStore.pageSize) { page[i].virq = UInt32(base + i) }
        table[0] = page
    }

    deinit {
        page.deallocate()
        table.deallocate()
    }

    var lookup: StoreLookup { StoreLookup(pages: table) }
}

struct DescriptorStore: ~Copyable {
    static let pageShift = 6
    static let pageSize = 1 << pageShift
    static let maxPages = MSILimits.domainSize >> pageShift

    /// The page table: ``emptyPageTable`` until the first insert, then an owned 1024-entry
    /// table (8 KiB) whose unallocated entries point at ``emptyDescriptorPage``.
    private var pages: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>> = emptyPageTable
    private var ownsTable = false
    /// One occupancy word per page, grown on demand.
    private var occupancy: UnsafeMutablePointer<UInt64>?
    private var occupancyCapacity = 0
    /// Every page below this one is full.
    private var firstNonFullPage = 0
    private(set) var count = 0
    /// Affinity arrays referenced by `PackedDescriptor.affinityRef` (ref = slot + 1).
    private var affinities: [[IRQAffinityDescriptor]?] = []
    private var freeAffinitySlots: [UInt32] = []

    init() {}

    deinit {
        if ownsTable {
            for p in 0..<Self.maxPages where pages[p] != emptyDescriptorPage { pages[p].deallocate() }
            pages.deallocate()
        }
        occupancy?.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// The page table as a lookup view (valid until the table changes: first insert).
    var lookup: StoreLookup { StoreLookup(pages: pages) }

    @inline(__always) private func word(_ p: Int) -> UInt64 {
        guard p < occupancyCapacity, let occupancy else { return 0 }
        return occupancy[p]
    }

    /// The slot of `index` if occupied (xa_load).
    @inline(__always)
    func slot(_ index: Int) -> UnsafeMutablePointer<PackedDescriptor>? {
        guard index >= 0, index < MSILimits.domainSize else { return nil }
        let s = pages[index &>> Self.pageShift] + (index & (Self.pageSize - 1))
        return s.pointee.isPresent ? s : nil
    }

    /// The Linux interrupt stored at `index`, 0 when absent or unassociated.
    @inline(__always)
    func virq(at index: Int) -> UInt32 {
        guard index >= 0, index < MSILimits.domainSize else { return 0 }
        return pages[index &>> Self.pageShift][index & (Self.pageSize - 1)].virq
    }

    func contains(_ index: Int) -> Bool { slot(index) != nil }

    private mutating func growOccupancy(toPages needed: Int) {
        guard needed > occupancyCapacity else { return }
        let newCapacity = min(max(needed, occupancyCapacity * 2, 4), Self.maxPages)
        let grown = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
        grown.initialize(repeating: 0, count: newCapacity)
        if let occupancy {
            grown.update(from: occupancy, count: occupancyCapacity)
            occupancy.deallocate()
        }
        occupancy = grown
        occupancyCapacity = newCapacity
    }

    /// Stores `desc` at the free slot `index` (0…65535; the caller checked both).
    mutating func insert(_ desc: PackedDescriptor, at index: Int) {
        let p = index >> Self.pageShift
        if !ownsTable {
            let table = UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>.allocate(capacity: Self.maxPages)
            table.initialize(repeating: emptyDescriptorPage, count: Self.maxPages)
            pages = table
            ownsTable = true
        }
        growOccupancy(toPages: p + 1)
        if pages[p] == emptyDescriptorPage {
            let page = UnsafeMutablePointer<PackedDescriptor>.allocate(capacity: Self.pageSize)
            page.initialize(repeating: PackedDescriptor(), count: Self.pageSize)
            pages[p] = page
        }
        var d = desc
        d.index = UInt16(truncatingIfNeeded: index)
        d.flags |= PackedDescriptor.present
        pages[p][index & (Self.pageSize - 1)] = d
        guard let occupancy else { return }  // allowed: growOccupancy() just made room
        occupancy[p] |= 1 << UInt64(index & (Self.pageSize - 1))
        count += 1
        if occupancy[p] == ~0, p == firstNonFullPage {
            while firstNonFullPage < occupancyCapacity && occupancy[firstNonFullPage] == ~0 { firstNonFullPage += 1 }
        }
    }

    /// Erases `index` (xa_erase) and returns what was there. The affinity side-table entry is
    /// left to the caller (``releaseAffinity(_:)``), which decides whether the descriptor leaks.
    @discardableResult
    mutating func remove(at index: Int) -> PackedDescriptor? {
        guard let s = slot(index), let occupancy else { return nil }
        let old = s.pointee
        s.pointee = PackedDescriptor()
        let p = index >> Self.pageShift
        occupancy[p] &= ~(1 << UInt64(index & (Self.pageSize - 1)))
        count -= 1
        if p < firstNonFullPage { firstNonFullPage = p }
        if occupancy[p] == 0 {
            pages[p].deallocate()
            pages[p] = emptyDescriptorPage
        }
        return old
    }

    /// The lowest free index below `limit` (xa_alloc with `{0, limit-1}`), nil when full.
    func lowestFree(below limit: Int) -> Int? {
        var p = firstNonFullPage
        while p < occupancyCapacity {
            let w = word(p)
            if w != ~0 {
                let index = p << Self.pageShift + (~w).trailingZeroBitCount
                return index < limit ? index : nil
            }
            p += 1
        }
        let index = p << Self.pageShift
        return index < limit ? index : nil
    }

    /// The lowest occupied index ≥ `start`, nil when none (the xa_find used by iterators).
    func nextOccupied(from start: Int) -> Int? {
        guard start >= 0 else { return nil }
        var p = start >> Self.pageShift
        guard p < occupancyCapacity else { return nil }
        var w = word(p) & (~0 << UInt64(start & (Self.pageSize - 1)))
        while true {
            if w != 0 { return p << Self.pageShift + w.trailingZeroBitCount }
            p += 1
            guard p < occupancyCapacity else { return nil }
            w = word(p)
        }
    }

    /// The lowest index ≥ `start` whose descriptor matches `filter`.
    func next(from start: Int, matching filter: MSIDescriptorFilter) -> Int? {
        var i = start
        while let index = nextOccupied(from: i) {
            if filter == .all { return index }
            if let s = slot(index), filter.matches(virq: Int(s.pointee.virq)) { return index }
            i = index + 1
        }
        return nil
    }

    // MARK: affinity side table

    mutating func storeAffinity(_ a: [IRQAffinityDescriptor]?) -> UInt32 {
        guard let a else { return 0 }
        if let slot = freeAffinitySlots.popLast() {
            affinities[Int(slot)] = a
            return slot + 1
        }
        affinities.append(a)
        return UInt32(affinities.count)
    }

    func affinity(_ ref: UInt32) -> [IRQAffinityDescriptor]? {
        guard ref > 0, Int(ref) <= affinities.count else { return nil }
        return affinities[Int(ref) - 1]
    }

    mutating func releaseAffinity(_ ref: UInt32) {
        guard ref > 0, Int(ref) <= affinities.count else { return }
        affinities[Int(ref) - 1] = nil
        freeAffinitySlots.append(ref - 1)
    }

    // MARK: views

    func descriptor(at index: Int) -> MSIDescriptor? {
        guard let s = slot(index) else { return nil }
        return publicDescriptor(s.pointee)
    }

    func publicDescriptor(_ d: PackedDescriptor) -> MSIDescriptor {
        var p = d
        p.affinityRef = 0
        p.flags = 0
        return MSIDescriptor(packed: p, affinity: d.affinityRef == 0 ? nil : affinity(d.affinityRef))
    }

    /// The slot of the lowest occupied index in `start…last` matching `filter`.
    @inline(__always)
    func nextSlot(from start: Int, matching filter: MSIDescriptorFilter,
                  last: Int = MSILimits.maxIndex) -> UnsafeMutablePointer<PackedDescriptor>? {
        guard start >= 0, start <= last, let occupancy else { return nil }
        var p = start >> Self.pageShift
        let lastPage = min(last >> Self.pageShift, occupancyCapacity - 1)
        guard p <= lastPage else { return nil }
        var w = occupancy[p] & (~0 << UInt64(start & (Self.pageSize - 1)))
        while true {
            while w != 0 {
                let bit = w.trailingZeroBitCount
                if p << Self.pageShift + bit > last { return nil }
                let s = pages[p] + bit
                switch filter {
                case .all: return s
                case .associated: if s.pointee.virq != 0 { return s }
                case .notAssociated: if s.pointee.virq == 0 { return s }
                }
                w &= w - 1
            }
            p += 1
            guard p <= lastPage else { return nil }
            w = occupancy[p]
        }
    }

    /// Every occupied index, ascending.
    var indices: [Int] {
        var r: [Int] = []
        r.reserveCapacity(count)
        var i = nextOccupied(from: 0)
        while let x = i { r.append(x); i = nextOccupied(from: x + 1) }
        return r
    }

    /// Checks the store's structural invariants (tests and property checks). Returns the
    /// first violation found.
    func checkInvariants() -> String? {
        var n = 0
        for p in 0..<Self.maxPages {
            let w = word(p)
            if w == 0 {
                if pages[p] != emptyDescriptorPage { return "empty page \(p) not freed" }
                continue
            }
            let page = pages[p]
            if page == emptyDescriptorPage { return "page \(p) has occupancy but no memory" }
            if w != ~0 && p < firstNonFullPage { return "page \(p) below the free hint is not full" }
            for s in 0..<Self.pageSize {
                let occupied = w & (1 << UInt64(s)) != 0
                let d = page[s]
                if occupied != d.isPresent { return "slot \(p * Self.pageSize + s): occupancy bit and present flag disagree" }
                if occupied && Int(d.index) != p * Self.pageSize + s { return "slot \(p * Self.pageSize + s) holds index \(d.index)" }
            }
            n += w.nonzeroBitCount
        }
        return n == count ? nil : "count \(count) but \(n) occupied slots"
    }
}
