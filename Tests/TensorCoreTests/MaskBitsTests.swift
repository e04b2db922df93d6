import TensorCore
import Testing

/// The ReLU mask kept as bits must zero exactly the lanes a Float comparison `<= 0` zeroes.
struct MaskBitsTests {
    @Test func bitsMarkTheLanesAtOrBelowZeroAndZeroThemExactly() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<200 {
            var v = SIMD16<Float>()
            for i in 0..<16 {
                let r = rng.next() % 5
                v[i] = r == 0 ? 0 : r == 1 ? -0.0 : Float(rng.nextUnitFloat() * 2 - 1) * (r == 2 ? 1e-30 : 3)
            }
            let bits = zeroedBits16(v)
            let gradient = SIMD16<Float>((0..<16).map { Float($0) - 7.5 })
            let masked = zeroingLanes16(gradient, bits: bits)
            for i in 0..<16 {
                #expect((bits >> i) & 1 == (v[i] <= 0 ? 1 : 0), "lane \(i) of \(v)")
                #expect(masked[i].bitPattern == (v[i] <= 0 ? Float(0).bitPattern : gradient[i].bitPattern))
            }
        }
    }
}
