// Scenario faults (msilab's parts): a device hot-unplugged while msilab drives it through
// VFIO, a VFIO group that is not viable, writes to a kernel-owned device, and a UIO device
// unbound under msilab's feet. Every case must end in a clear error or a clean exit: no hang,
// no crash.
#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import MSIShimCore
import PCIAccess

struct FaultScenarios {
    let report: Report
    let sysfs = SysfsPCI()

    // MARK: - Hot-unplug through VFIO

    /// Drives `address` (bound to vfio-pci) with interrupts flowing, asks the host to
    /// `device_del` it (the line `@@HOST device_del ID` on the console), honours the kernel's
    /// release request (VFIO_PCI_REQ_IRQ_INDEX), and checks the device then leaves sysfs.
    func unplug(_ address: PCIAddress, qemuID: String) {
        let released = drive(address, qemuID: qemuID)
        guard released else { return }
        // The kernel finishes removing the function once every fd is closed.
        let start = nowMs()
        while sysfs.exists(address) && nowMs() - start < 20_000 { sleepMs(100) }
        report.check(
            !sysfs.exists(address), "unplug-device-removed",
            "\(address) left sysfs \(nowMs() - start) ms after msilab closed its descriptors")
        do {
            _ = try VFIODevice.open(address, flow: .group, intent: .allowWrites, environment: .live)
            report.fail("unplug-reopen-refused", "the removed device opened")
        } catch {
            report.check(error == .noSuchDevice(address), "unplug-reopen-refused", "\(error)")
        }
    }

    /// Returns true when the release request came and everything was let go.
    func drive(_ address: PCIAddress, qemuID: String) -> Bool {
        guard let device = report.attempt("unplug-open", {
            try VFIODevice.open(address, flow: .group, intent: .allowWrites, environment: .live)
        }) else { return false }
        guard let setup = report.attempt("unplug-setup", { () throws -> (VFIOBARRegion, EventFD, [EventFD]) in
            try device.enableMemoryDecode()
            let config = try device.configSpace()
            try config.write16(PCIReg.command, try config.read16(PCIReg.command) | PCIReg.Command.busMaster)
            let bar0 = try device.bar(0)
            let fds = try device.enableInterrupts(.msix, count: 5)
            let req = try device.enableReleaseRequestNotification()
            try E1000E.quiesce(bar0)
            return (bar0, req, fds)
        }) else { return false }
        let (bar0, req, fds) = setup
        report.pass("unplug-setup", "MSI-X enabled, release-request eventfd armed")
        report.info("asking the host to remove the device")
        report.host("device_del \(qemuID)")

        // Keep interrupts flowing until the kernel asks for the device back.
        let start = nowMs()
        var raised = 0, delivered: UInt64 = 0
        var requestedAt: Int?
        var accessError: String?
        while nowMs() - start < 40_000 {
            do {
                try E1000E.raise(bar0, vector: 0)
                raised += 1
            } catch {
                accessError = "\(error)"
                break
            }
            let ready = pollReadable([req.fd, fds[0].fd], timeoutMs: 100)
            delivered += (try? fds[0].take()) ?? 0
            if ready.contains(req.fd), (try? device.releaseRequested()) == true {
                requestedAt = nowMs() - start
                break
            }
        }
        guard let requestedAt else {
            report.fail(
                "unplug-release-request",
                accessError.map { "device access failed before any release request: \($0)" }
                    ?? "no release request within 40 s (\(raised) raises, \(delivered) interrupts)")
            return false
        }
        report.check(
            delivered > 0, "unplug-release-request",
            "the kernel asked for the device back after \(requestedAt) ms; \(raised) raises, \(delivered) "
                + "interrupts delivered meanwhile")
        // Let go: disable interrupts; the descriptors close when the last reference goes.
        do {
            try device.disableInterrupts(.msix)
            report.pass("unplug-release", "interrupts disabled; closing the device")
        } catch {
            // The device may already be half-gone: report, and still close.
            report.pass("unplug-release", "disable failed cleanly (\(error)); closing the device")
        }
        return true
    }

    // MARK: - Group not viable

