import CIFAR
import Foundation
import TensorCore
@_exported import TestSupport
import Training

/// Random images with labels: enough to exercise the whole training loop quickly.
func syntheticData(train: Int = 256, test: Int = 64, seed: UInt64 = 1) -> CIFAR10 {
    var rng = SplitMix64(seed: seed)
    func images(_ count: Int) -> LabeledImages {
        LabeledImages(
            pixels: (0..<(count * 3072)).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            labels: (0..<count).map { _ in UInt8(rng.next() % 10) })
    }
    return CIFAR10(train: images(train), validation: nil, test: images(test))
}

func smallConfiguration(iterations: Int) -> TrainingConfiguration {
    var c = TrainingConfiguration()
    c.depth = 8
    c.batchSize = 16
    c.iterations = iterations
    c.milestones = [6, 9]  // cross a learning-rate step inside the run
    c.checkpointEvery = 5
    c.evalEvery = 4
    c.logEvery = 2
    c.evalBatchSize = 32
    c.seed = 7
    return c
}
