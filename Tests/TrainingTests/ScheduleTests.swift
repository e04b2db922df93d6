import Layers
import Testing
import Training

@Suite struct ScheduleTests {
    @Test func paperSchedule() {
        let c = TrainingConfiguration()
        #expect(c.learningRate(atStep: 0) == 0.1)
        #expect(c.learningRate(atStep: 31_999) == 0.1)
        #expect(abs(c.learningRate(atStep: 32_000) - 0.01) < 1e-9)
        #expect(abs(c.learningRate(atStep: 48_000) - 0.001) < 1e-9)
        #expect(c.iterations == 64_000 && c.batchSize == 128 && c.momentum == 0.9 && c.weightDecay == 1e-4)
        #expect(c.evaluationInterval(trainingImages: 50_000) == 391)
        #expect(c.validationErrors().isEmpty)
    }

    @Test func warmup() {
        var c = TrainingConfiguration()
        c.warmupIterations = 400
        #expect(c.learningRate(atStep: 399) == 0.01)
        #expect(c.learningRate(atStep: 400) == 0.1)
    }

    @Test func invalidValuesAreNamed() {
        var c = TrainingConfiguration()
        c.depth = 21
        c.milestones = [48_000, 32_000]
        c.batchSize = 0
        let errors = c.validationErrors().joined(separator: "\n")
        #expect(errors.contains("--depth 21") && errors.contains("--milestones") && errors.contains("--batch-size"))
    }

    /// Values that pass the form checks but could never allocate are refused with the limit.
    @Test func absurdSizesAreBounded() {
        var c = TrainingConfiguration()
        c.depth = 6 * 100_000 + 2
        c.batchSize = 1 << 40
        let errors = c.validationErrors().joined(separator: "\n")
        #expect(errors.contains("--depth must be at most 1202"), "\(errors)")
        #expect(errors.contains("--batch-size must be 1-2048"), "\(errors)")
        c.depth = 1202
        c.batchSize = 2048
        #expect(c.validationErrors().isEmpty)
    }

    @Test func sgdUpdateMatchesPyTorchFormula() {
        // w = 1, g = 0.5, wd = 0.1, m = 0.9, lr = 0.2, two steps by hand:
        // v1 = 0.5 + 0.1 = 0.6, w1 = 1 - 0.12 = 0.88; v2 = 0.54 + 0.5 + 0.088 = 1.128, w2 = 0.88 - 0.2256 = 0.6544
        let store = ParameterStore()
        _ = store.reserve("w", count: 33, initializer: .constant(1))
        store.finalize(seed: 0)
        let optimizer = SGD(parameterCount: 33, momentum: 0.9, weightDecay: 0.1)
        for _ in 0..<2 {
            for i in 0..<33 { store.gradients[i] = 0.5 }
            optimizer.step(store, learningRate: 0.2, pool: .serial)
        }
        // Every element, including the scalar tail past the last full vector of 16.
        for i in 0..<33 { #expect(abs(store.values[i] - 0.6544) < 1e-6) }
    }
}
