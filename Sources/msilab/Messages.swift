// Decoding of x86 MSI messages read back from real tables.
// TODO(lab): switch to MSIModel's X86MSIFormat.decode once the model layer is in main.

enum LabMessage: Equatable, CustomStringConvertible {
    case compatibility(destination: Int, vector: Int)
    case remappable(handle: Int, subhandleValid: Bool, subhandle: Int)
    case notAnInterrupt

    static func decode(address: UInt64, data: UInt32) -> LabMessage {
        guard address >> 32 == 0, address & 0xFFF0_0000 == 0xFEE0_0000 else { return .notAnInterrupt }
        let lo = UInt32(address)
        if lo & (1 << 4) != 0 {
            return .remappable(
                handle: Int((lo >> 5) & 0x7FFF) | Int((lo >> 2) & 1) << 15, subhandleValid: lo & (1 << 3) != 0,
                subhandle: Int(data & 0xFFFF))
        }
        return .compatibility(destination: Int((lo >> 12) & 0xFF), vector: Int(data & 0xFF))
    }

    var description: String {
        switch self {
        case let .compatibility(d, v): "compatibility format, APIC \(d), vector \(hx(v))"
        case let .remappable(h, shv, s): "remappable format, handle \(h)\(shv ? " + subhandle \(s)" : "")"
        case .notAnInterrupt: "not an interrupt address"
        }
    }
}
