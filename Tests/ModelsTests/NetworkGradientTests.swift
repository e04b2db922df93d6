import Layers
import Models
import TensorCore
import TestSupport
import Testing

/// The whole network's parameter gradient (forward, loss, backward) against central finite
/// differences of the mean cross-entropy on a few coordinates of every kind of layer.
@Suite struct NetworkGradientTests {
    @Test(arguments: [true, false])
    func resNet8MatchesFiniteDifferences(residual: Bool) throws {
        let model = ResNet(try Architecture(depth: 8, residual: residual), seed: 3, pool: ComputePool(threads: 2))
        var rng = SplitMix64(seed: 9)
        let batch = 6
        let images = Tensor(shape: [batch, 32, 32, 3], values: (0..<(batch * 3072)).map { _ in rng.nextUnitFloat() * 2 - 1 })
        let labels = (0..<batch).map { ($0 * 7) % 10 }
        var criterion = SoftmaxCrossEntropy()
        func loss() -> Double {
            criterion.evaluate(logits: try! model.forward(images, mode: .training), labels: labels, computeGradient: false).0.loss
        }
        model.store.zeroGradients()
        let (_, dLogits) = criterion.evaluate(logits: try model.forward(images, mode: .training), labels: labels, computeGradient: true)
        try model.backward(dLogits!)
        model.store.resolveGradients()
        let analytic = Array(model.store.gradients)

        var failures: [String] = []
        for view in model.store.views where view.kind == .parameter {
            for _ in 0..<2 {
                let i = view.offset + Int(rng.next() % UInt64(view.count))
                let pointer = model.store.values.baseAddress! + i
                func numeric(_ step: Float) -> Double { centralDifference(at: pointer, step: step, loss) }
                func close(_ n: Double) -> Bool { abs(Double(analytic[i]) - n) <= 2e-3 + 3e-2 * abs(n) }
                let coarse = numeric(1e-3)
                if !close(coarse) && !close(numeric(2.5e-4)) {
                    failures.append("\(view.name)[\(i - view.offset)]: analytic \(analytic[i]), numeric \(coarse)")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}
