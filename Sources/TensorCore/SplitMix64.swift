import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough for shuffles,
/// augmentation and initialization. A value type, so its state is trivially saved.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 finalizer; also used to derive independent streams from keys.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for the stream named by `keys` (e.g. seed, epoch, image index).
    public static func stream(_ keys: UInt64...) -> SplitMix64 {
        var h: UInt64 = 0x6A09_E667_F3BC_C909
        for key in keys { h = mix(h ^ mix(key &+ 0x9E37_79B9_7F4A_7C15)) }
        return SplitMix64(seed: h)
    }

    /// Uniform in [0, 1) with 24 bits, exact in Float.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal sample (Box-Muller, one of the pair).
    public mutating func nextNormal() -> Double {
        let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
