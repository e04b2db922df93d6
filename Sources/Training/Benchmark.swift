import Layers
import Models
import TensorCore
import Timing

/// Throughput of the engine on synthetic data: what `resnet-ddp bench` prints.
public struct Benchmark {
    public enum Kind: String, Sendable { case training = "train", inference = "inference" }

    public struct Result: Sendable {
        public let model: String
        public let kind: Kind
        public let threads: Int
        public let batch: Int
        public let medianSeconds: Double
        public let imagesPerSecond: Double
        public let gflops: Double
        /// Per-operation time over the timed steps, when profiled.
        public let profile: [(name: String, entry: Profiler.Entry)]
        public let timedSteps: Int
    }

    /// Median step time over `steps` timed steps after `warmup` untimed ones.
    public static func run(
        _ architecture: Architecture, kind: Kind, threads: Int, batch: Int,
        warmup: Int, steps: Int, profile: Bool = false
    ) throws -> Result {
        let profiler = profile ? Profiler() : nil
        let pool = ComputePool(threads: threads, profiler: profiler)
        let model = ResNet(architecture, seed: 1, pool: pool)
        let optimizer = SGD(parameterCount: model.store.parameterCount, momentum: 0.9, weightDecay: 1e-4)
        var rng = SplitMix64(seed: 2)
        let images = Tensor(shape: [batch, 32, 32, 3], values: (0..<(batch * 3072)).map { _ in rng.nextUnitFloat() - 0.5 })
        let labels = (0..<batch).map { $0 % 10 }
        var loss = SoftmaxCrossEntropy()
        var times = [Double]()
        for i in 0..<(warmup + steps) {
            if i == warmup { profiler?.reset() }
            let start = monotonicSeconds()
            switch kind {
            case .training:
                model.store.zeroGradients()
                let logits = try model.forward(images, mode: .training)
                let (_, gradient) = loss.evaluate(logits: logits, labels: labels, computeGradient: true)
                try model.backward(gradient!)
                pool.measure("gradients + SGD update", bytes: 4 * 5 * Double(model.store.parameterCount)) {
                    model.store.resolveGradients()
                    optimizer.step(model.store, learningRate: 0.01, pool: pool)
                }
            case .inference:
                let logits = try model.forward(images, mode: .inference)
                _ = loss.evaluate(logits: logits, labels: labels, computeGradient: false)
            }
            if i >= warmup { times.append(monotonicSeconds() - start) }
        }
        let seconds = median(times)
        // Training: forward + backward-data + backward-weights = 3x the forward MACs, 2 FLOP each.
        let flopsPerImage = Double(architecture.macsPerImage) * 2 * (kind == .training ? 3 : 1)
        return Result(
            model: architecture.name, kind: kind, threads: threads, batch: batch, medianSeconds: seconds,
            imagesPerSecond: Double(batch) / seconds,
            gflops: flopsPerImage * Double(batch) / seconds / 1e9, profile: profiler?.report ?? [],
            timedSteps: steps)
    }
}
