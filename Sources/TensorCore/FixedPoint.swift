import CMaskBits

/// Exact accumulation: per-image contributions are rounded once to fixed point and summed as
/// integers. Integer addition is associative, so the sum is the same for any thread count, any
/// split of the batch over workers and any reduction order: this is what makes distributed
/// training bitwise equal to single-process training.
public enum FixedPoint {
    /// Gradients: resolution 2^-32 (2.3e-10), range +-2^18 per image contribution.
    public static let gradientScale: Double = 4_294_967_296  // 2^32
    /// Batch-norm sums and losses: resolution 2^-20 (1e-6); wide values (below) reach 2^82.
    public static let statisticsScale: Double = 1_048_576  // 2^20
    /// Wide values are split as hi * 2^40 + lo with 0 <= lo < 2^40, so that hi's and lo's of up
    /// to 2^23 values can be summed separately in Int64 (exactly, in any order).
    public static let wideSplit: Double = 1_099_511_627_776  // 2^40

    /// target[0..<16] += round(v * gradientScale), each product clamped to +-2^50 (saturate, never
    /// wrap: 2^50 * 2^12 < 2^63), rounding half to even. The scale is a power of two,
    /// so the Float product is exact and this equals rounding it in Double, in half the vector
    /// operations (`rddp_add_fixed_point16`).
    @inlinable @inline(__always)
    public static func accumulate(_ v: SIMD16<Float>, into target: UnsafeMutablePointer<Int64>) {
        rddp_add_fixed_point16(v, Float(gradientScale), 1_125_899_906_842_624, target)
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
