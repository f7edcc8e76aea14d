// The per-domain descriptor store (the kernel's XA_FLAGS_ALLOC xarray of msi_desc).
//
// Layout: a sparse two-level array. Indices 0…65535 split into pages of 64 slots; a top-level
// array of page pointers (grown on demand, at most 1024) and one 64-bit occupancy word per
// page. A lookup is two dependent loads; "lowest free index" scans occupancy words from a
// hint below which every page is known to be full; iteration walks occupancy bits. Pages are
// freed when they empty. No ARC traffic on any path: the store is a non-copyable value owning
// raw memory, living inside the device's Mutex.

struct DescriptorStore: ~Copyable {
    static let pageShift = 6
    static let pageSize = 1 << pageShift
    static let maxPages = MSILimits.domainSize >> pageShift

    private var pages: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>?>?
    private var occupancy: UnsafeMutablePointer<UInt64>?
    private var pageCapacity = 0
    /// Every page below this one is full.
    private var firstNonFullPage = 0
    private(set) var count = 0
    /// Affinity arrays referenced by `PackedDescriptor.affinityRef` (ref = slot + 1).
    private var affinities: [[IRQAffinityDescriptor]?] = []
    private var freeAffinitySlots: [UInt32] = []

    init() {}

    deinit {
        if let pages {
            for p in 0..<pageCapacity { pages[p]?.deallocate() }
            pages.deallocate()
        }
        occupancy?.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// The slot of `index` if occupied (xa_load).
    @inline(__always)
    func slot(_ index: Int) -> UnsafeMutablePointer<PackedDescriptor>? {
        let p = index &>> Self.pageShift
        guard p < pageCapacity, let pages, let page = pages[p] else { return nil }
        let s = page + (index & (Self.pageSize - 1))
        return s.pointee.isPresent ? s : nil
    }

    /// The Linux interrupt stored at `index`, 0 when absent or unassociated.
    @inline(__always)
    func virq(at index: Int) -> UInt32 {
        let p = index &>> Self.pageShift
        guard p < pageCapacity, let pages, let page = pages[p] else { return 0 }
        return page[index & (Self.pageSize - 1)].virq
    }

    func contains(_ index: Int) -> Bool { slot(index) != nil }

    private mutating func grow(toPages needed: Int) {
        guard needed > pageCapacity else { return }
        let newCapacity = min(max(needed, pageCapacity * 2, 4), Self.maxPages)
        let newPages = UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>?>.allocate(capacity: newCapacity)
        let newOccupancy = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
        newPages.initialize(repeating: nil, count: newCapacity)
        newOccupancy.initialize(repeating: 0, count: newCapacity)
        if let pages, let occupancy {
            newPages.update(from: pages, count: pageCapacity)
            newOccupancy.update(from: occupancy, count: pageCapacity)
            pages.deallocate()
            occupancy.deallocate()
        }
        pages = newPages
        occupancy = newOccupancy
        pageCapacity = newCapacity
    }

    /// Stores `desc` at the free slot `index` (0…65535; the caller checked both).
    mutating func insert(_ desc: PackedDescriptor, at index: Int) {
        let p = index >> Self.pageShift
        grow(toPages: p + 1)
        guard let pages, let occupancy else { return }  // allowed: grow() just allocated them
        let page: UnsafeMutablePointer<PackedDescriptor>
        if let existing = pages[p] {
            page = existing
        } else {
            page = .allocate(capacity: Self.pageSize)
            page.initialize(repeating: PackedDescriptor(), count: Self.pageSize)
            pages[p] = page
        }
        var d = desc
        d.index = UInt16(truncatingIfNeeded: index)
        d.flags |= PackedDescriptor.present
        page[index & (Self.pageSize - 1)] = d
        occupancy[p] |= 1 << UInt64(index & (Self.pageSize - 1))
        count += 1
        if occupancy[p] == ~0, p == firstNonFullPage {
            while firstNonFullPage < pageCapacity && occupancy[firstNonFullPage] == ~0 { firstNonFullPage += 1 }
        }
    }

    /// Erases `index` (xa_erase) and returns what was there. The affinity side-table entry is
    /// left to the caller (``releaseAffinity(_:)``), which decides whether the descriptor leaks.
    @discardableResult
    mutating func remove(at index: Int) -> PackedDescriptor? {
        guard let s = slot(index), let pages, let occupancy else { return nil }
        let old = s.pointee
        s.pointee = PackedDescriptor()
        let p = index >> Self.pageShift
        occupancy[p] &= ~(1 << UInt64(index & (Self.pageSize - 1)))
        count -= 1
        if p < firstNonFullPage { firstNonFullPage = p }
        if occupancy[p] == 0, let page = pages[p] {
            page.deallocate()
            pages[p] = nil
        }
        return old
    }

    /// The lowest free index below `limit` (xa_alloc with `{0, limit-1}`), nil when full.
    func lowestFree(below limit: Int) -> Int? {
        var p = firstNonFullPage
        while p < pageCapacity, let occupancy {
            let w = occupancy[p]
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
        guard start >= 0, let occupancy else { return nil }
        var p = start >> Self.pageShift
        guard p < pageCapacity else { return nil }
        var w = occupancy[p] & (~0 << UInt64(start & (Self.pageSize - 1)))
        while true {
            if w != 0 { return p << Self.pageShift + w.trailingZeroBitCount }
            p += 1
            guard p < pageCapacity else { return nil }
            w = occupancy[p]
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
        var r = MSIDescriptor(index: Int(d.index), vectorCount: Int(d.nvecUsed), affinity: affinity(d.affinityRef), pci: d.pci)
        r.virq = Int(d.virq)
        r.message = d.message
        r.instanceCookie = d.instanceCookie
        r.domainCookie = d.domainCookie
        return r
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
        for p in 0..<pageCapacity {
            guard let occupancy, let pages else { return "page arrays missing" }
            let w = occupancy[p]
            if w == 0 {
                if pages[p] != nil { return "empty page \(p) not freed" }
                continue
            }
            guard let page = pages[p] else { return "page \(p) has occupancy but no memory" }
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
