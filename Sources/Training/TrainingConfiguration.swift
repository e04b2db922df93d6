import Models

/// Everything that defines a training run: one immutable value, built by the CLI from flags and
/// stored in every checkpoint so that `--resume` continues exactly the same run.
public struct TrainingConfiguration: Sendable, Codable, Equatable {
    public var depth = 20
    public var residual = true
    public var iterations = 64_000
    public var batchSize = 128
    public var learningRate: Float = 0.1
    public var milestones = [32_000, 48_000]
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-4
    public var seed: UInt64 = 1
    /// Iterations at `warmupLearningRate` before `learningRate` (the paper uses 0.01 for ResNet-110
    /// until training error is below 80%, about 400 iterations).
    public var warmupIterations = 0
    public var warmupLearningRate: Float = 0.01
    /// Held-out images from the end of the training set (the paper's curves use 5,000).
    public var validation = 0
    /// Evaluate every this many steps; nil means once per epoch.
    public var evalEvery: Int?
    public var checkpointEvery = 2_000
    /// Checkpoints kept on disk (oldest deleted first).
    public var keepCheckpoints = 3
    public var logEvery = 50
    public var evalBatchSize = 500

    public init() {}

    public static let maximumBatchSize = 2048
    public static let maximumDepth = 1202
    /// The test set's size: an evaluation batch holds its images' activations at once.
    public static let maximumEvalBatchSize = 10_000

    public func architecture() throws -> Architecture { try Architecture(depth: depth, residual: residual) }

    /// Learning rate for step `step` (0-based): warm-up, then divided by 10 at each milestone.
    public func learningRate(atStep step: Int) -> Float {
        if step < warmupIterations { return warmupLearningRate }
        var rate = learningRate
        for milestone in milestones where step >= milestone { rate *= 0.1 }
        return rate
    }

    /// Steps per evaluation: `evalEvery`, or one epoch of `trainingImages` rounded up.
    public func evaluationInterval(trainingImages: Int) -> Int {
        evalEvery ?? (trainingImages + batchSize - 1) / batchSize
    }

    /// Problems with the values, in words a user can act on.
    public func validationErrors() -> [String] {
        var errors = [String]()
        if (try? architecture()) == nil { errors.append("--depth \(depth) is not 6n+2 with n >= 1 (e.g. 20, 32, 44, 56, 110)") }
        if iterations < 1 { errors.append("--iterations must be at least 1") }
        if batchSize < 1 || batchSize > Self.maximumBatchSize {
            errors.append(
                "--batch-size must be 1-\(Self.maximumBatchSize) (16 times the paper's 128; the activations of "
                    + "every image of a batch are held at once, so larger batches fail to allocate)")
        }
        if depth > Self.maximumDepth {
            errors.append(
                "--depth must be at most \(Self.maximumDepth), the paper's deepest net (activations and "
                    + "parameters grow with depth; deeper nets fail to allocate)")
        }
        if !(learningRate > 0) { errors.append("--lr must be positive") }
        if milestones != milestones.sorted() || milestones.contains(where: { $0 < 0 }) {
            errors.append("--milestones must be non-negative and increasing, e.g. 32000,48000")
        }
        if !(momentum >= 0 && momentum < 1) { errors.append("--momentum must be in [0, 1)") }
        if !(weightDecay >= 0) { errors.append("--weight-decay must be non-negative") }
        if warmupIterations < 0 { errors.append("--warmup must be non-negative") }
        if validation < 0 || validation >= 50_000 { errors.append("--validation must be between 0 and 49999") }
        if let evalEvery, evalEvery < 1 { errors.append("--eval-every must be at least 1") }
        if checkpointEvery < 1 { errors.append("--checkpoint-every must be at least 1") }
        if keepCheckpoints < 1 { errors.append("--keep-checkpoints must be at least 1") }
        if logEvery < 1 { errors.append("--log-every must be at least 1") }
        if evalBatchSize < 1 || evalBatchSize > Self.maximumEvalBatchSize {
            errors.append("the evaluation batch size must be 1-\(Self.maximumEvalBatchSize) (the test set's size; it is \(evalBatchSize))")
        }
        return errors
    }
}
