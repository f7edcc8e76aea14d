// Binding on a fake sysfs tree: plans, in-use checks, dry-run text, the writes themselves,
// the state file and --restore; and the msictl binary end to end.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import DeviceIO
import MSIShimCore
import PCIAccess
import TestSupport

/// A virtio-net device (class 0x020000) bound to virtio-pci with two MSI-X IRQs, alone in
/// IOMMU group 3; vfio-pci and uio_pci_generic are loaded.
func bindTree(classCode: UInt32 = 0x020000, interrupts: (UInt64, UInt64) = (120, 7)) -> FakeTree {
    let tree = FakeTree()
    tree.add(FakeFunction(
        address: devA, driver: "virtio-pci", config: ConfigBuilder().bytes, classCode: classCode, iommuGroup: 3,
        msiIRQs: [24, 25], legacyIRQ: 11))
    tree.addDriver("vfio-pci")
    tree.addDriver("uio_pci_generic")
    tree.setInterrupts("""
                   CPU0       CPU1
          0:         40          0   IO-APIC   2-edge      timer
         11:          0          0   IO-APIC  11-fasteoi   uhci_hcd
         24:         \(interrupts.0)          0   PCI-MSIX-0000:00:03.0   0-edge      virtio0-config
         25:          0          \(interrupts.1)   PCI-MSIX-0000:00:03.0   1-edge      virtio0-input.0
        NMI:          0          0   Non-maskable interrupts
        LOC:       1234       5678   Local timer interrupts

        """)
    return tree
}

@Test func interruptRowsCarryTheirLabel() {
    let counts = ProcInterrupts(parsing: """
                   CPU0       CPU2
          0:         40          2   IO-APIC   2-edge      timer
         38:       8034          0   PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0
        NMI:          0          0   Non-maskable interrupts
        ERR:          0
        """)
    #expect(counts.rows.count == 2)
    #expect(counts.row(irq: 0)?.total == 42 && counts.row(irq: 0)?.label == "IO-APIC 2-edge timer")
    #expect(counts.row(irq: 38)?.total == 8034 && counts.row(irq: 38)?.label.contains("virtio2-input.0") == true)
    #expect(ProcInterrupts(parsing: "").rows.isEmpty)
    // No /proc/interrupts: no rows, so no interrupt evidence (the other checks still run).
    #expect(InterruptCountSource.proc(root: "/nonexistent-proc").read().rows.isEmpty)
}

