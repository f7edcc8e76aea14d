// What msictl adds to a library's error: the msictl command or flag that fixes it. Library
// errors say what happened and why; only the CLI knows its own commands.
import DeviceIO
import MSIShimCore
import PCIAccess

enum ErrorAdvice {
    /// The command to type about `error`, when msictl has one.
    static func advice(for error: any Error) -> String? {
        switch error {
        case let e as DeviceIOError:
            switch e {
            case let .wrongDriver(address, _, needed):
                return "run `msictl bind \(address) \(needed)` first"
            case let .groupNotViable(_, _, blockers) where !blockers.isEmpty:
                return "bind the others too: "
                    + blockers.map { "`msictl bind \($0.address) vfio-pci`" }.joined(separator: "; ")
            case .uioNotFound(let address):
                return "bind it with `msictl bind \(address) uio_pci_generic`"
            default:
                return nil
            }
        case let e as BindError:
            if case .inUse = e { return "pass --force to take it anyway" }
            return nil
        default:
            return nil
        }
    }

    /// The error's message followed by msictl's advice, if any.
    static func message(for error: any Error) -> String {
        "\(error)" + (advice(for: error).map { "; " + $0 } ?? "")
    }
}
