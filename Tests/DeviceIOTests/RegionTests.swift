// Memory config space and mapped regions: anonymous memory, plain files (the same mmap path
// as resourceN and UIO), truncation under a mapping, device-gone detection.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import DeviceIO
import MSIShimCore

@Test func memoryConfigSpaceReadsWritesAndChecks() throws {
    let cfg = MemoryConfigSpace(name: "mem", bytes: ConfigBuilder().bytes)
    #expect(cfg.isWritable && cfg.readableSize == 256)
    #expect(try cfg.read16(PCIReg.vendorID) == 0x1af4)
    try cfg.write32(0x40, 0xdead_beef)
    #expect(try cfg.read32(0x40) == 0xdead_beef)
    #expect(try cfg.read8(0x43) == 0xde)
    try cfg.write16(0x42, 0x1234)
    #expect(try cfg.read32(0x40) == 0x1234_beef)
    #expect(throws: DeviceAccessError.outOfBounds("mem", offset: 254, width: 4, size: 256)) { try cfg.read32(254) }
    #expect(throws: DeviceAccessError.unaligned("mem", offset: 0x41, width: 2)) { try cfg.write16(0x41, 0) }
    let ro = MemoryConfigSpace(name: "ro", bytes: [UInt8](repeating: 0, count: 64), writable: false)
    #expect(throws: DeviceAccessError.self) { try ro.write8(0, 1) }
    #expect(cfg.snapshot().bytes == cfg.bytes)
}

@Test func anonymousRegionIsBoundsCheckedAndAligned() throws {
    let r = try MappedRegion.anonymous(name: "anon", size: 0x100)
    #expect(r.isWritable && r.size == 0x100 && !r.isTruncationGuarded)
    try r.write32(0x10, 0x1122_3344)
    try r.write64(0x18, 0x0102_0304_0506_0708)
    #expect(try r.read32(0x10) == 0x1122_3344)
    #expect(try r.read64(0x18) == 0x0102_0304_0506_0708)
    #expect(try r.read32(0x1C) == 0x0102_0304)
    #expect(throws: DeviceAccessError.outOfBounds("anon", offset: 0x100, width: 4, size: 0x100)) { try r.read32(0x100) }
    #expect(throws: DeviceAccessError.outOfBounds("anon", offset: 0xFC, width: 8, size: 0x100)) { try r.read64(0xFC) }
    #expect(throws: DeviceAccessError.outOfBounds("anon", offset: -4, width: 4, size: 0x100)) { try r.read32(-4) }
    #expect(throws: DeviceAccessError.unaligned("anon", offset: 2, width: 4)) { try r.read32(2) }
    #expect(throws: DeviceAccessError.unaligned("anon", offset: 4, width: 8)) { try r.write64(4, 0) }
}

@Test func existentialRegionBehavesLikeConcrete() throws {
    let r: any MMIORegion = try MappedRegion.anonymous(name: "anon", size: 64)
    try r.write32(8, 7)
    #expect(try r.read32(8) == 7)
    #expect(throws: DeviceAccessError.self) { try r.read32(62) }
}

@Test func fileRegionMapsSharedAndWritesReachTheFile() throws {
    let dir = TempDir()
    let path = dir.path + "/bar.bin"
    var bytes = [UInt8](repeating: 0, count: 8192)
    bytes.put32(0xcafe_f00d, at: 0x1004)
    writeBytes(path, bytes)
    // A window not starting on a page: the mapping starts at the page below.
    let r = try MappedRegion.file(path: path, offset: 0x1000, length: 0x100, writable: true)
    #expect(r.isTruncationGuarded && r.size == 0x100)
    #expect(try r.read32(4) == 0xcafe_f00d)
    try r.write32(8, 0x0bad_cafe)
    #expect(fileBytes(path).u32(at: 0x1008) == 0x0bad_cafe)
    let odd = try MappedRegion.file(path: path, offset: 0x1004, length: 8, writable: false)
    #expect(try odd.read32(0) == 0xcafe_f00d)
    #expect(throws: DeviceAccessError.notWritable(odd.name, reason: "the file was opened read-only")) {
        try odd.write32(0, 1)
    }
}

