import Foundation

/// One device of `lspci -vvv` output, the fields the agreement tests compare.
package struct LSPCIDevice {
    package struct Capability: Equatable {
        package var offset: Int
        package var extended: Bool
        package var text: String
    }

    package struct MSI: Equatable {
        package var enabled: Bool
        package var countEnabled: Int
        package var countCapable: Int
        package var maskable: Bool
        package var is64Bit: Bool
        /// As printed: 16 hex digits for 64-bit, 8 for 32-bit; nil if lspci printed no Address line.
        package var address: String?
        package var data: String?
        package var mask: String?
        package var pending: String?
    }

    package struct MSIX: Equatable {
        package var enabled: Bool
        package var count: Int
        package var masked: Bool
        package var tableBAR: Int?
        package var tableOffset: UInt32?
        package var pbaBAR: Int?
        package var pbaOffset: UInt32?
    }

    package struct Region: Equatable {
        package var index: Int
        package var isIO: Bool
        /// nil for <unassigned>/<ignored>.
        package var base: UInt64?
        package var is64Bit: Bool
        package var prefetchable: Bool
        package var disabled: Bool
        package var virtual: Bool
        package var sizeText: String?
    }

    /// `0000:00:03.0` (lspci omits domain 0; added here).
    package var slot: String
    /// The rest of the first line: "Class: Vendor Device (rev 01) (prog-if ...)".
    package var title: String
    package var capabilities: [Capability] = []
    /// `<chain looped>` etc. with the offset printed before it (nil for `<access denied>`).
    package var chainProblems: [(offset: Int?, word: String)] = []
    package var msi: MSI?
    package var msix: MSIX?
    /// The words after "Express (vN) ", up to ", MSI".
    package var expressType: String?
    package var regions: [Region] = []
    package var driver: String?
}

