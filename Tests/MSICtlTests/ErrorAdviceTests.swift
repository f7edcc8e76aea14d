// msictl adds the command to type to a library's error; the library itself names none.
import DeviceIO
import MSIShimCore
import PCIAccess
import Testing
@testable import msictl

@Suite("msictl's advice on library errors")
struct ErrorAdviceTests {
    let device = PCIAddress(bus: 0, device: 3, function: 0) ?? .zero
    let other = PCIAddress(bus: 0, device: 4, function: 0) ?? .zero

    @Test("a device on the wrong driver: bind it")
    func wrongDriver() {
        let text = ErrorAdvice.message(for: DeviceIOError.wrongDriver(device, driver: "e1000e", needed: "vfio-pci"))
        #expect(text == "0000:00:03.0 is bound to e1000e, not vfio-pci; run `msictl bind 0000:00:03.0 vfio-pci` first")
    }

    @Test("a group that is not viable: the bind command for every blocker")
    func groupNotViable() {
        let error = DeviceIOError.groupNotViable(
            group: 7, device: device, blockers: [GroupMember(address: other, driver: "snd_hda_intel")])
        let text = ErrorAdvice.message(for: error)
        #expect(text.hasPrefix(error.description))
        #expect(text.hasSuffix("; bind the others too: `msictl bind 0000:00:04.0 vfio-pci`"))
        #expect(text.contains("0000:00:04.0 is bound to snd_hda_intel"))
    }

    @Test("no UIO device: bind it to uio_pci_generic; a busy device: --force")
    func uioAndBusy() {
        #expect(ErrorAdvice.advice(for: DeviceIOError.uioNotFound(device)) == "bind it with `msictl bind 0000:00:03.0 uio_pci_generic`")
        #expect(ErrorAdvice.advice(for: BindError.inUse(device, driver: "nvme", reasons: [])) == "pass --force to take it anyway")
        #expect(ErrorAdvice.advice(for: DeviceIOError.groupBusy(group: 1)) == nil)
    }
}
