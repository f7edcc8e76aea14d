// The `ntb` and `affinity` mock commands end to end: the NTB peer's write reaches the handler
// through the platform, an affinity move sends the next fire to the new CPU with no more
// accesses than the kernel makes, and every refusal is one error that changes nothing.
import Testing
import MSIShimCore
import MSIModel
import PCIAccess
@testable import MockDevice
@testable import MockHarness

/// Runs one line, returning the error instead of failing.
private func attempt(_ s: MockSession, _ line: String) -> Result<JSONValue, MockCommandError> {
    guard let parsed = parseMockScript(line).first, case .success(let command) = parsed.command else {
        return .failure(MockCommandError(.EINVAL, "unparsable: \(line)"))
    }
    return Result { () throws(MockCommandError) in try s.run(command) }
}

private func errno(_ r: Result<JSONValue, MockCommandError>) -> KernelErrno? {
    if case .failure(let e) = r { return e.errno }
    return nil
}

@Test("ntb request / trigger / free: the peer's write of what was published runs the handler; free stops it")
func ntbEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, """
        enable msix 1 4
        ntb request
        ntb trigger 0
        ntb request
        """)
    guard case .int(let virq)? = r[1]["virq"], case .int(let offset)? = r[1]["offset"], case .int(let data)? = r[1]["data"] else {
        Issue.record("ntb request gave \(r[1])")
        return
    }
    #expect(r[1]["index"] == .int(0))
    let desc = try #require(s.model.descriptor(index: 0))
    let window = try #require(s.ntbClient?.window)
    #expect(UInt64(offset) == desc.message.address - window.base && UInt32(data) == desc.message.data)
    #expect(delivered(r[2]) == virq && s.handlerCounts[virq] == 1)
    #expect(r[3]["index"] == .int(1))
    let freed = try s.run(.ntb(.free(index: 0)))
    #expect(freed["freed"] == .int(virq))
    #expect(errno(attempt(s, "ntb trigger 0")) == .EINVAL)
    #expect(s.platform.irq(virq)?.isRequested == false)
}

@Test("ntb bad input: trigger of an index never published (EINVAL), an offset outside the window (EFAULT); the script goes on, nothing changes")
func ntbRefusals() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    try run(s, "enable msix 1 2\nntb request")
    let matrix = s.platform.vectorMatrix
    let descriptors = s.model.descriptors()
    let counts = s.handlerCounts
    #expect(errno(attempt(s, "ntb trigger 1")) == .EINVAL)
    #expect(errno(attempt(s, "ntb trigger 0 offset=0x100000")) == .EFAULT)
    #expect(errno(attempt(s, "ntb trigger 0 offset=0x2")) == .EFAULT)
    #expect(errno(attempt(s, "ntb free 1")) == .EINVAL)
    #expect(s.platform.vectorMatrix == matrix && s.model.descriptors() == descriptors && s.handlerCounts == counts)
    // The script keeps going: a good line afterwards works.
    #expect(delivered(try s.run(.ntb(.trigger(index: 0, offset: nil, data: nil)))) != nil)
    // Parse errors are one line each.
    for bad in ["ntb", "ntb trigger", "ntb trigger x", "ntb setup junk", "ntb request 3", "ntb trigger 0 data=0x1ffffffff"] {
        guard case .failure = parseMockScript(bad).first?.command else { Issue.record("'\(bad)' parsed"); continue }
    }
}

@Test("affinity: the next fire lands on the new CPU; the accesses are the kernel's (mask, two-step rewrite, unmask)")
func affinityEndToEnd() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(cpus: 2))
    let r = try run(s, """
        enable msix 1 4
        request msix 0
        request msix 1
        counters
        affinity msix 1 0
        counters
        fire msix 1
        """)
    guard case .int(let virq)? = r[2]["virq"] else { Issue.record("no virq"); return }
    #expect(r[2]["cpu"] == .int(1) && r[4]["cpu"] == .int(0) && r[4]["virq"] == .int(virq))
    // pci_msix_mask (write + flush read), pci_write_msg_msix twice on the masked entry
    // (3 writes + 1 read each), pci_msix_unmask (1 write).
    #expect(r[5]["mmioWrites"] == .int(8) && r[5]["mmioReads"] == .int(3))
    #expect(r[6]["delivered"]?["cpu"] == .int(0) && delivered(r[6]) == virq)
    #expect(s.device.violations.isEmpty)
}

@Test("affinity bad input: managed (EPERM), CPU past the last (ERANGE), offline CPU (EINVAL); store and vector matrix unchanged")
func affinityRefusals() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(cpus: 4))
    try run(s, "enable msix 1 4\nrequest msix 0\ncpu 3 offline")
    var matrix = s.platform.vectorMatrix
    var descriptors = s.model.descriptors()
    #expect(errno(attempt(s, "affinity msix 0 4")) == .ERANGE)
    #expect(errno(attempt(s, "affinity msix 0 3")) == .EINVAL)
    #expect(errno(attempt(s, "affinity msix 7 0")) == .EINVAL)  // no interrupt at index 7
    #expect(s.platform.vectorMatrix == matrix && s.model.descriptors() == descriptors)
    let m = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(cpus: 4))
    try run(m, "enable msix 2 2 affinity\nrequest msix 0")
    matrix = m.platform.vectorMatrix
    descriptors = m.model.descriptors()
    #expect(errno(attempt(m, "affinity msix 0 1")) == .EPERM)
    #expect(m.platform.vectorMatrix == matrix && m.model.descriptors() == descriptors)
    for bad in ["affinity", "affinity msix 0", "affinity foo 0 1", "affinity msix -1 0", "cpu 1", "cpu x online"] {
        guard case .failure = parseMockScript(bad).first?.command else { Issue.record("'\(bad)' parsed"); continue }
    }
}

@Test("an NTB interrupt moved by affinity is re-published; under remapping the message does not change and nothing is re-published")
func ntbFollowsAffinity() throws {
    let s = try MockSession(device: try MockPCIDevice.builtIn())
    let r = try run(s, "enable msix 1 4\nntb setup\nntb request\naffinity msix 0 0\nntb trigger 0")
    #expect(r[3]["ntb"]?["republished"] == .int(1) && r[3]["ntb"]?["stale"] == nil)  // same vector number: one direct rewrite
    #expect(r[4]["delivered"]?["cpu"] == .int(0))
    let ir = try MockSession(device: try MockPCIDevice.builtIn(), options: MockSessionOptions(remap: true))
    let q = try run(ir, "enable msix 1 4\nntb request\naffinity msix 0 0\nntb trigger 0")
    #expect(q[2]["ntb"]?["republished"] == .int(0))
    #expect(q[3]["delivered"]?["cpu"] == .int(0))
}
