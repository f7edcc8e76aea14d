import TestSupport
import Foundation
import MSIShimCore

/// Builders for test inputs: config-space bytes, lspci -x dump text, fake sysfs trees.
enum Fixtures {
    /// 256 bytes of a type-0 function: vendor 8086 device 10d3 (82574L), class 0200, one
    /// 32-bit memory BAR at fea80000 and an I/O BAR at c040, capability list at `capPointer`.
    static func config(capPointer: UInt8 = 0, size: Int = 256) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: size)
        put16(&c, 0x00, 0x8086)
        put16(&c, 0x02, 0x10D3)
        put16(&c, 0x04, 0x0007)  // I/O, memory, bus master
        put16(&c, 0x06, capPointer != 0 ? 0x0010 : 0)
        c[0x08] = 0x03
        put16(&c, 0x0A, 0x0200)
        put32(&c, 0x10, 0xFEA8_0000)
        put32(&c, 0x14, 0x0000_C041)
        if size > 0x34 { c[0x34] = capPointer }
        return c
    }

    static func put16(_ c: inout [UInt8], _ at: Int, _ v: UInt16) {
        c[at] = UInt8(v & 0xFF)
        c[at + 1] = UInt8(v >> 8)
    }

    static func put32(_ c: inout [UInt8], _ at: Int, _ v: UInt32) {
        for k in 0..<4 { c[at + k] = UInt8((v >> (8 * UInt32(k))) & 0xFF) }
    }

    /// Adds a capability header (id, next) at `at`.
    static func cap(_ c: inout [UInt8], at: Int, id: UInt8, next: UInt8) {
        c[at] = id
        c[at + 1] = next
    }

    /// A 32-bit MSI capability with per-vector masking: 2 vectors capable, 2 enabled.
    static func msi32Maskable(_ c: inout [UInt8], at: Int, next: UInt8) {
        cap(&c, at: at, id: 0x05, next: next)
        put16(&c, at + 2, 0x0100 | 0x0010 | 0x0002 | 0x0001)  // mask, MME=1, MMC=1, enable
        put32(&c, at + 4, 0xFEE0_2004)
        put16(&c, at + 8, 0x0022)
        put32(&c, at + 0x0C, 0x0000_0002)
        put32(&c, at + 0x10, 0x0000_0001)
    }

    /// An MSI-X capability: 5 entries, enabled, table in BAR 3 at 0, PBA at 0x2000.
    static func msix(_ c: inout [UInt8], at: Int, next: UInt8) {
        cap(&c, at: at, id: 0x11, next: next)
        put16(&c, at + 2, 0x8004)
        put32(&c, at + 4, 0x0000_0003)
        put32(&c, at + 8, 0x0000_2003)
    }

    /// `lspci -x` text for devices given as (slot text, bytes).
    static func dump(_ devices: [(String, [UInt8])]) -> String {
        var out = ""
        for (slot, bytes) in devices {
            out += "\(slot) Device\n"
            var offset = 0
            while offset < bytes.count {
                let row = bytes[offset..<min(offset + 16, bytes.count)]
                out += hex(offset, width: 2) + ":" + row.map { " " + hex($0, width: 2) }.joined() + "\n"
                offset += 16
            }
            out += "\n"
        }
        return out
    }

    /// Writes `text` to a new temporary file; returns its path.
    static func write(_ text: String, name: String = "test.dump") throws -> String {
        let dir = try TestEnvironment.temporaryDirectory("dump")
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// A fake sysfs tree (`root/bus/pci/devices/<bdf>/...`) that libpci's sysfs method and
    /// SysfsPCI can read.
    struct FakeSysfs {
        let root: URL

        init() throws {
            root = try TestEnvironment.temporaryDirectory("sysfs")
        }

        /// Adds a function. `config` may be shorter than `configFileSize` to model an
        /// unprivileged reader's view; `msi` lists (irq, "msi"/"msix").
        func add(
            _ bdf: String, config: [UInt8], driver: String? = nil, iommuGroup: Int? = nil,
            msi: [(Int, String)] = [], resource: [(UInt64, UInt64, UInt64)] = []
        ) throws {
            let fm = FileManager.default
            let dir = root.appendingPathComponent("bus/pci/devices/\(bdf)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            func file(_ name: String, _ text: String) throws {
                try Data(text.utf8).write(to: dir.appendingPathComponent(name))
            }
            try Data(config).write(to: dir.appendingPathComponent("config"))
            let v = UInt16(config[0]) | UInt16(config[1]) << 8
            let d = UInt16(config[2]) | UInt16(config[3]) << 8
            try file("vendor", "0x\(hex(v, width: 4))\n")
            try file("device", "0x\(hex(d, width: 4))\n")
            try file("class", "0x\(hex(config[0x0B], width: 2))\(hex(config[0x0A], width: 2))\(hex(config[0x09], width: 2))\n")
            try file("revision", "0x\(hex(config[0x08], width: 2))\n")
            try file("subsystem_vendor", "0x0000\n")
            try file("subsystem_device", "0x0000\n")
            try file("irq", "0\n")
            try file("numa_node", "-1\n")
            var lines = ""
            for i in 0..<13 {
                let r = i < resource.count ? resource[i] : (0, 0, 0)
                lines += "0x\(hex(r.0, width: 16)) 0x\(hex(r.1, width: 16)) 0x\(hex(r.2, width: 16))\n"
            }
            try file("resource", lines)
            if let driver {
                let drivers = root.appendingPathComponent("bus/pci/drivers/\(driver)")
                try fm.createDirectory(at: drivers, withIntermediateDirectories: true)
                try fm.createSymbolicLink(atPath: dir.appendingPathComponent("driver").path, withDestinationPath: drivers.path)
            }
            if let iommuGroup {
                let group = root.appendingPathComponent("kernel/iommu_groups/\(iommuGroup)")
                try fm.createDirectory(at: group, withIntermediateDirectories: true)
                try fm.createSymbolicLink(atPath: dir.appendingPathComponent("iommu_group").path, withDestinationPath: group.path)
            }
            if !msi.isEmpty {
                let irqs = dir.appendingPathComponent("msi_irqs")
                try fm.createDirectory(at: irqs, withIntermediateDirectories: true)
                for (irq, kind) in msi { try Data("\(kind)\n".utf8).write(to: irqs.appendingPathComponent("\(irq)")) }
            }
        }

        /// Writes a fake /proc/interrupts next to the tree; returns its path.
        func interrupts(_ text: String) throws -> String {
            let url = root.appendingPathComponent("interrupts")
            try Data(text.utf8).write(to: url)
            return url.path
        }
    }
}
