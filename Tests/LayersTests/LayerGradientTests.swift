import Layers
import TensorCore
import Testing

@Suite struct LayerGradientTests {
    @Test(arguments: [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 64, 2)])
    func convolution(inChannels: Int, outChannels: Int, stride: Int) {
        let store = ParameterStore()
        let conv = Convolution("c", inChannels: inChannels, outChannels: outChannels, stride: stride,
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
        let block = ResidualBlock("b", inChannels: inChannels, outChannels: outChannels, stride: stride, residual: residual,
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
            let saved = logits.pointer[i]
            logits.pointer[i] = saved + 1e-2
            let plus = loss.evaluate(logits: logits, labels: labels, computeGradient: false).0.loss
            logits.pointer[i] = saved - 1e-2
            let minus = loss.evaluate(logits: logits, labels: labels, computeGradient: false).0.loss
            logits.pointer[i] = saved
            let numeric = (plus - minus) / 2e-2
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
