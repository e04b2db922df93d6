import Foundation
import TensorCore

/// Mean softmax cross-entropy over the batch, with its gradient and the number of correct
/// top-1 predictions. Computed in Double: it is tiny and this keeps it exact enough for tests.
public struct SoftmaxCrossEntropy {
    public struct Result: Sendable {
        public let loss: Double
        public let correct: Int
        /// The sum of the per-image losses in fixed point (`FixedPoint.statisticsScale`): sums of
        /// these over parts of a batch are exact, so a sharded batch reports the same loss.
        public let lossSumFixed: Int64
        /// Images whose loss is not finite (the fixed-point sum cannot carry NaN or infinity).
        public let nonFinite: Int
    }

    private var gradient: Tensor?

    public init() {}

    /// Loss and correct count; writes d(loss)/d(logits) into the returned tensor when asked.
    /// The gradient is that of the loss summed over these images divided by `batchSize` (default:
    /// these images): a worker holding part of a batch passes the whole batch's size.
    public mutating func evaluate(
        logits: Tensor, labels: [Int], computeGradient: Bool,
        batchSize: Int? = nil
    ) -> (Result, Tensor?) {
        let n = logits.shape[0], classes = logits.shape[1]
        let normalizer = Double(batchSize ?? n)
        precondition(labels.count == n, "\(labels.count) labels for \(n) logit rows")
        let dLogits = computeGradient ? Tensor.reusing(gradient, shape: logits.shape) : nil
        var total = 0.0, correct = 0, totalFixed: Int64 = 0, nonFinite = 0
        var probabilities = [Double](repeating: 0, count: classes)
        for i in 0..<n {
            let row = logits.pointer + i * classes
            var best = 0
            for c in 1..<classes where row[c] > row[best] { best = c }
            if best == labels[i] { correct += 1 }
            let top = Double(row[best])
            var sum = 0.0
            for c in 0..<classes {
                probabilities[c] = exp(Double(row[c]) - top)
                sum += probabilities[c]
            }
            let imageLoss = log(sum) - (Double(row[labels[i]]) - top)
            total += imageLoss
            totalFixed &+= FixedPoint.encode(imageLoss, scale: FixedPoint.statisticsScale)
            if !imageLoss.isFinite { nonFinite += 1 }
            if let dLogits {
                for c in 0..<classes {
                    let p = probabilities[c] / sum - (c == labels[i] ? 1 : 0)
                    dLogits.pointer[i * classes + c] = Float(p / normalizer)
                }
            }
        }
        gradient = dLogits ?? gradient
        return (Result(loss: total / Double(n), correct: correct, lossSumFixed: totalFixed, nonFinite: nonFinite), dLogits)
    }
}