    /// `address` is bound to vfio-pci but shares its IOMMU group with a function a kernel
    /// driver owns: opening must fail with a message naming that function and its driver.
    func groupNotViable(_ address: PCIAddress, blocker: PCIAddress) {
        do {
            _ = try VFIODevice.open(address, flow: .group, intent: .allowWrites, environment: .live)
            report.fail("group-not-viable-open", "opened although \(blocker) is bound to \(sysfs.driver(of: blocker) ?? "?")")
        } catch let e {
            guard case let .groupNotViable(group, device, blockers) = e else {
                report.fail("group-not-viable-open", "wrong error: \(e)")
                return
            }
            let text = e.description
            report.check(
                device == address && group == sysfs.iommuGroup(of: address)
                    && blockers.map(\.address) == [blocker] && text.contains("\(blocker)")
                    && text.contains(sysfs.driver(of: blocker) ?? "?") && text.contains("not viable"),
                "group-not-viable-open", text)
        }
    }

    // MARK: - Kernel-owned device

    /// Opens a device a kernel driver owns with write intent: reads work, every write is
    /// refused naming the driver, and BAR writes too.
    func writeRefused(_ address: PCIAddress) {
        let driver = sysfs.driver(of: address) ?? "none"
        guard let handle = report.attempt("kernel-owned-open", {
            try DeviceHandle.open(address, intent: .allowWrites)
        }) else { return }
        report.check(
            !handle.isWritable && handle.backend == .sysfs, "kernel-owned-open",
            "backend \(handle.backend), driver \(handle.driver ?? "none"), writable \(handle.isWritable)")
        let command = try? handle.config.read16(PCIReg.command)
        report.check(command != nil, "kernel-owned-config-read", "Command \(command.map(hx) ?? "unreadable")")
        expectRefused("kernel-owned-config-write", driver: driver) {
            try handle.config.write16(PCIReg.command, command ?? 0)
        }
        // BARs of a kernel-owned device: with CONFIG_IO_STRICT_DEVMEM the kernel refuses the
        // mmap itself (unless booted with iomem=relaxed); either way a store is refused.
        do {
            let bar = try handle.bar(0)
            report.pass("kernel-owned-bar-map", "\(bar.name) mapped read-only (iomem=relaxed?)")
            expectRefused("kernel-owned-bar-write", driver: driver) { try bar.write32(0, 0) }
        } catch let e as DeviceIOError {
            let text = e.description
            report.check(
                text.contains("CONFIG_IO_STRICT_DEVMEM"), "kernel-owned-bar-map",
                "refused by the kernel, and the message says why: \(text)")
        } catch {
            report.fail("kernel-owned-bar-map", "unexpected error \(error)")
        }
    }

    func expectRefused(_ name: String, driver: String, _ body: () throws -> Void) {
        do {
            try body()
            report.fail(name, "the write went through")
        } catch let e as DeviceAccessError {
            guard case let .notWritable(_, reason) = e else {
                report.fail(name, "wrong error: \(e)")
                return
            }
            report.check(reason.contains("'\(driver)'") && e.errno == .EPERM, name, "\(e)")
        } catch {
            report.fail(name, "unexpected error \(error)")
        }
    }

    // MARK: - UIO device unbound mid-run

    /// Opens `address` (bound to uio_pci_generic) for writing, then unbinds it behind the
    /// handle's back: config writes are refused from then on ("driver changed since open"),
    /// and opening again is refused for writes.
    func uioUnbound(_ address: PCIAddress) {
        guard let handle = report.attempt("uio-unbind-open", {
            try DeviceHandle.open(address, intent: .allowWrites)
        }) else { return }
        guard let command = report.attempt("uio-unbind-write-before", { () throws -> UInt16 in
            let c = try handle.config.read16(PCIReg.command)
            try handle.config.write16(PCIReg.command, c)
            return c
        }) else { return }
        report.pass("uio-unbind-write-before", "backend \(handle.backend); Command \(hx(command)) rewritten")
        do {
            try sysfs.writeFile(relative: "bus/pci/drivers/uio_pci_generic/unbind", address.description)
        } catch {
            report.fail("uio-unbind-sysfs", "\(error)")
            return
        }
        report.expect("uio-unbind-sysfs", sysfs.driver(of: address) ?? "none", "none")
        do {
            try handle.config.write16(PCIReg.command, command)
            report.fail("uio-unbind-write-after", "config write went through after unbind")
        } catch let e as DeviceAccessError {
            if case let .notWritable(_, reason) = e, reason.contains("driver changed since open") {
                report.pass("uio-unbind-write-after", "\(e)")
            } else {
                report.fail("uio-unbind-write-after", "wrong error: \(e)")
            }
        } catch {
            report.fail("uio-unbind-write-after", "unexpected error \(error)")
        }
        let again = try? DeviceHandle.open(address, intent: .allowWrites)
        report.check(
            again.map { !$0.isWritable } ?? false, "uio-unbind-reopen-read-only",
            again?.permission.reason ?? "could not reopen")
    }

