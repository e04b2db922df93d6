/// Exact accumulation: per-image contributions are rounded once to fixed point and summed as
/// integers. Integer addition is associative, so the sum is the same for any thread count, any
/// split of the batch over workers and any reduction order: this is what makes distributed
/// training bitwise equal to single-process training.
public enum FixedPoint {
    /// Gradients: resolution 2^-32 (2.3e-10), range +-2^18 per image contribution.
    public static let gradientScale: Double = 4_294_967_296            // 2^32
    /// Batch-norm sums and losses: resolution 2^-20 (1e-6); wide values (below) reach 2^82.
    public static let statisticsScale: Double = 1_048_576              // 2^20
    /// Wide values are split as hi * 2^40 + lo with 0 <= lo < 2^40, so that hi's and lo's of up
    /// to 2^23 values can be summed separately in Int64 (exactly, in any order).
    public static let wideSplit: Double = 1_099_511_627_776            // 2^40

    /// Round-to-nearest via the 1.5 * 2^52 trick: exact for |x| < 2^51, vectorizes (Swift's
    /// generic SIMD float-to-integer conversion does not).
    @inlinable @inline(__always)
    static func round8(_ x: SIMD8<Double>) -> SIMD8<Int64> {
        let limit = SIMD8<Double>(repeating: 1_125_899_906_842_624)   // 2^50: saturate, never wrap
        let magic = SIMD8<Double>(repeating: 6_755_399_441_055_744)   // 1.5 * 2^52
        var clamped = x
        // Element-wise: the generic pointwiseMin/Max are not inlined for SIMD8<Double>.
        for i in 0..<8 { clamped[i] = Swift.min(Swift.max(x[i], -limit[i]), limit[i]) }
        return unsafeBitCast(clamped + magic, to: SIMD8<Int64>.self) &- SIMD8<Int64>(repeating: 0x4338_0000_0000_0000)
    }

    /// target[0..<16] += round(v * gradientScale)
    @inlinable @inline(__always)
    public static func accumulate(_ v: SIMD16<Float>, into target: UnsafeMutablePointer<Int64>) {
        let scale = SIMD8<Double>(repeating: gradientScale)
        let raw = UnsafeMutableRawPointer(target)
        let low = round8(SIMD8<Double>(v.lowHalf) * scale), high = round8(SIMD8<Double>(v.highHalf) * scale)
        raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Int64>.self) &+ low, as: SIMD8<Int64>.self)
        raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Int64>.self) &+ high, toByteOffset: 64,
                       as: SIMD8<Int64>.self)
    }

    /// round(x * scale), saturating.
    @inlinable @inline(__always)
    public static func encode(_ x: Double, scale: Double) -> Int64 {
        let y = (x * scale).rounded()
        if !(y.magnitude < 9.2e18) { return y > 0 ? .max : (y < 0 ? .min : 0) }
        return Int64(y)
    }

    @inlinable @inline(__always)
    public static func decode(_ x: Int64, scale: Double) -> Double { Double(x) / scale }

    /// round(x * scale) as (hi, lo): x = (hi * 2^40 + lo) / scale. Saturates beyond 2^102;
    /// not-a-number gives (0, 0): callers check finiteness where it matters.
    @inlinable
    public static func encodeWide(_ x: Double, scale: Double) -> (hi: Int64, lo: Int64) {
        var y = (x * scale).rounded()
        guard !y.isNaN else { return (0, 0) }
        y = Swift.min(Swift.max(y, -0x1p102), 0x1p102)
        let hi = (y / wideSplit).rounded(.down)
        return (Int64(hi), Int64(y - hi * wideSplit))
    }

    @inlinable
    public static func decodeWide(hi: Int64, lo: Int64, scale: Double) -> Double {
        (Double(hi) * wideSplit + Double(lo)) / scale
    }
}
