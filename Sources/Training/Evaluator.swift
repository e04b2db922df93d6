import CIFAR
import Layers
import Models
import TensorCore

/// Loss, top-1 error and per-class accuracy of a model on a set of images (inference mode:
/// running batch-norm statistics, no augmentation).
public struct Evaluation: Sendable {
    public let images: Int
    public let loss: Double
    /// Top-1 error in percent.
    public let error: Double
    /// Top-1 error in percent on the first 1,000 images (the exact part of the shared test set).
    public let errorFirst1000: Double
    public let perClassAccuracy: [Double]
    /// confusion[true][predicted]
    public let confusion: [[Int]]
}

public struct Evaluator {
    public let assembler: BatchAssembler
    public let batchSize: Int
    public let pool: ComputePool
    private var criterion = SoftmaxCrossEntropy()

    public init(assembler: BatchAssembler, batchSize: Int, pool: ComputePool) {
        self.assembler = assembler
        self.batchSize = batchSize
        self.pool = pool
    }

    public mutating func evaluate(_ model: ResNet, on set: LabeledImages) throws -> Evaluation {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        var lossSum = 0.0, wrong = 0, wrongFirst1000 = 0
        var input: Tensor?
        var start = 0
        while start < set.count {
            let indices = Array(start..<min(set.count, start + batchSize))
            let batch = Tensor.reusing(input, shape: [indices.count, 32, 32, 3])
            input = batch
            assembler.fill(batch, from: set, indices: indices, augmentations: nil, pool: pool)
            let logits = try model.forward(batch, mode: .inference)
            let labels = indices.map { Int(set.labels[$0]) }
            lossSum += criterion.evaluate(logits: logits, labels: labels, computeGradient: false).0.loss * Double(indices.count)
            for (row, index) in indices.enumerated() {
                let scores = logits.pointer + row * 10
                var predicted = 0
                for c in 1..<10 where scores[c] > scores[predicted] { predicted = c }
                confusion[labels[row]][predicted] += 1
                if predicted != labels[row] {
                    wrong += 1
                    if index < 1000 { wrongFirst1000 += 1 }
                }
            }
            start += batchSize
        }
        let perClass = confusion.enumerated().map { c, row in
            let total = row.reduce(0, +)
            return total == 0 ? 0 : 100 * Double(row[c]) / Double(total)
        }
        let n = max(set.count, 1)
        return Evaluation(images: set.count, loss: lossSum / Double(n), error: 100 * Double(wrong) / Double(n),
                          errorFirst1000: 100 * Double(wrongFirst1000) / Double(min(n, 1000)),
                          perClassAccuracy: perClass, confusion: confusion)
    }
}