@Test func bindPlanForABusyNetworkDevice() throws {
    let tree = bindTree()
    let binder = tree.binder()
    let plan = try binder.planBind(devA, to: .vfioPCI)
    #expect(plan.currentDriver == "virtio-pci" && plan.expectedDriver == "vfio-pci")
    #expect(plan.inUse.map(\.kind) == [.interrupts, .network])
    #expect(plan.inUse[0].detail.contains("IRQ 24") && plan.inUse[0].detail.contains("IRQ 25"))
    #expect(plan.blockers.isEmpty)
    #expect(plan.writes == [
        SysfsWrite("bus/pci/devices/0000:00:03.0/driver_override", "vfio-pci"),
        SysfsWrite("bus/pci/drivers/virtio-pci/unbind", "0000:00:03.0"),
        SysfsWrite("bus/pci/drivers_probe", "0000:00:03.0"),
    ])
    #expect(plan.stateToRecord?.contents == "driver=virtio-pci\noverride=\n")
    #expect(plan.notes.contains { $0.contains("IOMMU group 3 holds only this device") })
    // msictl shows the plan on stdout (the text is msictl's: BindPlanText.swift) and why it
    // refuses on stderr.
    if FileManager.default.isExecutableFile(atPath: msictlPath) {
        let shown = try runMsictlSeparately(
            ["bind", "00:03.0", "vfio-pci", "--dry-run"],
            environment: ["MSICTL_SYSFS_ROOT": tree.sysfs, "MSICTL_PROC_ROOT": tree.proc, "MSICTL_STATE_DIR": tree.state])
        #expect(shown.status == 1)
        #expect(shown.stderr.hasPrefix("msictl bind: would refuse: 0000:00:03.0 is in use by virtio-pci: ")
            && shown.stderr.hasSuffix("; pass --force to take it anyway\n"))
        #expect(shown.stdout == """
            0000:00:03.0: currently bound to virtio-pci
              note: IOMMU group 3 holds only this device: viable once bound
              in use: virtio-pci has taken interrupts: IRQ 24 (PCI-MSIX-0000:00:03.0 0-edge virtio0-config): 120, IRQ 25 (PCI-MSIX-0000:00:03.0 1-edge virtio0-input.0): 7
              in use: a network controller (class 0x020000)
            msictl would refuse without --force; with --force it would:
            would record the original driver in \(tree.state)/0000:00:03.0
            would write "vfio-pci" to \(tree.sysfs)/bus/pci/devices/0000:00:03.0/driver_override
            would write "0000:00:03.0" to \(tree.sysfs)/bus/pci/drivers/virtio-pci/unbind
            would write "0000:00:03.0" to \(tree.sysfs)/bus/pci/drivers_probe

            """)
    }
    // Without --force nothing is written.
    #expect(throws: BindError.self) { try binder.apply(plan, force: false) }
    #expect(fileBytes(tree.devicePath(devA) + "/driver_override") == Array("(null)\n".utf8))
    #expect(access(tree.state + "/0000:00:03.0", F_OK) != 0)
}

@Test func forcedBindWritesTheFilesAndRemembersTheDriver() throws {
    let tree = bindTree()
    let binder = tree.binder()
    let plan = try binder.planBind(devA, to: .vfioPCI)
    let outcome = try binder.apply(plan, force: true)
    #expect(fileBytes(tree.devicePath(devA) + "/driver_override").starts(with: Array("vfio-pci".utf8)))
    #expect(readText(tree.sysfs + "/bus/pci/drivers/virtio-pci/unbind") == "0000:00:03.0")
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "0000:00:03.0")
    #expect(readText(tree.state + "/0000:00:03.0") == "driver=virtio-pci\noverride=\n")
    // The record is replaced atomically: no temporary file is left beside it, and it is 0644.
    #expect(listDirectory(tree.state) == ["0000:00:03.0"])
    var info = stat()
    #expect(stat(tree.state + "/0000:00:03.0", &info) == 0 && info.st_mode & 0o777 == 0o644)
    // The fake tree has no kernel to bind it: the outcome says so.
    #expect(outcome.driver == "virtio-pci" && !outcome.matchesExpectation)
}

@Test func plannedWritesShowEveryControlCharacterEscaped() {
    // A value is shown on one line of a dry run: every control character escaped, not only \n.
    #expect(SysfsWrite("x/driver_override", "a\u{1B}[2Jb\tc").rendered(root: "/sys")
            == "write \"a\\e[2Jb\\tc\" to /sys/x/driver_override")
    #expect(SysfsWrite("x/driver_override", "\n").rendered(root: "/sys") == "write \"\\n\" (clears it) to /sys/x/driver_override")
}

@Test func idleDeviceBindsWithoutForce() throws {
    let tree = bindTree(classCode: 0xFF0000, interrupts: (0, 0))
    let binder = tree.binder()
    let plan = try binder.planBind(devA, to: .uioPCIGeneric)
    #expect(plan.inUse.isEmpty)
    #expect(plan.notes.contains { $0.contains("no IOMMU isolation") && $0.contains("INTx") })
    try binder.apply(plan, force: false)
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "0000:00:03.0")
}

@Test func missingDriverModuleBlocksEvenWithForce() throws {
    let tree = bindTree()
    removeTree(tree.sysfs + "/bus/pci/drivers/vfio-pci")
    let binder = tree.binder()
    let plan = try binder.planBind(devA, to: .vfioPCI)
    #expect(plan.blockers == ["driver vfio-pci is not loaded (binding never loads modules; `modprobe vfio-pci` does)"])
    #expect(throws: BindError.self) { try binder.apply(plan, force: true) }
    if let shown = try msictlShows(["bind", "00:03.0", "vfio-pci", "--dry-run", "--force"], tree: tree) {
        #expect(shown.status == 1 && shown.output.hasSuffix("msictl would refuse.\n"))
    }
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "")
}

@Test func alreadyBoundIsNothingToDo() throws {
    let tree = bindTree()
    tree.setDriver(devA, "vfio-pci")
    let plan = try tree.binder().planBind(devA, to: .vfioPCI)
    #expect(plan.isEmpty && plan.notes.contains("already bound to vfio-pci"))
    if let shown = try msictlShows(["bind", "00:03.0", "vfio-pci"], tree: tree) {
        #expect(shown.status == 0 && shown.output.contains("nothing to do"))
    }
}

@Test func groupViabilityIsExplained() throws {
    let tree = bindTree()
    tree.add(FakeFunction(address: devB, driver: "snd_hda_intel", config: ConfigBuilder().bytes, iommuGroup: 3))
    let plan = try tree.binder().planBind(devA, to: .vfioPCI)
    let note = try #require(plan.notes.first { $0.contains("IOMMU group 3") })
    #expect(note.contains("0000:00:04.0 (now snd_hda_intel)") && !note.contains("msictl"))
    #expect(plan.groupMembersToBind == [GroupMember(address: devB, driver: "snd_hda_intel")])
    // The command that fixes it is msictl's to print.
    if let shown = try msictlShows(["bind", "00:03.0", "vfio-pci", "--dry-run"], tree: tree) {
        #expect(shown.output.contains("to make the group viable: `msictl bind 0000:00:04.0 vfio-pci`"))
    }
    unlink(tree.devicePath(devA) + "/iommu_group")
    let noGroup = try tree.binder().planBind(devA, to: .vfioPCI)
    #expect(noGroup.notes.contains { $0.contains("no IOMMU group") })
}

@Test func rootFilesystemStorageAndBootDisplayAreInUse() throws {
    let tree = bindTree(classCode: 0x010000, interrupts: (0, 0))
    writeText(tree.proc + "/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n25 1 254:1 / / rw - ext4 /dev/vda1 rw\n")
    symlinkAt("../../devices/pci0000:00/0000:00:03.0/virtio1/block/vda/vda1", tree.sysfs + "/dev/block/254:1")
    let binder = tree.binder()
    let reasons = binder.inUseReasons(devA, driver: "virtio-pci")
    #expect(reasons.map(\.kind) == [.storage, .rootFilesystem])
    #expect(reasons[1].detail.contains("254:1"))
    // Root on device-mapper: found through slaves.
    writeText(tree.proc + "/self/mountinfo", "25 1 253:0 / / rw - ext4 /dev/mapper/root rw\n")
    makeDirectories(tree.sysfs + "/devices/virtual/block/dm-0/slaves")
    symlinkAt(tree.sysfs + "/devices/virtual/block/dm-0", tree.sysfs + "/dev/block/253:0")
    symlinkAt("../../../../pci0000:00/0000:00:03.0/virtio1/block/vda/vda2",
              tree.sysfs + "/devices/virtual/block/dm-0/slaves/vda2")
    #expect(binder.inUseReasons(devA, driver: "virtio-pci").contains { $0.kind == .rootFilesystem })
    // Boot display and bridges.
    let gpu = try PCIAddress(parsing: "00:02.0")
    tree.add(FakeFunction(address: gpu, driver: "i915", config: ConfigBuilder().bytes, classCode: 0x030000, bootVGA: true))
    #expect(binder.inUseReasons(gpu, driver: "i915").map(\.kind) == [.bootDisplay])
    let bridge = try PCIAddress(parsing: "00:1c.0")
    tree.add(FakeFunction(address: bridge, driver: "pcieport", config: ConfigBuilder().bytes, classCode: 0x060400))
    #expect(binder.inUseReasons(bridge, driver: "pcieport").map(\.kind) == [.bridge])
}

@Test func unbindRestoreReturnsTheOriginalDriver() throws {
    let tree = bindTree(classCode: 0xFF0000, interrupts: (0, 0))
    let binder = tree.binder()
    try binder.apply(binder.planBind(devA, to: .vfioPCI), force: false)
    // Pretend the kernel did bind it, and the user then wants it back.
    tree.setDriver(devA, "vfio-pci")
    writeText(tree.devicePath(devA) + "/driver_override", "vfio-pci\n")
    writeText(tree.sysfs + "/bus/pci/drivers_probe", "")
    // Moving between userspace drivers keeps the original record.
    let toUIO = try binder.planBind(devA, to: .uioPCIGeneric)
    #expect(toUIO.stateToRecord == nil && toUIO.inUse.isEmpty)
    let plan = try binder.planUnbind(devA, restore: true)
    #expect(plan.expectedDriver == "virtio-pci")
    #expect(plan.writes == [
        SysfsWrite("bus/pci/devices/0000:00:03.0/driver_override", "\n"),
        SysfsWrite("bus/pci/drivers/vfio-pci/unbind", "0000:00:03.0"),
        SysfsWrite("bus/pci/drivers_probe", "0000:00:03.0"),
    ])
    if let shown = try msictlShows(["unbind", "00:03.0", "--restore", "--dry-run"], tree: tree) {
        #expect(shown.output.contains(
            "would write \"\\n\" (clears it) to \(tree.sysfs)/bus/pci/devices/0000:00:03.0/driver_override"))
    }
    try binder.apply(plan, force: false)
    #expect(fileBytes(tree.devicePath(devA) + "/driver_override").first == 0x0A)
    #expect(readText(tree.sysfs + "/bus/pci/drivers/vfio-pci/unbind") == "0000:00:03.0")
    #expect(access(tree.state + "/0000:00:03.0", F_OK) != 0)
}

@Test func restoreWithoutRecordAndPlainUnbind() throws {
    let tree = bindTree(classCode: 0xFF0000, interrupts: (0, 0))
    tree.setDriver(devA, "vfio-pci")
    writeText(tree.devicePath(devA) + "/driver_override", "vfio-pci\n")
    let binder = tree.binder()
    let restore = try binder.planUnbind(devA, restore: true)
    #expect(restore.notes.contains { $0.contains("no record of the original driver") })
    #expect(restore.expectedDriver == nil && restore.writes.count == 3)
    let plain = try binder.planUnbind(devA, restore: false)
    #expect(plain.writes == [SysfsWrite("bus/pci/drivers/vfio-pci/unbind", "0000:00:03.0")])
    #expect(plain.overrideLeftInPlace == "vfio-pci")
    if let shown = try msictlShows(["unbind", "00:03.0", "--dry-run"], tree: tree) {
        #expect(shown.output.contains("driver_override stays 'vfio-pci'")
            && shown.output.contains("`msictl unbind 0000:00:03.0 --restore` returns the device"))
    }
    tree.setDriver(devA, nil)
    #expect(try binder.planUnbind(devA, restore: false).isEmpty)
    // Unbinding a busy kernel driver needs --force.
    let busy = bindTree()
    let busyPlan = try busy.binder().planUnbind(devA, restore: false)
    #expect(!busyPlan.inUse.isEmpty)
    #expect(throws: BindError.self) { try busy.binder().apply(busyPlan, force: false) }
    #expect(throws: BindError.noSuchDevice(devB)) { try binder.planBind(devB, to: .vfioPCI) }
}

/// Library messages say what happened and why; the commands and flags to type are msictl's
/// to add (they used to name `msictl bind` and `--force` from inside the library).
@Test func libraryMessagesNameNoCommandOfTheCLI() throws {
    var texts: [String] = []
    let tree = bindTree()
    tree.add(FakeFunction(address: devB, driver: "snd_hda_intel", config: ConfigBuilder().bytes, iommuGroup: 3))
    let binder = tree.binder()
    let plan = try binder.planBind(devA, to: .vfioPCI)
    texts += plan.notes + plan.blockers + plan.inUse.map(\.detail)
    texts.append(BindError.inUse(devA, driver: "virtio-pci", reasons: plan.inUse).description)
    do {
        try binder.apply(plan, force: false)
        Issue.record("a busy device was taken without force")
    } catch {
        texts.append(error.description)
    }
    removeTree(tree.sysfs + "/bus/pci/drivers/vfio-pci")
    texts += try binder.planBind(devA, to: .vfioPCI).blockers
    tree.setDriver(devA, "vfio-pci")
    writeText(tree.devicePath(devA) + "/driver_override", "vfio-pci\n")
    texts += try binder.planUnbind(devA, restore: false).notes
    texts += [
        DeviceIOError.wrongDriver(devA, driver: "e1000e", needed: "vfio-pci").description,
        DeviceIOError.groupNotViable(group: 3, device: devA, blockers: [GroupMember(address: devB, driver: "snd_hda_intel")])
            .description,
        DeviceIOError.uioNotFound(devA).description,
        DeviceIOError.groupBusy(group: 3).description,
    ]
    for driver in [nil, "virtio-pci", "vfio-pci"] {
        if case .denied(let reason) = WritePolicy.evaluate(driver: driver, intent: .readOnly, address: devA) {
            texts.append(reason)
        }
    }
    #expect(texts.count >= 12)
    for text in texts {
        #expect(!text.contains("msictl") && !text.contains("--"), "\(text)")
    }
}

// MARK: - The msictl binary

/// The msictl built next to these tests (`scripts/test`, or `scripts/sanitize` in its own
/// scratch path), as TestSupport finds it.
let msictlPath: String = TestEnvironment.msictl ?? "/nonexistent/msictl"

func runMsictl(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: msictlPath)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// What msictl prints (stdout and stderr) for `arguments` on `tree`; nil when msictl is not
/// built (the MSICtlTests target depends on it, so `swift test` builds it).
func msictlShows(_ arguments: [String], tree: FakeTree) throws -> (status: Int32, output: String)? {
    guard FileManager.default.isExecutableFile(atPath: msictlPath) else { return nil }
    return try runMsictl(
        arguments, environment: ["MSICTL_SYSFS_ROOT": tree.sysfs, "MSICTL_PROC_ROOT": tree.proc, "MSICTL_STATE_DIR": tree.state])
}

@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: msictlPath), "msictl is not built (scripts/test builds it)"))
func msictlBindDryRunOnAFakeTree() throws {
    let tree = bindTree()
    let env = ["MSICTL_SYSFS_ROOT": tree.sysfs, "MSICTL_PROC_ROOT": tree.proc, "MSICTL_STATE_DIR": tree.state]
    let refused = try runMsictl(["bind", "00:03.0", "vfio-pci", "--dry-run"], environment: env)
    #expect(refused.status == 1)
    #expect(refused.output.contains("msictl would refuse without --force"))
    #expect(refused.output.contains("would write \"vfio-pci\" to \(tree.sysfs)/bus/pci/devices/0000:00:03.0/driver_override"))
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "")
    let forcedDry = try runMsictl(["bind", "00:03.0", "vfio-pci", "--dry-run", "--force"], environment: env)
    #expect(forcedDry.status == 0 && forcedDry.output.contains("(overridden by --force)"))
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "")
    // For real, with --force, through the hidden root options.
    let done = try runMsictl(["bind", "0000:00:03.0", "vfio-pci", "--force", "--sysfs-root", tree.sysfs, "--proc-root",
                              tree.proc, "--state-dir", tree.state])
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "0000:00:03.0")
    #expect(readText(tree.state + "/0000:00:03.0") == "driver=virtio-pci\noverride=\n")
    // No kernel behind the fake tree, so the device did not move: reported, non-zero status.
    #expect(done.status == 1 && done.output.contains("the kernel did not bind it"))
    let bad = try runMsictl(["bind", "00:03.9", "vfio-pci", "--dry-run"], environment: env)
    #expect(bad.status != 0 && bad.output.contains("function"))
    let unbind = try runMsictl(["unbind", "00:03.0", "--restore", "--dry-run", "--force"], environment: env)
    #expect(unbind.status == 0 && unbind.output.contains("recorded original driver: virtio-pci"))
}

/// Runs the msictl binary with stdout and stderr apart.
func runMsictlSeparately(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: msictlPath)
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: msictlPath), "msictl is not built (scripts/test builds it)"))
func msictlRefusalsGoToStderr() throws {
    let tree = bindTree()
    let env = ["MSICTL_SYSFS_ROOT": tree.sysfs, "MSICTL_PROC_ROOT": tree.proc, "MSICTL_STATE_DIR": tree.state]
    for args in [["bind", "00:03.0", "vfio-pci"], ["bind", "00:03.0", "vfio-pci", "--dry-run"], ["unbind", "00:03.0"],
                 ["unbind", "00:03.0", "--dry-run"]] {
        let r = try runMsictlSeparately(args, environment: env)
        #expect(r.status == 1, "\(args)")
        // The plan stays on stdout; why it is refused is one line on stderr.
        #expect(r.stdout.contains("0000:00:03.0: currently bound to virtio-pci"), "\(args): \(r.stdout)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(args): \(r.stderr)")
        #expect(r.stderr.hasPrefix("msictl \(args[0]): ") && r.stderr.contains("in use by virtio-pci"), "\(r.stderr)")
        #expect(r.stderr.contains("IRQ 24") && r.stderr.contains("--force"), "\(r.stderr)")
    }
    #expect(readText(tree.sysfs + "/bus/pci/drivers_probe") == "")
    // A blocker (the target driver is not loaded) is on stderr too.
    removeTree(tree.sysfs + "/bus/pci/drivers/vfio-pci")
    let blocked = try runMsictlSeparately(["bind", "00:03.0", "vfio-pci", "--force"], environment: env)
    #expect(blocked.status == 1 && blocked.stderr.contains("not loaded") && blocked.stderr.split(separator: "\n").count == 1)
}
