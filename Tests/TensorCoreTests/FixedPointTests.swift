import TensorCore
import Testing

/// The vector fixed-point rounding must give, lane by lane, the integers of the scalar definition:
/// the product with 2^32 in Double, clamped to +-2^50, rounded half to even.
struct FixedPointTests {
    static func reference(_ v: Float) -> Int64 {
        let limit = 1_125_899_906_842_624.0
        let product = min(max(Double(v) * FixedPoint.gradientScale, -limit), limit)
        return Int64(product.rounded(.toNearestOrEven))
    }

    @Test func vectorRoundingMatchesTheScalarDefinition() {
        var rng = SplitMix64(seed: 11)
        let ulp = Float(1) / Float(FixedPoint.gradientScale)
        for round in 0..<500 {
            var v = SIMD16<Float>()
            for i in 0..<16 {
                let magnitude = rng.nextUnitFloat()
                let sign: Float = rng.next() % 2 == 0 ? 1 : -1
                switch rng.next() % 8 {
                case 0: v[i] = sign * (Float(rng.next() % 1000) + 0.5) * ulp  // ties at the resolution
                case 1: v[i] = sign * (Float(rng.next() % 1000) + 1.5) * ulp
                case 2: v[i] = sign * magnitude * 1e6  // beyond +-2^18: clamped
                case 3: v[i] = sign * magnitude * 1e-12  // below the resolution
                case 4: v[i] = round % 2 == 0 ? 0 : -0.0
                case 5: v[i] = sign * .leastNonzeroMagnitude
                default: v[i] = sign * magnitude * Float(1 << (rng.next() % 18))
                }
            }
            var target = (0..<16).map { _ in Int64(bitPattern: rng.next()) >> 4 }
            let before = target
            target.withUnsafeMutableBufferPointer { FixedPoint.accumulate(v, into: $0.baseAddress!) }
            for i in 0..<16 {
                #expect(target[i] == before[i] &+ Self.reference(v[i]), "lane \(i): \(v[i])")
            }
        }
    }
}
