import TensorCore
import Testing

@Suite struct SplitMix64Tests {
    @Test func knownFirstOutputs() {
        // Reference values of SplitMix64 seeded with 0 (as in the original C implementation).
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func streamsDifferByKey() {
        var a = SplitMix64.stream(1, 2, 3), b = SplitMix64.stream(1, 2, 4), c = SplitMix64.stream(1, 2, 3)
        let va = a.next(), vb = b.next(), vc = c.next()
        #expect(va != vb)
        #expect(va == vc)
    }

    @Test func normalSamplesHaveUnitVariance() {
        var rng = SplitMix64(seed: 42)
        let samples = (0..<20000).map { _ in rng.nextNormal() }
        let mean = samples.reduce(0, +) / Double(samples.count)
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples.count)
        #expect(abs(mean) < 0.03)
        #expect(abs(variance - 1) < 0.05)
    }
}
