import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("libudev wrapper")
struct UdevTests {
    @Test(
        "udev's driver for every live device matches sysfs and libpci's PCI_FILL_DRIVER",
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"))
    func drivers() throws {
        let udev = try UdevContext()
        let sysfs = SysfsPCI()
        let session = try LibPCISession(method: .live())
        for address in session.addresses {
            let device = try #require(udev.device(address), "\(address)")
            #expect(device.address == address)
            #expect(device.syspath.hasPrefix("/sys/devices/") && device.syspath.hasSuffix(address.description))
            #expect(device.driver == sysfs.driver(of: address), "\(address)")
            #expect(device.driver == (try session.driverProperty(of: address)), "\(address)")
            #expect(device.modalias?.hasPrefix("pci:v") == true, "\(address)")
        }
        #expect(udev.device(try PCIAddress(parsing: "ffff:ff:1f.7")) == nil)
    }

    @Test("resolving the bus/pci/devices link")
    func symlinks() throws {
        let dir = try TestEnvironment.temporaryDirectory("link")
        let target = dir.appendingPathComponent("devices/pci0000:00/0000:00:03.0")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let links = dir.appendingPathComponent("bus/pci/devices")
        try FileManager.default.createDirectory(at: links, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: links.appendingPathComponent("0000:00:03.0").path,
            withDestinationPath: "../../../devices/pci0000:00/0000:00:03.0")
        #expect(resolveSymlink(links.appendingPathComponent("0000:00:03.0").path) == target.path)
        #expect(resolveSymlink(target.path) == nil)
    }

    /// A device without a driver: a synthetic "change" uevent on it touches no device
    /// register and no driver state.
    static let driverless: PCIAddress? = {
        let sysfs = SysfsPCI()
        return sysfs.addresses().first { sysfs.driver(of: $0) == nil }
    }()

    @Test(
        "the monitor reports a PCI uevent (a synthetic change on a driverless device)",
        .enabled(if: TestEnvironment.isRoot, "writing a synthetic uevent needs root"),
        .enabled(if: UdevTests.driverless != nil, "no PCI device without a driver to send a harmless uevent to"))
    func monitor() throws {
        let sysfs = SysfsPCI()
        let quiet = try #require(Self.driverless)
        let monitor = try UdevPCIMonitor(source: .kernel)
        #expect(monitor.fileDescriptor >= 0)
        #expect(try monitor.next(timeoutMilliseconds: 0) == nil)
        try sysfs.writeAttribute("uevent", of: quiet, "change")
        var seen: UdevPCIEvent?
        for _ in 0..<20 {
            guard let event = try monitor.next(timeoutMilliseconds: 500) else { break }
            if event.address == quiet { seen = event; break }
        }
        let event = try #require(seen)
        #expect(event.action == .change)
        #expect(event.syspath.hasSuffix(quiet.description))
    }

    @Test("action names")
    func actions() {
        #expect(UdevAction("add") == .add && UdevAction("unbind") == .unbind)
        #expect(UdevAction("weird") == .other("weird") && UdevAction("weird").description == "weird")
    }
}
