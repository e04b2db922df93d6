/// Exact accumulation: per-image contributions are rounded once to fixed point and summed as
/// integers. Integer addition is associative, so the sum is the same for any thread count, any
/// split of the batch over workers and any reduction order: this is what makes distributed
/// training bitwise equal to single-process training.
public enum FixedPoint {
    /// Gradients: resolution 2^-36 (1.5e-11), range +-2^15 per image contribution.
    public static let gradientScale: Double = 68_719_476_736           // 2^36
    /// Batch-norm sums: resolution 2^-20 (1e-6), range +-2^43 per image.
    public static let statisticsScale: Double = 1_048_576              // 2^20

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
}
