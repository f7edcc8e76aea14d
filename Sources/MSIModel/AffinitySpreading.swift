// Managed interrupt affinity: kernel/irq/affinity.c (irq_create_affinity_masks,
// irq_calc_affinity_vectors) and lib/group_cpus.c (group_cpus_evenly; before Linux 6.3 the same
// algorithm lived in affinity.c as irq_build_affinity_masks) for a machine whose CPUs are all
// present, with NUMA nodes and no SMT siblings or clusters (Linux 6.16 added cluster grouping
// inside a node; not modelled).

/// The kernel's spreading of multi-queue interrupts over CPUs.
public enum IRQAffinitySpreading {
    /// `group_cpus_evenly(numgrps, &nummasks)` on one node: `min(groups, cpus.count)` groups of
    /// consecutive CPUs; the first `cpus.count % groups` groups get one CPU more.
    public static func groupCPUsEvenly(_ groups: Int, cpus: CPUMask) -> [CPUMask] {
        groupCPUsEvenly(groups, cpus: cpus, nodes: [cpus])
    }

    /// `group_cpus_evenly()` across NUMA nodes (`nodes[n]`: the CPUs of node n). Each node that
    /// has CPUs in `cpus` gets at least one group, the rest in proportion to its CPU count
    /// (`alloc_groups_to_nodes`: nodes visited from the fewest CPUs up, in the order the kernel's
    /// heap sort leaves them — two nodes with equal counts come out swapped), and its CPUs are cut
    /// into that many groups of consecutive CPUs. With fewer groups than nodes, whole nodes share
    /// groups round-robin. Returns the non-empty groups in group order.
    public static func groupCPUsEvenly(_ groups: Int, cpus: CPUMask, nodes: [CPUMask]) -> [CPUMask] {
        guard groups > 0, !cpus.isEmpty else { return [] }
        var masks = Array(repeating: CPUMask(), count: groups)
        let done = spread(startGroup: 0, groups: groups, cpus: cpus, nodes: nodes, into: &masks)
        return Array(masks.prefix(min(done, groups)))
    }

    /// `__group_cpus_evenly()`: spreads `cpus` over `groups` groups starting at `startGroup`;
    /// returns how many groups got CPUs.
    static func spread(startGroup: Int, groups: Int, cpus: CPUMask, nodes: [CPUMask], into masks: inout [CPUMask]) -> Int {
        let present = nodes.indices.filter { nodes[$0].intersects(cpus) }
        var current = startGroup
        if groups <= present.count {
            for n in present {
                masks[current] = masks[current].union(cpus.intersection(nodes[n]))
                current += 1
                if current == groups { current = 0 }
            }
            return groups
        }
        // alloc_nodes_groups: one entry per node id; nodes without CPUs here keep UINT_MAX.
        let absent = Int(UInt32.max)
        var entries = nodes.indices.map { (id: $0, count: absent) }
        var cpuCount = 0
        for n in present {
            let c = cpus.intersection(nodes[n]).count
            cpuCount += c
            entries[n].count = c
        }
        kernelHeapSort(&entries) { $0.count < $1.count ? -1 : ($0.count > $1.count ? 1 : 0) }
        // alloc_groups_to_nodes: the count field becomes the node's group count.
        var remainingGroups = min(cpuCount, groups)
        var remainingCPUs = cpuCount
        for i in entries.indices where entries[i].count != absent {
            let c = entries[i].count
            let g = max(1, remainingGroups * c / remainingCPUs)
            entries[i].count = g
            remainingCPUs -= c
            remainingGroups -= g
        }
        var done = 0
        for e in entries where e.count != absent {
            var nodeCPUs = Array(cpus.intersection(nodes[e.id]))
            let n = nodeCPUs.count
            guard n > 0 else { continue }
            // assign_cpus_to_groups: the first n % g groups take one CPU more.
            var extra = n - e.count * (n / e.count)
            for _ in 0..<e.count {
                var take = n / e.count
                if extra > 0 { take += 1; extra -= 1 }
                if current >= groups { current = 0 }
                masks[current] = masks[current].union(CPUMask(nodeCPUs.prefix(take)))
                nodeCPUs.removeFirst(min(take, nodeCPUs.count))
                current += 1
            }
            done += e.count
        }
        return done
    }

