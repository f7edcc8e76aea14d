// Managed interrupt affinity: kernel/irq/affinity.c (irq_create_affinity_masks,
// irq_calc_affinity_vectors) and lib/group_cpus.c (group_cpus_evenly) for a machine with one
// NUMA node and no SMT siblings, where every possible CPU is present.

/// The kernel's spreading of multi-queue interrupts over CPUs.
public enum IRQAffinitySpreading {
    /// `group_cpus_evenly(numgrps, &nummasks)` on one node: `min(groups, cpus.count)` groups of
    /// consecutive CPUs; the first `cpus.count % groups` groups get one CPU more.
    public static func groupCPUsEvenly(_ groups: Int, cpus: CPUMask) -> [CPUMask] {
        let list = Array(cpus)
        guard groups > 0, !list.isEmpty else { return [] }
        let used = min(groups, list.count)
        let perGroup = list.count / used
        var extra = list.count - used * perGroup
        var result: [CPUMask] = []
        result.reserveCapacity(used)
        var at = 0
        for _ in 0..<used {
            var n = perGroup
            if extra > 0 { n += 1; extra -= 1 }
            result.append(CPUMask(list[at..<(at + n)]))
            at += n
        }
        return result
    }

    /// `irq_create_affinity_masks(nvecs, affd)`: one descriptor per vector. Pre and post
    /// vectors get `defaultAffinity` and are not managed; the rest are spread set by set with
    /// ``groupCPUsEvenly(_:cpus:)``; vectors a set could not cover (more vectors than CPUs) get
    /// `defaultAffinity` but stay managed, as in the kernel.
    ///
    /// - Returns: nil when no vector needs spreading (pre + post ≥ nvecs) or when the driver's
    ///   `calculateSets` returns more than ``IRQAffinity/maxSets`` sets (the kernel WARNs).
    public static func createMasks(vectors nvecs: Int, affinity affd: IRQAffinity, cpus: CPUMask,
                                   defaultAffinity: CPUMask) -> [IRQAffinityDescriptor]? {
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
            let groups = groupCPUsEvenly(max(size, 0), cpus: cpus)
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
