import CIFAR
import Foundation
import Timing

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

/// The training loop: sampler -> augmentation -> a step by the executor (one process, or a
/// coordinator driving workers), with evaluation, metrics, progress and checkpoints.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let executor: any TrainingExecutor
    public private(set) var step: Int
    private let trainImages: Int
    private let hasValidation: Bool
    private let runDirectory: String?
    private let display: ProgressDisplay?
    private var sampler: EpochSampler
    private var bestTestError: Double?

    /// `startStep`: steps already done (the executor holds their state).
    public init(
        configuration: TrainingConfiguration, executor: any TrainingExecutor, trainImages: Int, hasValidation: Bool,
        startStep: Int = 0, runDirectory: String?, display: ProgressDisplay? = nil
    ) throws {
        let errors = configuration.validationErrors()
        guard errors.isEmpty else { throw TrainingError.invalidConfiguration(errors) }
        self.configuration = configuration
        self.executor = executor
        self.trainImages = trainImages
        self.hasValidation = hasValidation
        step = startStep
        self.runDirectory = runDirectory
        self.display = display
        sampler = EpochSampler(seed: configuration.seed, imageCount: trainImages, batchSize: configuration.batchSize)
    }

    /// Single-process training on `data`, from the start or from `resume`.
    public convenience init(
        configuration: TrainingConfiguration, data: CIFAR10, threads: Int, runDirectory: String?,
        resume: Checkpoint? = nil, display: ProgressDisplay? = nil
    ) throws {
        let executor = try LocalExecutor(configuration: configuration, data: data, threads: threads, state: resume?.modelState)
        try self.init(
            configuration: configuration, executor: executor, trainImages: data.train.count,
            hasValidation: data.validation != nil, startStep: resume?.step ?? 0, runDirectory: runDirectory,
            display: display)
    }

    public func checkpoint() throws -> Checkpoint {
        Checkpoint(configuration: configuration, step: step, state: try executor.state())
    }

    /// The images and augmentations of step `step` (0-based): a pure function of (seed, step).
    public func samples(step: Int) -> [TrainingSample] {
        sampler.batch(step: step).map {
            TrainingSample(index: $0.index, augmentation: Augmentation.draw(seed: configuration.seed, epoch: $0.epoch, index: $0.index))
        }
    }

    /// Evaluates the test (and validation) set and adds their fields to `record`.
    private func addEvaluations(to record: inout [String: Double]) throws -> Evaluation {
        let test = try executor.evaluate(.test)
        bestTestError = min(bestTestError ?? .infinity, test.error)
        record["test_loss"] = test.loss
        record["test_error"] = test.error
        record["test_error_exact1000"] = test.errorFirst1000
        if hasValidation {
            let validation = try executor.evaluate(.validation)
            record["val_loss"] = validation.loss
            record["val_error"] = validation.error
        }
        return test
    }

    /// "step 1200/64000  epoch 3.07  loss 0.8123  err 28.41%  lr 0.1  812 img/s  ETA 2h13m  test err ..."
    private func progressLine(_ record: [String: Double], eta: Double) -> String {
        var line = String(
            format: "step %d/%d  epoch %.2f  loss %.4f  err %.2f%%  lr %g  %.0f img/s  ETA %@",
            Int(record["step"]!), configuration.iterations, record["epoch"]!, record["train_loss"]!,
            record["train_error"]!, record["lr"]!, record["images_per_second"]!, ProgressDisplay.duration(eta))
        if let testError = record["test_error"], let bestTestError {
            line += String(
                format: "  test err %.2f%% (first 1000: %.2f%%, best %.2f%%)", testError,
                record["test_error_exact1000"]!, bestTestError)
        }
        if let validationError = record["val_error"] { line += String(format: "  val err %.2f%%", validationError) }
        return line
    }

    /// Trains until `configuration.iterations` steps are done or `shouldStop` says so (checked
    /// between steps; a checkpoint is written before returning).
    public func run(shouldStop: () -> Bool = { false }) throws -> TrainingSummary {
        let c = configuration
        let evalInterval = c.evaluationInterval(trainingImages: trainImages)
        let checkpoints = runDirectory.map { CheckpointDirectory(runDirectory: $0) }
        let metrics = runDirectory.map { MetricsLog(runDirectory: $0) }
        let tensorBoard = try runDirectory.map { try TensorBoardLog(runDirectory: $0) }
        if let metrics, step > 0 {
            // The progress line's "best" covers the whole run, not just this process's part of it.
            let history = try metrics.truncate(afterStep: step)
            if let best = history.compactMap({ $0["test_error"] }).min() { bestTestError = min(best, bestTestError ?? .infinity) }
        }
        let sessionStart = monotonicSeconds(), sessionFirstStep = step
        var windowLoss = 0.0, windowCorrect = 0, windowSteps = 0, windowTrainSeconds = 0.0
        var lastLoss = Double.nan, lastEvaluation: Evaluation?
        var stopped = false

        while step < c.iterations {
            if shouldStop() { stopped = true; break }
            let stepStart = monotonicSeconds()
            let learningRate = c.learningRate(atStep: step)
            let result = try executor.step(step, samples: samples(step: step), learningRate: learningRate)
            let loss = result.nonFinite > 0 ? Double.nan : result.lossSum / Double(max(result.images, 1))
            guard loss.isFinite else { throw TrainingError.diverged(step: step + 1, loss: loss) }
            step += 1
            windowTrainSeconds += monotonicSeconds() - stepStart
            windowLoss += loss
            windowCorrect += result.correct
            windowSteps += 1
            lastLoss = loss

            let evaluate = step % evalInterval == 0 || step == c.iterations
            if evaluate || step % c.logEvery == 0 {
                var record: [String: Double] = [
                    "step": Double(step), "epoch": sampler.epochs(afterSteps: step),
                    "lr": Double("\(learningRate)") ?? Double(learningRate),  // 0.1, not 0.10000000149
                    "train_loss": windowLoss / Double(windowSteps),
                    "train_error": 100 * (1 - Double(windowCorrect) / Double(windowSteps * c.batchSize)),
                    "images_per_second": Double(windowSteps * c.batchSize) / windowTrainSeconds,
                    "wall_seconds": monotonicSeconds() - sessionStart,
                ]
                windowLoss = 0; windowCorrect = 0; windowSteps = 0; windowTrainSeconds = 0
                if evaluate { lastEvaluation = try addEvaluations(to: &record) }
                try metrics?.append(record)
                try tensorBoard?.scalars(record.filter { !["step", "epoch", "wall_seconds"].contains($0.key) }, step: step)
                let eta = (monotonicSeconds() - sessionStart) / Double(step - sessionFirstStep) * Double(c.iterations - step)
                display?.status(progressLine(record, eta: eta), persistent: evaluate || !(display?.isInteractive ?? false))
            }
            if let checkpoints, step % c.checkpointEvery == 0 || step == c.iterations {
                try checkpoints.write(try checkpoint(), keep: c.keepCheckpoints)
            }
        }
        if stopped, let checkpoints {
            let path = try checkpoints.write(try checkpoint(), keep: c.keepCheckpoints)
            display?.message("stopped at step \(step); checkpoint \(path)")
        }
        return TrainingSummary(
            step: step, finished: step >= c.iterations, lastTrainLoss: lastLoss,
            bestTestError: bestTestError, lastEvaluation: lastEvaluation,
            parameterHash: try executor.state().parameterHash)
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
