// The per-domain descriptor store (the kernel's XA_FLAGS_ALLOC xarray of msi_desc).
//
// Layout: a sparse two-level array. Indices 0…65535 split into pages of 64 slots; a top-level
// array of page pointers (owned from the first insert, at most 1024) and, per page, two 64-bit
// words: occupancy (the xarray's "present") and the ASSOCIATED mark (irq != 0), like the
// xarray's marks. A lookup is two dependent loads; "lowest free index" scans occupancy words
// from a hint below which every page is known to be full; iteration with any filter walks one
// derived word per page (occupancy, mark, or occupancy & ~mark) and touches only matching
// descriptors. A page, once allocated, stays until the store goes (device data release, or
// the last reference to an external store): a store refilled after a drain allocates
// nothing, as a flat array would not. No ARC traffic on any path: the store is a
// non-copyable value owning raw memory, reached only under the device lock. The iteration
// and lookup paths are inlinable so that a caller's loop compiles to the walk itself.

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

/// Shared backing for a lookup with nothing associated yet: never read (its capacity is 0).
nonisolated(unsafe) let emptyVirqTable: UnsafeMutablePointer<UInt32> = {
    let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// The read-only part of a store a lookup needs: a flat array of the Linux interrupt of every
/// index below `capacity` (0 where absent or not associated), like the C array it is measured
/// against. A plain value, so the owner keeps a copy where a lookup finds it in one load,
/// refreshed when the array moves (it grows to cover the highest associated index).
@usableFromInline
struct StoreLookup {
    @usableFromInline var virqs: UnsafeMutablePointer<UInt32>
    @usableFromInline var capacity: Int

    @usableFromInline init(virqs: UnsafeMutablePointer<UInt32>, capacity: Int) {
        self.virqs = virqs
        self.capacity = capacity
    }

    /// No interrupt at any index.
    @usableFromInline static var empty: StoreLookup { StoreLookup(virqs: emptyVirqTable, capacity: 0) }
}

/// The lookup table `msi_domain_get_virq()` effectively uses while PCI MSI is enabled: the
/// single descriptor at index 0 owns `nvec_used` consecutive interrupts, so index `n` maps to
/// `irq + n` for `n < nvec_used` and to 0 otherwise. Built at MSI enable, dropped at disable.
struct MultiMSIView: ~Copyable {
    let virqs: UnsafeMutablePointer<UInt32>
    let count: Int

    init(base: Int, count: Int) {
        self.count = min(max(count, 0), 32)
        virqs = .allocate(capacity: max(self.count, 1))
        virqs.initialize(repeating: 0, count: max(self.count, 1))
        for i in 0..<self.count { virqs[i] = UInt32(truncatingIfNeeded: base + i) }
    }

    deinit { virqs.deallocate() }

    var lookup: StoreLookup { StoreLookup(virqs: virqs, capacity: count) }
}

/// Occupancy words of a store that never had a page (no page is covered, so never read).
nonisolated(unsafe) let emptyBitsTable: UnsafeMutablePointer<UInt64> = {
    let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
    p.initialize(repeating: 0, count: 2)
    return p
}()

@usableFromInline
struct DescriptorStore: ~Copyable {
    @inlinable static var pageShift: Int { 6 }
    @inlinable static var pageSize: Int { 64 }
    @inlinable static var maxPages: Int { 1024 }

    /// The page table: ``emptyPageTable`` until the first insert, then an owned 1024-entry
    /// table (8 KiB) whose unallocated entries point at ``emptyDescriptorPage``.
    @usableFromInline var pages: UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>
    @usableFromInline var ownsTable = false
    /// Two words per page, grown with the pages: `bits[2p]` occupancy, `bits[2p + 1]` the
    /// ASSOCIATED mark. Always a subset: mark ⊆ occupancy. ``emptyBitsTable`` until the first
    /// page exists; every allocated page is covered.
    @usableFromInline var bits: UnsafeMutablePointer<UInt64>
    /// Pages covered by ``bits``.
    @usableFromInline var pageCapacity = 0
    /// Every page below this one is full, and this one is not (or it is ``pageCapacity``).
    @usableFromInline var firstNonFullPage = 0
    @usableFromInline var count = 0
    /// Bumped by every insert, erase and (dis)association: what an iteration cursor's cached
    /// page word was computed from.
    @usableFromInline var generation: UInt64 = 1
    /// The associated interrupts as a flat array (see ``StoreLookup``), grown to cover the
    /// highest associated index; ``emptyVirqTable`` until the first association.
    @usableFromInline var virqs: UnsafeMutablePointer<UInt32>
    @usableFromInline var virqCapacity = 0
    /// Set when ``lookup`` changed (the flat array grew or went): the owner copies it again.
    @usableFromInline var lookupMoved = false
    /// ``emptyDescriptorPage``, read once (a global's lazy initialisation check on every
    /// insert and erase is measurable).
    @usableFromInline let emptyPage: UnsafeMutablePointer<PackedDescriptor>

    init() {
        pages = emptyPageTable
        emptyPage = emptyDescriptorPage
        bits = emptyBitsTable
        virqs = emptyVirqTable
    }

    deinit {
        if ownsTable {
            for p in 0..<Self.maxPages where pages[p] != emptyDescriptorPage { pages[p].deallocate() }
            pages.deallocate()
        }
        if pageCapacity > 0 { bits.deallocate() }
        if virqCapacity > 0 { virqs.deallocate() }
    }

    var isEmpty: Bool { count == 0 }

    /// The flat interrupt array as a lookup view (valid until ``lookupMoved`` is set).
    var lookup: StoreLookup { StoreLookup(virqs: virqs, capacity: virqCapacity) }

    @inline(__always) private func occupancy(_ p: Int) -> UInt64 {
        p < pageCapacity ? bits[2 &* p] : 0
    }

    @inline(__always) private func mark(_ p: Int) -> UInt64 {
        p < pageCapacity ? bits[2 &* p &+ 1] : 0
    }

    /// The slot of `index` if occupied (xa_load).
    @inlinable @inline(__always)
    func slot(_ index: Int) -> UnsafeMutablePointer<PackedDescriptor>? {
        guard UInt(bitPattern: index) < UInt(MSILimits.domainSize) else { return nil }
        let s = pages[index &>> Self.pageShift] + (index & (Self.pageSize &- 1))
        return s.pointee.isPresent ? s : nil
    }

    /// The Linux interrupt stored at `index`, 0 when absent or unassociated.
    @inline(__always)
    func virq(at index: Int) -> UInt32 {
        guard UInt(bitPattern: index) < UInt(MSILimits.domainSize) else { return 0 }
        return pages[index &>> Self.pageShift][index & (Self.pageSize &- 1)].virq
    }

    func contains(_ index: Int) -> Bool { slot(index) != nil }

    /// Makes page `p` real: the owned page table on the first insert, occupancy words that
    /// cover it, the page's memory. The cold part of ``insert(_:at:)``.
    @usableFromInline @inline(never)
    mutating func allocatePage(_ p: Int) -> UnsafeMutablePointer<PackedDescriptor> {
        if !ownsTable {
            let table = UnsafeMutablePointer<UnsafeMutablePointer<PackedDescriptor>>.allocate(capacity: Self.maxPages)
            table.initialize(repeating: emptyPage, count: Self.maxPages)
            pages = table
            ownsTable = true
        }
        if p >= pageCapacity {
            let newCapacity = min(max(p + 1, pageCapacity * 2, 4), Self.maxPages)
            let grown = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * newCapacity)
            grown.initialize(repeating: 0, count: 2 * newCapacity)
            if pageCapacity > 0 {
                grown.update(from: bits, count: 2 * pageCapacity)
                bits.deallocate()
            }
            bits = grown
            pageCapacity = newCapacity
        }
        let page = UnsafeMutablePointer<PackedDescriptor>.allocate(capacity: Self.pageSize)
        page.initialize(repeating: PackedDescriptor(), count: Self.pageSize)
        pages[p] = page
        return page
    }

    /// Writes the flat array's entry for `index` (0…65535), growing the array when an
    /// association lands past its end.
    @inlinable @inline(__always)
    mutating func setFlatVirq(_ virq: UInt32, at index: Int) {
        if index < virqCapacity {
            virqs[index] = virq
        } else if virq != 0 {
            growVirqs(toCover: index)
            virqs[index] = virq
        }
    }

    @usableFromInline @inline(never)
    mutating func growVirqs(toCover index: Int) {
        var n = max(virqCapacity * 2, 64)
        while n <= index { n *= 2 }
        n = min(n, MSILimits.domainSize)
        let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        grown.initialize(repeating: 0, count: n)
        if virqCapacity > 0 {
            grown.update(from: virqs, count: virqCapacity)
            virqs.deallocate()
        }
        virqs = grown
        virqCapacity = n
        lookupMoved = true
    }

    /// Stores `desc` at the free slot `index` (0…65535; the caller checked both). The
    /// ASSOCIATED mark follows `desc.virq`.
    @inlinable @inline(__always)
    mutating func insert(_ desc: PackedDescriptor, at index: Int) {
        let p = index &>> Self.pageShift
        var page = pages[p]
        if page == emptyPage { page = allocatePage(p) }
        var d = desc
        d.index = UInt16(truncatingIfNeeded: index)
        d.flags |= PackedDescriptor.present
        page[index & (Self.pageSize &- 1)] = d
        let bit: UInt64 = 1 &<< UInt64(index & (Self.pageSize &- 1))
        let occupied = bits[2 &* p] | bit
        bits[2 &* p] = occupied
        if d.virq != 0 {
            bits[2 &* p &+ 1] |= bit
            setFlatVirq(d.virq, at: index)
        }
        count &+= 1
        generation &+= 1
        if occupied == ~0, p == firstNonFullPage { advanceFreeHint() }
    }

    /// Moves the free hint past full pages.
    @usableFromInline @inline(never)
    mutating func advanceFreeHint() {
        while firstNonFullPage < pageCapacity && bits[2 &* firstNonFullPage] == ~0 { firstNonFullPage &+= 1 }
    }

    /// Sets the Linux interrupt of the occupied slot `index` and its ASSOCIATED mark (the only
    /// way the store's `irq` fields change after insertion).
    mutating func setVirq(_ virq: UInt32, at index: Int) {
        guard let s = slot(index) else { return }
        s.pointee.virq = virq
        generation &+= 1
        let p = index >> Self.pageShift
        let bit: UInt64 = 1 << UInt64(index & (Self.pageSize - 1))
        if virq != 0 { bits[2 * p + 1] |= bit } else { bits[2 * p + 1] &= ~bit }
        setFlatVirq(virq, at: index)
    }

    /// Erases `index` (xa_erase) and returns what was there. The affinity side-table entry is
    /// left to the caller (``releaseAffinity(_:)``), which decides whether the descriptor leaks.
    @discardableResult @inlinable @inline(__always)
    mutating func remove(at index: Int) -> PackedDescriptor? {
        guard let s = slot(index) else { return nil }
        let old = s.pointee
        s.pointee = PackedDescriptor()
        let p = index &>> Self.pageShift
        let bit: UInt64 = 1 &<< UInt64(index & (Self.pageSize &- 1))
        bits[2 &* p] &= ~bit
        if old.virq != 0 {
            bits[2 &* p &+ 1] &= ~bit
            setFlatVirq(0, at: index)
        }
        count &-= 1
        generation &+= 1
        if p < firstNonFullPage { firstNonFullPage = p }
        return old
    }

    /// The lowest free index below `limit` (xa_alloc with `{0, limit-1}`), nil when full:
    /// the first zero bit of the hint page's occupancy word.
    @inlinable @inline(__always)
    func lowestFree(below limit: Int) -> Int? {
        let p = firstNonFullPage
        let index = p < pageCapacity ? p &<< Self.pageShift &+ (~bits[2 &* p]).trailingZeroBitCount : p &<< Self.pageShift
        return index < limit ? index : nil
    }

    /// The lowest occupied index ≥ `start`, nil when none (the xa_find used by iterators).
    func nextOccupied(from start: Int) -> Int? {
        nextSlot(from: start, matching: .all).map { Int($0.pointee.index) }
    }

    // MARK: affinity (interned, see AffinityTable)

    func storeAffinity(_ a: [IRQAffinityDescriptor]?) -> UInt32 { AffinityTable.shared.intern(a) }

    func affinity(_ ref: UInt32) -> [IRQAffinityDescriptor]? { AffinityTable.shared.lookup(ref) }

    /// Interned arrays are shared and kept; nothing to release per descriptor.
    func releaseAffinity(_ ref: UInt32) {}

    // MARK: views

    func descriptor(at index: Int) -> MSIDescriptor? {
        guard let s = slot(index) else { return nil }
        return publicDescriptor(s.pointee)
    }

    /// The public value of a stored descriptor (the store-private flags cleared).
    @inlinable @inline(__always)
    func publicDescriptor(_ d: PackedDescriptor) -> MSIDescriptor {
        var p = d
        p.flags = 0
        return MSIDescriptor(packed: p)
    }

    /// The slot of the lowest occupied index in `start…last` matching `filter`: one derived
    /// word per page (occupancy, ASSOCIATED mark, or occupancy without the mark), so only
    /// matching descriptors are touched.
    @inlinable @inline(__always)
    func nextSlot(from start: Int, matching filter: MSIDescriptorFilter,
                  last: Int = MSILimits.maxIndex) -> UnsafeMutablePointer<PackedDescriptor>? {
        guard start >= 0, start <= last else { return nil }
        var p = start &>> Self.pageShift
        let lastPage = min(last &>> Self.pageShift, pageCapacity &- 1)
        guard p <= lastPage else { return nil }
        @inline(__always) func word(_ p: Int) -> UInt64 {
            switch filter {
            case .all: bits[2 &* p]
            case .associated: bits[2 &* p &+ 1]
            case .notAssociated: bits[2 &* p] & ~bits[2 &* p &+ 1]
            }
        }
        var w = word(p) & (~0 &<< UInt64(start & (Self.pageSize &- 1)))
        while true {
            if w != 0 {
                let index = p &<< Self.pageShift &+ w.trailingZeroBitCount
                return index <= last ? pages[p] + (index & (Self.pageSize &- 1)) : nil
            }
            p &+= 1
            guard p <= lastPage else { return nil }
            w = word(p)
        }
    }

    /// The lowest index ≥ `start` matching `filter` and, for the iteration cursor, the
    /// matching bits of that index's page above it. Index -1 when none.
    @inlinable @inline(__always)
    func nextMatch(from start: Int, matching filter: MSIDescriptorFilter) -> (index: Int, rest: UInt64) {
        guard start >= 0 else { return (-1, 0) }
        var p = start &>> Self.pageShift
        guard p < pageCapacity else { return (-1, 0) }
        @inline(__always) func word(_ p: Int) -> UInt64 {
            switch filter {
            case .all: bits[2 &* p]
            case .associated: bits[2 &* p &+ 1]
            case .notAssociated: bits[2 &* p] & ~bits[2 &* p &+ 1]
            }
        }
        var w = word(p) & (~0 &<< UInt64(start & (Self.pageSize &- 1)))
        while w == 0 {
            p &+= 1
            guard p < pageCapacity else { return (-1, 0) }
            w = word(p)
        }
        return (p &<< Self.pageShift &+ w.trailingZeroBitCount, w & (w &- 1))
    }

    /// The descriptor at an index known to be occupied.
    @inlinable @inline(__always)
    func occupied(_ index: Int) -> PackedDescriptor { pages[index &>> Self.pageShift][index & (Self.pageSize &- 1)] }

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
            let w = occupancy(p)
            let m = mark(p)
            if m & ~w != 0 { return "page \(p): ASSOCIATED mark on an empty slot" }
            let page = pages[p]
            if page == emptyDescriptorPage {
                if w != 0 { return "page \(p) has occupancy but no memory" }
                continue
            }
            if w != ~0 && p < firstNonFullPage { return "page \(p) below the free hint is not full" }
            for s in 0..<Self.pageSize {
                let occupied = w & (1 << UInt64(s)) != 0
                let d = page[s]
                if occupied != d.isPresent { return "slot \(p * Self.pageSize + s): occupancy bit and present flag disagree" }
                if occupied && Int(d.index) != p * Self.pageSize + s { return "slot \(p * Self.pageSize + s) holds index \(d.index)" }
                if (m & (1 << UInt64(s)) != 0) != (d.virq != 0) { return "slot \(p * Self.pageSize + s): ASSOCIATED mark and irq disagree" }
            }
            n += w.nonzeroBitCount
        }
        for i in 0..<virqCapacity where virqs[i] != virq(at: i) {
            return "flat interrupt array says \(virqs[i]) at \(i), the descriptor \(virq(at: i))"
        }
        if firstNonFullPage < pageCapacity && bits[2 * firstNonFullPage] == ~0 {
            return "the free hint \(firstNonFullPage) points at a full page"
        }
        return n == count ? nil : "count \(count) but \(n) occupied slots"
    }
}
