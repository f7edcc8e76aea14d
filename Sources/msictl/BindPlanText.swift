// How `msictl bind` / `msictl unbind` show a plan: what is there, what would be refused and
// why, every write, and the commands that fix what the plan cannot do itself. The library
// computes the plan; the words about msictl's own flags and commands are added here.
import PCIAccess

extension BindPlan {
    /// The plan as msictl prints it. With `dryRun` the verbs are conditional ("would write").
    func rendered(sysfsRoot: String, dryRun: Bool, force: Bool) -> String {
        var out: [String] = []
        let verb = dryRun ? "would " : ""
        out.append("\(address): currently \(currentDriver.map { "bound to \($0)" } ?? "not bound to any driver")")
        for note in notes { out.append("  note: \(note)") }
        if !groupMembersToBind.isEmpty {
            out.append("  to make the group viable: "
                + groupMembersToBind.map { "`msictl bind \($0.address) vfio-pci`" }.joined(separator: ", "))
        }
        if let override = overrideLeftInPlace {
            out.append("  note: driver_override stays '\(override)': the next probe binds \(override) again; "
                + "`msictl unbind \(address) --restore` returns the device to its original driver")
        }
        for reason in inUse {
            out.append("  in use: \(reason.detail)" + (force ? " (overridden by --force)" : ""))
        }
        for blocker in blockers { out.append("  cannot proceed: \(blocker)") }
        if !blockers.isEmpty || (!inUse.isEmpty && !force) {
            out.append(dryRun ? "msictl would refuse" + (blockers.isEmpty ? " without --force; with --force it would:" : ".")
                : "refused" + (blockers.isEmpty ? ": the device is in use; pass --force to do it anyway" : "."))
            if !blockers.isEmpty || !dryRun { return out.joined(separator: "\n") }
        }
        if writes.isEmpty {
            out.append("nothing to do")
            return out.joined(separator: "\n")
        }
        if let state = stateToRecord { out.append("\(verb)record the original driver in \(state.path)") }
        for w in writes { out.append("\(verb)\(w.rendered(root: sysfsRoot))") }
        if let path = stateToRemove { out.append("\(verb)remove \(path)") }
        return out.joined(separator: "\n")
    }
}