    // MARK: - UIO device hot-unplugged while mapped

    /// Maps BAR0 of `address` through UIO and BAR3 through sysfs `resource3`, watches kernel
    /// uevents, asks the host to `device_del` the device and keeps using it until the `remove`
    /// event arrives; then stops, checks config space reports the device gone, and exits.
    ///
    /// Lab fact: after removal QEMU answers reads of the old BAR addresses with 0, not all-ones,
    /// and neither the UIO nor the sysfs mapping is revoked (no SIGBUS on 6.1): MMIO alone cannot
    /// tell that the device left. The uevent (or config space) is what says so.
    func uioUnplug(_ address: PCIAddress, qemuID: String) {
        guard let monitor = report.attempt("uio-unplug-uevents", { try UdevPCIMonitor(source: .kernel) }),
              let handle = report.attempt("uio-unplug-open", { try DeviceHandle.open(address, intent: .allowWrites) }),
              let bar0 = report.attempt("uio-unplug-map", { try handle.bar(0) }),
              let bar3 = report.attempt("uio-unplug-map", {
                  try SysfsBAR.map(address, bar: 3, intent: .allowWrites)
              })
        else { return }
        let before = (try? bar0.read32(0x08), try? bar3.read32(0x0C))
        report.check(
            before.0 != nil && before.1 != nil, "uio-unplug-read-before",
            "\(bar0.name) STATUS \(before.0.map(hx) ?? "?"); \(bar3.name) entry 0 control \(before.1.map(hx) ?? "?")")
        report.host("device_del \(qemuID)")
        let start = nowMs()
        var reads = 0, readErrors: [String] = []
        var removedAt: Int?
        while removedAt == nil && nowMs() - start < 30_000 {
            // Use the device as a driver would between events.
            do {
                _ = try bar0.read32(0x08)
                _ = try bar3.read32(0x0C)
                reads += 1
            } catch {
                readErrors.append("\(error)")
            }
            guard let event = try? monitor.next(timeoutMilliseconds: 20) else { continue }
            report.info("uevent \(event.action) \(event.address.map { "\($0)" } ?? event.syspath)")
            if event.action == UdevAction("remove") && event.address == address { removedAt = nowMs() - start }
        }
        guard let removedAt else {
            report.fail("uio-unplug-remove-event", "no remove uevent for \(address) within 30 s (\(reads) reads)")
            return
        }
        report.pass(
            "uio-unplug-remove-event",
            "remove uevent \(removedAt) ms after device_del was asked; \(reads) BAR reads meanwhile, "
                + "\(readErrors.count) failed")
        let after = (try? bar0.read32(0x08)).map(hx) ?? "error"
        report.info("BAR0 STATUS read after removal: \(after) (QEMU returns 0 for unassigned MMIO, not all-ones)")
        do {
            let v = try handle.config.read16(PCIReg.vendorID)
            report.fail("uio-unplug-config-gone", "config read returned \(hx(v)) on a removed device")
        } catch {
            report.check(
                error as? DeviceAccessError == .deviceGone(handle.config.name) || !sysfs.exists(address),
                "uio-unplug-config-gone", "\(error)")
        }
        report.check(!sysfs.exists(address), "uio-unplug-sysfs-gone", "\(address) present in sysfs: \(sysfs.exists(address))")
    }
}
