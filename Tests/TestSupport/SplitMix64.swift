// The seeded generator every randomized test uses, so a failing case can be replayed from its seed.

/// SplitMix64 (Steele, Lea and Flood): a small, fast generator whose whole state is one seed.
/// Random tests seed it per case or per thread and print the seed when they fail.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The current state; the next value is derived from it after it advances.
    public var state: UInt64

    /// A generator that replays the same sequence for the same `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<n` (`n` > 0); the small modulo bias does not matter to a test.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
