import CIFAR
import Layers
import Models
import TensorCore

/// Loss, top-1 error and per-class accuracy on a set of images (inference mode: running
/// batch-norm statistics, no augmentation). Holds counts, so evaluations of disjoint parts of a
/// set (one per worker) merge into the evaluation of the whole.
public struct Evaluation: Sendable, Codable, Equatable {
    public var images = 0
    /// Per-image losses summed in fixed point (exact across shards).
    public var lossSumFixed: Int64 = 0
    public var wrong = 0
    /// Over images whose index in the set is below 1,000 (the exact part of the shared test set).
    public var imagesFirst1000 = 0
    public var wrongFirst1000 = 0
    /// confusion[true][predicted]
    public var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)

    public init() {}

    public var loss: Double { FixedPoint.decode(lossSumFixed, scale: FixedPoint.statisticsScale) / Double(max(images, 1)) }
    /// Top-1 error in percent.
    public var error: Double { 100 * Double(wrong) / Double(max(images, 1)) }
    public var errorFirst1000: Double { 100 * Double(wrongFirst1000) / Double(max(imagesFirst1000, 1)) }
    public var perClassAccuracy: [Double] {
        confusion.enumerated().map { c, row in
            let total = row.reduce(0, +)
            return total == 0 ? 0 : 100 * Double(row[c]) / Double(total)
        }
    }

    public func merged(with other: Evaluation) -> Evaluation {
        var sum = self
        sum.images += other.images
        sum.lossSumFixed &+= other.lossSumFixed
        sum.wrong += other.wrong
        sum.imagesFirst1000 += other.imagesFirst1000
        sum.wrongFirst1000 += other.wrongFirst1000
        for t in 0..<10 { for p in 0..<10 { sum.confusion[t][p] += other.confusion[t][p] } }
        return sum
    }
}

public struct Evaluator {
    public let assembler: BatchAssembler
    public let batchSize: Int
    public let pool: ComputePool
    private var criterion = SoftmaxCrossEntropy()
    private var input: Tensor?

    public init(assembler: BatchAssembler, batchSize: Int, pool: ComputePool) {
        self.assembler = assembler
        self.batchSize = batchSize
        self.pool = pool
    }

    /// Evaluates images `range` of `set` (default: all).
    public mutating func evaluate(_ model: ResNet, on set: LabeledImages, range: Range<Int>? = nil) throws -> Evaluation {
        let range = range ?? 0..<set.count
        var result = Evaluation()
        var start = range.lowerBound
        while start < range.upperBound {
            let indices = Array(start..<min(range.upperBound, start + batchSize))
            let batch = Tensor.reusing(input, shape: [indices.count, 32, 32, 3])
            input = batch
            assembler.fill(batch, from: set, indices: indices, augmentations: nil, pool: pool)
            let logits = try model.forward(batch, mode: .inference)
            let labels = indices.map { Int(set.labels[$0]) }
            result.lossSumFixed &+= criterion.evaluate(logits: logits, labels: labels, computeGradient: false).0.lossSumFixed
            for (row, index) in indices.enumerated() {
                let scores = logits.pointer + row * 10
                var predicted = 0
                for c in 1..<10 where scores[c] > scores[predicted] { predicted = c }
                result.confusion[labels[row]][predicted] += 1
                result.images += 1
                if index < 1000 { result.imagesFirst1000 += 1 }
                if predicted != labels[row] {
                    result.wrong += 1
                    if index < 1000 { result.wrongFirst1000 += 1 }
                }
            }
            start += batchSize
        }
        return result
    }
}