/// Parses `lspci -vvv` (optionally `-D`) output into devices.
package enum LSPCIOutput {
    package static func parse(_ text: String) -> [LSPCIDevice] {
        var devices: [LSPCIDevice] = []
        var current: LSPCIDevice?
        /// Which capability the indented detail lines belong to.
        var inMSI = false
        var inMSIX = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.isEmpty { continue }
            if !line.hasPrefix("\t") {
                if let c = current { devices.append(c) }
                current = header(line)
                inMSI = false
                inMSIX = false
                continue
            }
            guard var dev = current else { continue }
            defer { current = dev }
            if line.hasPrefix("\t\t") {
                let body = line.trimmingCharacters(in: .whitespaces)
                if inMSI, body.hasPrefix("Address: ") {
                    // "Address: fee02004  Data: 0022"
                    let parts = body.components(separatedBy: "  ")
                    dev.msi?.address = parts[0].replacingOccurrences(of: "Address: ", with: "")
                    dev.msi?.data = parts.count > 1 ? parts[1].replacingOccurrences(of: "Data: ", with: "") : nil
                } else if inMSI, body.hasPrefix("Masking: ") {
                    let parts = body.components(separatedBy: "  ")
                    dev.msi?.mask = parts[0].replacingOccurrences(of: "Masking: ", with: "")
                    dev.msi?.pending = parts.count > 1 ? parts[1].replacingOccurrences(of: "Pending: ", with: "") : nil
                } else if inMSIX, body.hasPrefix("Vector table: ") {
                    let (bar, offset) = barOffset(body)
                    dev.msix?.tableBAR = bar
                    dev.msix?.tableOffset = offset
                } else if inMSIX, body.hasPrefix("PBA: ") {
                    let (bar, offset) = barOffset(body)
                    dev.msix?.pbaBAR = bar
                    dev.msix?.pbaOffset = offset
                }
                continue
            }
            let body = String(line.dropFirst())
            inMSI = false
            inMSIX = false
            if body.hasPrefix("Capabilities: ") {
                var rest = String(body.dropFirst("Capabilities: ".count))
                guard rest.hasPrefix("[") else {
                    dev.chainProblems.append((nil, rest.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))))
                    continue
                }
                let close = rest.firstIndex(of: "]")!
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                let offsetText = inside.split(separator: " ").first.map(String.init) ?? ""
                let offset = Int(offsetText, radix: 16) ?? -1
                rest = String(rest[rest.index(close, offsetBy: 2)...])
                if rest.hasPrefix("<") {
                    dev.chainProblems.append((offset, rest.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))))
                    continue
                }
                dev.capabilities.append(.init(offset: offset, extended: offsetText.count == 3, text: rest))
                if rest.hasPrefix("MSI: ") {
                    dev.msi = msi(rest)
                    inMSI = true
                } else if rest.hasPrefix("MSI-X: ") {
                    dev.msix = msix(rest)
                    inMSIX = true
                } else if rest.hasPrefix("Express ") {
                    var t = rest.dropFirst("Express ".count)
                    if t.hasPrefix("(v") { t = t[t.index(after: t.firstIndex(of: ")")!)...].dropFirst() }
                    if let r = t.range(of: ", MSI ") { t = t[..<r.lowerBound] }
                    dev.expressType = String(t)
                }
            } else if body.hasPrefix("Region ") {
                if let region = region(body) { dev.regions.append(region) }
            } else if body.hasPrefix("Kernel driver in use: ") {
                dev.driver = String(body.dropFirst("Kernel driver in use: ".count))
            }
        }
        if let c = current { devices.append(c) }
        return devices
    }

    package static func header(_ line: String) -> LSPCIDevice? {
        guard let space = line.firstIndex(of: " ") else { return nil }
        var slot = String(line[..<space])
        if slot.filter({ $0 == ":" }).count == 1 { slot = "0000:" + slot }
        return LSPCIDevice(slot: slot, title: String(line[line.index(after: space)...]))
    }

    package static func flag(_ text: String, _ name: String) -> Bool {
        text.contains(name + "+")
    }

    package static func msi(_ text: String) -> LSPCIDevice.MSI {
        // "MSI: Enable+ Count=1/2 Maskable+ 64bit-"
        let count = text.components(separatedBy: "Count=")[1].split(separator: " ")[0].split(separator: "/")
        return .init(
            enabled: flag(text, "Enable"), countEnabled: Int(count[0])!, countCapable: Int(count[1])!,
            maskable: flag(text, "Maskable"), is64Bit: flag(text, "64bit"))
    }

    package static func msix(_ text: String) -> LSPCIDevice.MSIX {
        // "MSI-X: Enable+ Count=5 Masked-"
        let count = text.components(separatedBy: "Count=")[1].split(separator: " ")[0]
        return .init(enabled: flag(text, "Enable"), count: Int(count)!, masked: flag(text, "Masked"))
    }

    package static func barOffset(_ text: String) -> (Int?, UInt32?) {
        // "Vector table: BAR=0 offset=00008000"
        let bar = text.components(separatedBy: "BAR=").last?.split(separator: " ").first.flatMap { Int($0) }
        let offset = text.components(separatedBy: "offset=").last.flatMap { UInt32($0, radix: 16) }
        return (bar, offset)
    }

    package static func region(_ body: String) -> LSPCIDevice.Region? {
        // "Region 0: Memory at fc000000 (32-bit, prefetchable) [size=16M]"
        // "Region 2: I/O ports at c440 [size=32]", "Region 1: Memory at <unassigned> (32-bit, ...)"
        let afterIndex = body.dropFirst("Region ".count)
        guard let colon = afterIndex.firstIndex(of: ":"), let index = Int(afterIndex[..<colon]) else { return nil }
        var rest = String(afterIndex[afterIndex.index(colon, offsetBy: 2)...])
        var virtual = false
        if rest.hasPrefix("[virtual] ") {
            virtual = true
            rest = String(rest.dropFirst("[virtual] ".count))
        }
        let isIO = rest.hasPrefix("I/O ports at ")
        rest = String(rest.dropFirst(isIO ? "I/O ports at ".count : "Memory at ".count))
        let baseText = rest.split(separator: " ").first.map(String.init) ?? ""
        let base = UInt64(baseText, radix: 16)
        let sizeText = rest.range(of: "[size=").map { String(rest[$0.upperBound...].prefix { $0 != "]" }) }
        return .init(
            index: index, isIO: isIO, base: base, is64Bit: rest.contains("(64-bit"),
            prefetchable: rest.contains(", prefetchable"), disabled: rest.contains("[disabled]"), virtual: virtual,
            sizeText: sizeText)
    }
}