    /// lib/sort.c's `sort()` (bottom-up heap sort, not stable): the order equal keys end in
    /// decides which NUMA node's CPUs the first spread vectors get.
    static func kernelHeapSort<T>(_ a: inout [T], _ cmp: (T, T) -> Int) {
        var n = a.count
        var start = n / 2
        guard start > 0 else { return }
        while true {
            if start > 0 {
                start -= 1
            } else {
                n -= 1
                if n == 0 { break }
                a.swapAt(0, n)
            }
            // Sift a[start] down: find the path to a leaf, then back up to where it belongs.
            var b = start
            var c = 0
            var d = 0
            while true {
                c = 2 * b + 1
                d = c + 1
                guard d < n else { break }
                b = cmp(a[c], a[d]) >= 0 ? c : d
            }
            if d == n { b = c }
            while b != start && cmp(a[start], a[b]) >= 0 { b = (b - 1) / 2 }
            let target = b
            var pos = b
            while pos != start {
                pos = (pos - 1) / 2
                a.swapAt(pos, target)
            }
        }
    }

    /// `irq_create_affinity_masks(nvecs, affd)`: one descriptor per vector. Pre and post
    /// vectors get `defaultAffinity` and are not managed; the rest are spread set by set with
    /// ``groupCPUsEvenly(_:cpus:)``; vectors a set could not cover (more vectors than CPUs) get
    /// `defaultAffinity` but stay managed, as in the kernel.
    ///
    /// - Returns: nil when no vector needs spreading (pre + post ≥ nvecs) or when the driver's
    ///   `calculateSets` returns more than ``IRQAffinity/maxSets`` sets (the kernel WARNs).
    /// `nodes` are the CPUs of each NUMA node (nil: one node holding `cpus`).
    public static func createMasks(vectors nvecs: Int, affinity affd: IRQAffinity, cpus: CPUMask,
                                   defaultAffinity: CPUMask, nodes: [CPUMask]? = nil) -> [IRQAffinityDescriptor]? {
        guard nvecs > 0, nvecs <= MSILimits.domainSize else { return nil }
        let pre = min(max(affd.preVectors, 0), nvecs)
        let post = min(max(affd.postVectors, 0), nvecs)
        let affvecs = nvecs > pre + post ? nvecs - pre - post : 0
        let sets = affd.calculateSets?(affvecs) ?? [affvecs]
        guard sets.count <= IRQAffinity.maxSets else { return nil }
        guard affvecs > 0 else { return nil }
        var masks = Array(repeating: IRQAffinityDescriptor(mask: CPUMask(), isManaged: false), count: nvecs)
        var curvec = 0
        while curvec < min(pre, nvecs) {
            masks[curvec].mask = defaultAffinity
            curvec += 1
        }
        var usedvecs = 0
        for size in sets {
            let groups = groupCPUsEvenly(max(size, 0), cpus: cpus, nodes: nodes ?? [cpus])
            for (j, g) in groups.enumerated() where curvec + j < nvecs {
                masks[curvec + j].mask = g
            }
            curvec += groups.count
            usedvecs += groups.count
        }
        curvec = pre + min(usedvecs, affvecs)
        while curvec < nvecs {
            masks[curvec].mask = defaultAffinity
            curvec += 1
        }
        var i = pre
        while i < nvecs - post {
            masks[i].isManaged = true
            i += 1
        }
        return masks
    }

    /// `irq_calc_affinity_vectors(minvec, maxvec, affd)`: how many vectors are worth allocating:
    /// pre + post + min(spreadable, maxvec - pre - post), where spreadable is the number of
    /// possible CPUs (or everything, when the driver computes its own sets). 0 when pre + post
    /// exceed `minvec`.
    public static func calcVectors(minVectors: Int, maxVectors: Int, affinity affd: IRQAffinity,
                                   possibleCPUs: Int) -> Int {
        // The kernel works in unsigned ints; out-of-range inputs give 0 here instead of wrapping.
        let limit = Int(UInt32.max)
        guard affd.preVectors >= 0, affd.postVectors >= 0, affd.preVectors <= limit, affd.postVectors <= limit,
              minVectors >= 0, maxVectors >= 0, maxVectors <= limit, possibleCPUs >= 0 else { return 0 }
        let resv = affd.preVectors + affd.postVectors
        guard resv <= minVectors else { return 0 }
        let setVecs = affd.calculateSets != nil ? maxVectors - resv : possibleCPUs
        return resv + min(setVecs, max(maxVectors - resv, 0))
    }
}
