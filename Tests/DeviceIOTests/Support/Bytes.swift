// Little-endian fields on byte arrays for the tests and the fake kernel. A field outside the
// array is a broken test, so it traps here (the library's own accessors throw instead).

extension Array where Element == UInt8 {
    func u16(at i: Int) -> UInt16 {
        precondition(i >= 0 && i + 2 <= count, "field at \(i) outside \(count) bytes")
        return UInt16(self[i]) | UInt16(self[i + 1]) << 8
    }

    func u32(at i: Int) -> UInt32 {
        precondition(i >= 0 && i + 4 <= count, "field at \(i) outside \(count) bytes")
        return UInt32(u16(at: i)) | UInt32(u16(at: i + 2)) << 16
    }

    func u64(at i: Int) -> UInt64 { UInt64(u32(at: i)) | UInt64(u32(at: i + 4)) << 32 }

    mutating func put16(_ v: UInt16, at i: Int) {
        precondition(i >= 0 && i + 2 <= count, "field at \(i) outside \(count) bytes")
        self[i] = UInt8(truncatingIfNeeded: v)
        self[i + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    mutating func put32(_ v: UInt32, at i: Int) {
        put16(UInt16(truncatingIfNeeded: v), at: i)
        put16(UInt16(truncatingIfNeeded: v >> 16), at: i + 2)
    }

    mutating func put64(_ v: UInt64, at i: Int) {
        put32(UInt32(truncatingIfNeeded: v), at: i)
        put32(UInt32(truncatingIfNeeded: v >> 32), at: i + 4)
    }
}
