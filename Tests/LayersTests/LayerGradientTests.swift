import Layers
import TensorCore
import TestSupport
import Testing

@Suite struct LayerGradientTests {
    @Test(arguments: [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 64, 2)])
    func convolution(inChannels: Int, outChannels: Int, stride: Int) {
        let store = ParameterStore()
        let conv = Convolution(
            "c", inChannels: inChannels, outChannels: outChannels, stride: stride,
            computesInputGradient: inChannels % 16 == 0, store: store, pool: .serial)
        store.finalize(seed: 1)
        GradientCheck(layer: conv, store: store, inputShape: [2, 6, 6, inChannels])
            .run(checkInput: inChannels % 16 == 0)
    }

    @Test(arguments: [false, true])
    func batchNorm(fusedReLU: Bool) {
        let store = ParameterStore()
        let bn = BatchNorm("bn", channels: 16, fusedReLU: fusedReLU, store: store, pool: ComputePool(threads: 2))
        store.finalize(seed: 1)
        // Non-trivial scale and shift so that the ReLU mask and the affine terms matter.
        for i in 0..<16 { store.values[i] = 0.5 + Float(i) / 16; store.values[16 + i] = Float(i % 5) * 0.1 - 0.2 }
        GradientCheck(layer: bn, store: store, inputShape: [3, 4, 4, 16], epsilon: 1e-3, atol: 5e-3).run()
    }

    @Test(arguments: [(16, 16, 1, true), (16, 32, 2, true), (32, 64, 2, true), (16, 32, 2, false)])
    func residualBlock(inChannels: Int, outChannels: Int, stride: Int, residual: Bool) {
        let store = ParameterStore()
        let block = ResidualBlock(
            "b", inChannels: inChannels, outChannels: outChannels, stride: stride, residual: residual,
            store: store, pool: ComputePool(threads: 2))
        store.finalize(seed: 3)
        GradientCheck(layer: block, store: store, inputShape: [4, 6, 6, inChannels], epsilon: 1e-3, atol: 1e-2).run()
    }

    @Test func globalAveragePool() {
        let store = ParameterStore()
        let layer = GlobalAveragePool()
        store.finalize(seed: 1)
        GradientCheck(layer: layer, store: store, inputShape: [2, 3, 3, 16]).run()
    }

    @Test func linear() {
        let store = ParameterStore()
        let layer = Linear("fc", inFeatures: 64, outFeatures: 10, store: store)
        store.finalize(seed: 1)
        GradientCheck(layer: layer, store: store, inputShape: [3, 64]).run()
    }

    @Test func softmaxCrossEntropy() {
        var rng = SplitMix64(seed: 5)
        let logits = Tensor(shape: [4, 10], values: (0..<40).map { _ in rng.nextUnitFloat() * 4 - 2 })
        let labels = [3, 0, 9, 3]
        var loss = SoftmaxCrossEntropy()
        let (_, gradient) = loss.evaluate(logits: logits, labels: labels, computeGradient: true)
        let analytic = gradient!.toArray()
        for i in 0..<40 {
            let numeric = centralDifference(at: logits.pointer + i, step: 1e-2) {
                Double(loss.evaluate(logits: logits, labels: labels, computeGradient: false).0.loss)
            }
            #expect(abs(Double(analytic[i]) - numeric) <= 1e-4, "logit \(i): \(analytic[i]) vs \(numeric)")
        }
    }

    @Test func crossEntropyValueAndAccuracy() {
        // Uniform logits: loss is log(10) and the prediction is class 0.
        let logits = Tensor(shape: [2, 10])
        var loss = SoftmaxCrossEntropy()
        let (result, _) = loss.evaluate(logits: logits, labels: [0, 5], computeGradient: false)
        #expect(abs(result.loss - 2.302585092994046) < 1e-9)
        #expect(result.correct == 1)
    }
}

@Suite struct LargeValueTests {
    /// Pre-normalization activations of 1e5 (deep plain nets reach this within a few steps at
    /// lr 0.1) must still give exact statistics: the fixed-point sums are wide enough.
    @Test func batchNormStatisticsSurviveLargeActivations() throws {
        let store = ParameterStore()
        let bn = BatchNorm("bn", channels: 16, fusedReLU: false, store: store, pool: ComputePool(threads: 2))
        store.finalize(seed: 1)
        var rng = SplitMix64(seed: 3)
        let x = Tensor(shape: [128, 8, 8, 16], values: (0..<(128 * 64 * 16)).map { _ in 1e5 + rng.nextUnitFloat() * 2e4 })
        let y = try bn.forward(x, mode: .training).toArray()
        for c in 0..<16 {
            let column = stride(from: c, to: y.count, by: 16).map { Double(y[$0]) }
            let mean = column.reduce(0, +) / Double(column.count)
            let variance = column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count)
            #expect(abs(mean) < 1e-2 && abs(variance - 1) < 1e-2, "channel \(c): mean \(mean), variance \(variance)")
        }
    }

    @Test func nonFiniteLossesAreCounted() {
        let logits = Tensor(shape: [3, 10])
        logits.pointer[5] = .nan
        logits.pointer[12] = .infinity
        var criterion = SoftmaxCrossEntropy()
        let (result, _) = criterion.evaluate(logits: logits, labels: [0, 1, 2], computeGradient: false)
        #expect(result.nonFinite == 2)
    }
}
