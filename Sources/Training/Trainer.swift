import CIFAR
import Foundation
import Layers
import Models
import TensorCore

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Sendable {
    public let step: Int
    public let finished: Bool
    public let lastTrainLoss: Double
    public let bestTestError: Double?
    public let lastEvaluation: Evaluation?
    /// FNV-1a of the parameter bytes: equal hashes mean bitwise-equal weights.
    public let parameterHash: UInt64
}

/// Single-process training loop: sampler -> augmentation -> forward/backward -> synchronize ->
/// SGD, with evaluation, metrics, progress and checkpoints. With a `GradientSynchronizer` that
/// all-reduces, the same loop runs on every replica of a distributed run.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let model: ResNet
    public private(set) var step = 0
    private let data: CIFAR10
    private let pool: ComputePool
    private let optimizer: SGD
    private let synchronizer: any GradientSynchronizer
    private let runDirectory: String?
    private let display: ProgressDisplay?
    private var sampler: EpochSampler
    private let assembler: BatchAssembler
    private var evaluator: Evaluator
    private var criterion = SoftmaxCrossEntropy()
    private var bestTestError: Double?

    /// `resume`: a checkpoint of the same configuration to continue from.
    public init(configuration: TrainingConfiguration, data: CIFAR10, threads: Int, runDirectory: String?,
                resume: Checkpoint? = nil, display: ProgressDisplay? = nil,
                synchronizer: any GradientSynchronizer = LocalSynchronizer()) throws {
        let errors = configuration.validationErrors()
        guard errors.isEmpty else { throw TrainingError.invalidConfiguration(errors) }
        self.configuration = configuration
        self.data = data
        pool = ComputePool(threads: threads)
        model = ResNet(try configuration.architecture(), seed: configuration.seed, pool: pool)
        optimizer = SGD(parameterCount: model.store.parameterCount, momentum: configuration.momentum,
                        weightDecay: configuration.weightDecay)
        self.synchronizer = synchronizer
        self.runDirectory = runDirectory
        self.display = display
        sampler = EpochSampler(seed: configuration.seed, imageCount: data.train.count, batchSize: configuration.batchSize)
        assembler = BatchAssembler(meanImage: data.meanImage)
        evaluator = Evaluator(assembler: assembler, batchSize: configuration.evalBatchSize, pool: pool)
        if let resume { try restore(resume) }
    }

    private func restore(_ checkpoint: Checkpoint) throws {
        let store = model.store
        guard checkpoint.parameters.count == store.parameterCount, checkpoint.momentum.count == store.parameterCount,
              checkpoint.state.count == store.stateCount else {
            throw CheckpointError.mismatch("resume", "it holds \(checkpoint.parameters.count) parameters and "
                + "\(checkpoint.state.count) statistics; \(model.architecture) has \(store.parameterCount) and \(store.stateCount)")
        }
        store.values.baseAddress!.update(from: checkpoint.parameters, count: checkpoint.parameters.count)
        optimizer.velocity.pointer.update(from: checkpoint.momentum, count: checkpoint.momentum.count)
        store.state.baseAddress!.update(from: checkpoint.state, count: checkpoint.state.count)
        step = checkpoint.step
    }

    public func checkpoint() -> Checkpoint {
        Checkpoint(configuration: configuration, step: step, parameters: Array(model.store.values),
                   momentum: Array(UnsafeBufferPointer(start: optimizer.velocity.pointer, count: model.store.parameterCount)),
                   state: Array(model.store.state))
    }

    /// Evaluates the current model on `set` (inference mode).
    public func evaluate(_ set: LabeledImages) throws -> Evaluation { try evaluator.evaluate(model, on: set) }

    public var parameterHash: UInt64 {
        fnv1a64(UnsafeRawBufferPointer(model.store.values))
    }

    /// Trains until `configuration.iterations` steps are done or `shouldStop` says so (checked
    /// between steps; a checkpoint is written before returning).
    public func run(shouldStop: () -> Bool = { false }) throws -> TrainingSummary {
        let c = configuration
        let evalInterval = c.evaluationInterval(trainingImages: data.train.count)
        let checkpoints = runDirectory.map { CheckpointDirectory(runDirectory: $0) }
        let metrics = runDirectory.map { MetricsLog(runDirectory: $0) }
        if let metrics, step > 0 { try metrics.truncate(afterStep: step) }
        let input = Tensor(shape: [c.batchSize, 32, 32, 3])
        let sessionStart = monotonicSeconds(), sessionFirstStep = step
        var windowLoss = 0.0, windowCorrect = 0, windowSteps = 0, windowTrainSeconds = 0.0
        var lastLoss = Double.nan, lastEvaluation: Evaluation?
        var stopped = false

        while step < c.iterations {
            if shouldStop() { stopped = true; break }
            let stepStart = monotonicSeconds()
            let learningRate = c.learningRate(atStep: step)
            let samples = sampler.batch(step: step)
            assembler.fill(input, from: data.train, indices: samples.map(\.index),
                           augmentations: samples.map { Augmentation.draw(seed: c.seed, epoch: $0.epoch, index: $0.index) },
                           pool: pool)
            let labels = samples.map { Int(data.train.labels[$0.index]) }
            model.store.zeroGradients()
            let logits = try model.forward(input, mode: .training)
            let (result, dLogits) = criterion.evaluate(logits: logits, labels: labels, computeGradient: true)
            guard result.loss.isFinite else { throw TrainingError.diverged(step: step + 1, loss: result.loss) }
            try model.backward(dLogits!)
            try synchronizer.synchronize(model.store)
            model.store.resolveGradients()
            optimizer.step(model.store, learningRate: learningRate, pool: pool)
            step += 1
            windowTrainSeconds += monotonicSeconds() - stepStart
            windowLoss += result.loss
            windowCorrect += result.correct
            windowSteps += 1
            lastLoss = result.loss

            let evaluate = step % evalInterval == 0 || step == c.iterations
            let log = evaluate || step % c.logEvery == 0
            var record: [String: Double] = [:]
            if log {
                let imagesPerSecond = Double(windowSteps * c.batchSize) / windowTrainSeconds
                record = [
                    "step": Double(step), "epoch": sampler.epochs(afterSteps: step), "lr": Double("\(learningRate)") ?? Double(learningRate),
                    "train_loss": windowLoss / Double(windowSteps),
                    "train_error": 100 * (1 - Double(windowCorrect) / Double(windowSteps * c.batchSize)),
                    "images_per_second": imagesPerSecond, "wall_seconds": monotonicSeconds() - sessionStart,
                ]
                windowLoss = 0; windowCorrect = 0; windowSteps = 0; windowTrainSeconds = 0
            }
            if evaluate {
                let test = try evaluator.evaluate(model, on: data.test)
                lastEvaluation = test
                bestTestError = min(bestTestError ?? .infinity, test.error)
                record["test_loss"] = test.loss
                record["test_error"] = test.error
                record["test_error_exact1000"] = test.errorFirst1000
                if let validation = data.validation {
                    let v = try evaluator.evaluate(model, on: validation)
                    record["val_loss"] = v.loss
                    record["val_error"] = v.error
                }
            }
            if log {
                try metrics?.append(record)
                let elapsed = monotonicSeconds() - sessionStart
                let eta = elapsed / Double(step - sessionFirstStep) * Double(c.iterations - step)
                var line = String(format: "step %d/%d  epoch %.2f  loss %.4f  err %.2f%%  lr %g  %.0f img/s  ETA %@",
                                  step, c.iterations, record["epoch"]!, record["train_loss"]!, record["train_error"]!,
                                  Double(learningRate), record["images_per_second"]!, ProgressDisplay.duration(eta))
                if let testError = record["test_error"] {
                    line += String(format: "  test err %.2f%% (first 1000: %.2f%%, best %.2f%%)", testError,
                                   record["test_error_exact1000"]!, bestTestError!)
                }
                if let validationError = record["val_error"] { line += String(format: "  val err %.2f%%", validationError) }
                display?.status(line, persistent: evaluate || !(display?.isInteractive ?? false))
            }
            if let checkpoints, step % c.checkpointEvery == 0 || step == c.iterations {
                try checkpoints.write(checkpoint(), keep: c.keepCheckpoints)
            }
        }
        if stopped, let checkpoints {
            let path = try checkpoints.write(checkpoint(), keep: c.keepCheckpoints)
            display?.message("stopped at step \(step); checkpoint \(path)")
        }
        return TrainingSummary(step: step, finished: step >= c.iterations, lastTrainLoss: lastLoss,
                               bestTestError: bestTestError, lastEvaluation: lastEvaluation, parameterHash: parameterHash)
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case invalidConfiguration([String])
    case diverged(step: Int, loss: Double)

    public var description: String {
        switch self {
        case .invalidConfiguration(let errors): "invalid configuration: " + errors.joined(separator: "; ")
        case .diverged(let step, let loss): "training diverged at step \(step): loss is \(loss) (try a lower --lr or --warmup)"
        }
    }
}
