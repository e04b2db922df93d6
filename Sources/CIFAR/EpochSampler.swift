import TensorCore

/// The order of training images: each epoch is a fresh permutation drawn from (seed, epoch), and
/// the epochs are concatenated into one endless stream that is cut into batches of equal size.
/// So every step has exactly `batchSize` images, and the batch that crosses an epoch boundary
/// takes the end of one epoch and the start of the next (no image is dropped or repeated within
/// an epoch). Step k's batch depends only on (seed, k): resuming needs no sampler state.
public struct EpochSampler: Sendable {
    public struct Sample: Sendable, Equatable {
        public let epoch: Int
        public let index: Int
    }

    public let seed: UInt64
    public let imageCount: Int
    public let batchSize: Int
    private var cached: (epoch: Int, order: [Int])?

    public init(seed: UInt64, imageCount: Int, batchSize: Int) {
        precondition(imageCount > 0 && batchSize > 0, "empty sampler")
        self.seed = seed
        self.imageCount = imageCount
        self.batchSize = batchSize
    }

    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<imageCount)
        var rng = SplitMix64.stream(seed, 0x5E9, UInt64(epoch))
        for i in stride(from: imageCount - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return order
    }

    /// Epoch (fractional) reached after `steps` steps.
    public func epochs(afterSteps steps: Int) -> Double { Double(steps * batchSize) / Double(imageCount) }

    /// The images of step `step` (0-based).
    public mutating func batch(step: Int) -> [Sample] {
        var samples = [Sample]()
        samples.reserveCapacity(batchSize)
        for position in (step * batchSize)..<((step + 1) * batchSize) {
            let epoch = position / imageCount
            if cached?.epoch != epoch { cached = (epoch, permutation(epoch: epoch)) }
            samples.append(Sample(epoch: epoch, index: cached!.order[position % imageCount]))
        }
        return samples
    }
}