@Test func truncatedFileUnderMappingThrowsInsteadOfSIGBUS() throws {
    let dir = TempDir()
    let path = dir.path + "/shrinks.bin"
    writeBytes(path, [UInt8](repeating: 0xAB, count: 3 * 4096))
    let r = try MappedRegion.file(path: path, writable: true)
    #expect(try r.read32(2 * 4096 + 16) == 0xABAB_ABAB)
    #expect(truncate(path, 4096) == 0)
    // Past the new end: would be SIGBUS without the guard.
    #expect(throws: DeviceAccessError.truncated(r.name, offset: 2 * 4096 + 16, size: 4096)) {
        try r.read32(2 * 4096 + 16)
    }
    #expect(throws: DeviceAccessError.truncated(r.name, offset: 4096, size: 4096)) { try r.write64(4096, 1) }
    // Still inside: fine.
    #expect(try r.read32(4092) == 0xABAB_ABAB)
    #expect(truncate(path, 0) == 0)
    #expect(throws: DeviceAccessError.self) { try r.read32(0) }
}

@Test func mappingPastTheEndOfAFileIsRefused() {
    let dir = TempDir()
    let path = dir.path + "/small.bin"
    writeBytes(path, [UInt8](repeating: 0, count: 100))
    #expect(throws: DeviceAccessError.self) { try MappedRegion.file(path: path, offset: 0, length: 4096, writable: false) }
    #expect(throws: DeviceAccessError.self) { try MappedRegion.file(path: dir.path + "/missing", writable: false) }
}

@Test func allOnesReadsAskThePresenceProbe() throws {
    let anon = try MappedRegion.anonymous(name: "gone", size: 64)
    let gone = MappedRegion(
        name: "gone", base: anon.unsafeBaseAddress, size: 64, writeRefusal: nil, owner: nil,
        presence: DevicePresence { false })
    try gone.write32(0, 0x1234)
    #expect(try gone.read32(0) == 0x1234)
    try gone.write32(4, 0xFFFF_FFFF)
    #expect(throws: DeviceAccessError.deviceGone("gone")) { try gone.read32(4) }
    let present = MappedRegion(
        name: "here", base: anon.unsafeBaseAddress, size: 64, writeRefusal: nil, owner: nil,
        presence: DevicePresence { true })
    #expect(try present.read32(4) == 0xFFFF_FFFF)  // a real all-ones register
    let cfg = MemoryConfigSpace(name: "c", bytes: [UInt8](repeating: 0xFF, count: 64))
    #expect(!DevicePresence.vendorID(of: cfg).isPresent())
}

@Test func mmapFailureIsReported() {
    let dir = TempDir()
    let path = dir.path + "/f.bin"
    writeBytes(path, [UInt8](repeating: 0, count: 4096))
    let failing = FailingOpens(base: LinuxSystemCalls(), failures: ["mmap": EPERM])
    #expect(throws: DeviceAccessError.system("\(path) (file)", operation: "mmap of 4096 bytes at file offset 0x0", errno: EPERM)) {
        try MappedRegion.file(path: path, writable: false, syscalls: failing)
    }
}

@Test func blockReadsCheckOnceAndStillGuard() throws {
    let r = try MappedRegion.anonymous(name: "blk", size: 64)
    for i in 0..<16 { try r.write32(4 * i, UInt32(i) | 0xA0_0000) }
    let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 4)
    defer { out.deallocate() }
    try r.readDwords(8, into: out)
    #expect(Array(out) == [0xA0_0002, 0xA0_0003, 0xA0_0004, 0xA0_0005])
    #expect(throws: DeviceAccessError.outOfBounds("blk", offset: 64, width: 4, size: 64)) { try r.readDwords(52, into: out) }
    #expect(throws: DeviceAccessError.unaligned("blk", offset: 2, width: 4)) { try r.readDwords(2, into: out) }
    // A block of all-ones from a vanished device.
    let gone = MappedRegion(
        name: "gone", base: r.unsafeBaseAddress, size: 64, writeRefusal: nil, owner: nil, presence: DevicePresence { false })
    for i in 0..<4 { try gone.write32(4 * i, .max) }
    #expect(throws: DeviceAccessError.deviceGone("gone")) { try gone.readDwords(0, into: out) }
    try gone.write32(0, 0)
    try gone.readDwords(0, into: out)  // one real value: the device answered
    // A truncated file takes the per-dword path and reports the truncation.
    let dir = TempDir()
    writeBytes(dir.path + "/t.bin", [UInt8](repeating: 1, count: 8192))
    let f = try MappedRegion.file(path: dir.path + "/t.bin", writable: false)
    try f.readDwords(4096, into: out)
    #expect(out[0] == 0x0101_0101)
    #expect(truncate(dir.path + "/t.bin", 4096) == 0)
    #expect(throws: DeviceAccessError.truncated(f.name, offset: 4096, size: 4096)) { try f.readDwords(4096, into: out) }
}
