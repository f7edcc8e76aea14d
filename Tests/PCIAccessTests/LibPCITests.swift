import TestSupport
import Foundation
import MSIShimCore
import Testing

@testable import PCIAccess

@Suite("libpci session and config space")
struct LibPCITests {
    @Test("a libpci error poisons the session: it is cleaned up and every later call throws")
    func poisoning() throws {
        let tree = try Fixtures.FakeSysfs()
        try tree.add("0000:00:01.0", config: Fixtures.config())
        try tree.add("0000:00:02.0", config: Fixtures.config())
        let session = try LibPCISession(method: .live(sysfsRoot: tree.root.path))
        #expect(session.addresses.map(\.description) == ["0000:00:01.0", "0000:00:02.0"])
        #expect(try session.fields(of: session.addresses[0]).vendorID == 0x8086)
        // The device vanishes: libpci's sysfs method calls its error callback for a missing
        // attribute; the wrapper returns instead of exiting the process.
        try FileManager.default.removeItem(at: tree.root.appendingPathComponent("bus/pci/devices/0000:00:02.0/vendor"))
        #expect {
            _ = try session.fields(of: session.addresses[1])
        } throws: { error in
            guard case let LibPCIError.failed(operation, message) = error else { return false }
            return operation == "fill_info" && message.contains("Cannot open") && message.contains("vendor")
        }
        #expect(session.isPoisoned)
        #expect {
            _ = try session.fields(of: session.addresses[0])
        } throws: { error in
            guard case let LibPCIError.poisoned(message) = error else { return false }
            return message.contains("vendor")
        }
        #expect(throws: LibPCIError.self) { _ = try session.vendorName(0x8086) }
    }

    @Test("unknown addresses are a typed error")
    func noSuchDevice() throws {
        let path = try Fixtures.write(Fixtures.dump([("00:01.0", Fixtures.config())]))
        let session = try LibPCISession(method: .dump(path: path))
        let missing = try PCIAddress(parsing: "0000:00:09.0")
        #expect(throws: LibPCIError.noSuchDevice(missing)) { _ = try session.fields(of: missing) }
        #expect(!session.isPoisoned)
    }

    @Test("libpci reports BARs and IDs from a dump as lspci sees them; no sizes")
    func fieldsFromDump() throws {
        let path = try Fixtures.write(Fixtures.dump([("00:01.0", Fixtures.config())]))
        let session = try LibPCISession(method: .dump(path: path))
        let f = try session.fields(of: session.addresses[0])
        #expect(f.vendorID == 0x8086 && f.deviceID == 0x10D3 && f.classCode == 0x0200 && f.revision == 3)
        #expect(f.baseAddresses[0] == 0xFEA8_0000 && f.baseAddresses[1] == 0xC041)
        #expect(f.sizes == nil)
        // The native reader derives the same fields from the bytes.
        let native = PCIProbe.genericFields(ConfigSnapshot(name: "x", bytes: Fixtures.config()))
        #expect(native == f)
    }

    @Test("LibPCIConfigSpace reads what the dump holds, refuses writes, and knows its size")
    func configSpaceOverDump() throws {
        var bytes = Fixtures.config(capPointer: 0x50)
        Fixtures.msi32Maskable(&bytes, at: 0x50, next: 0)
        let path = try Fixtures.write(Fixtures.dump([("00:01.0", bytes)]))
        let session = try LibPCISession(method: .dump(path: path))
        let address = session.addresses[0]
        let config = try LibPCIConfigSpace(session: session, address: address, allowWrites: true)
        #expect(config.readableSize == 256)
        #expect(!config.isWritable)  // a dump is never writable
        #expect(try config.read16(0) == 0x8086)
        #expect(try config.read32(0x54) == 0xFEE0_2004)
        #expect(config.snapshotOfReadBytes().bytes[0x54] == 0x04)
        #expect(throws: DeviceAccessError.outOfBounds(config.name, offset: 256, width: 4, size: 256)) {
            _ = try config.read32(256)
        }
        #expect(throws: DeviceAccessError.unaligned(config.name, offset: 2, width: 4)) { _ = try config.read32(2) }
        #expect {
            try config.write16(4, 0)
        } throws: { error in
            guard case DeviceAccessError.notWritable(_, let reason) = error else { return false }
            return reason.contains("read-only")
        }
        let msi = try MSICapability(config: config, at: 0x50)
        #expect(msi.enabled && msi.maskable && !msi.is64Bit && msi.countCapable == 2 && msi.countEnabled == 2)
        #expect(msi.address == 0xFEE0_2004 && msi.data == 0x22 && msi.mask == 2 && msi.pending == 1)
        #expect(!session.isPoisoned)
    }

    @Test(
        "live config space through libpci equals the sysfs config file, and is read-only by default",
        .enabled(if: TestEnvironment.hasLivePCI, "no PCI devices in /sys/bus/pci/devices"),
        .enabled(if: TestEnvironment.isRoot, "reading past 64 bytes of config space needs root"))
    func liveConfigSpace() throws {
        let session = try LibPCISession(method: .live())
        for address in session.addresses {
            let config = try LibPCIConfigSpace(session: session, address: address)
            let file = try Data(contentsOf: URL(fileURLWithPath: "/sys/bus/pci/devices/\(address)/config"))
            #expect(config.readableSize == file.count, "\(address)")
            // Header and capability list only: every dword is a hypervisor trap here.
            for offset in stride(from: 0, to: 0x40, by: 4) {
                let expected = UInt32(file[offset]) | UInt32(file[offset + 1]) << 8
                    | UInt32(file[offset + 2]) << 16 | UInt32(file[offset + 3]) << 24
                #expect(try config.read32(offset) == expected, "\(address) +\(offset)")
            }
            #expect(!config.isWritable)
            #expect(throws: DeviceAccessError.self) { try config.write8(0x3C, 0) }
            #expect(try config.capabilityList() == (try ConfigSnapshot(name: "file", bytes: Array(file)).capabilityList()))
        }
    }

    @Test("names come from libpci's database, cached, nil when unknown")
    func names() throws {
        let names = PCINameDatabase()
        #expect(try names.vendorName(0x8086) == "Intel Corporation")
        #expect(try names.deviceName(vendor: 0x1AF4, device: 0x1041) == "Virtio 1.0 network device")
        #expect(try names.className(0x0200) == "Ethernet controller")
        #expect(try names.vendorName(0x0002) == nil)
        #expect(try names.deviceName(vendor: 0x8086, device: 0xFFFE) == nil)
        names.preloadInBackground()  // harmless when already loaded
        #expect(try names.vendorName(0x1AF4) == "Red Hat, Inc.")
    }
}
