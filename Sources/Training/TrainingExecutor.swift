import CIFAR

public enum EvaluationSplit: String, Sendable, Codable {
    case test, validation
}

/// What executes the steps of a run for the `Trainer`: one process (`LocalExecutor`) or a
/// coordinator driving workers. The trainer owns the schedule, metrics, progress and checkpoints.
public protocol TrainingExecutor: AnyObject {
    /// Runs SGD step `step` on the global batch `samples`.
    func step(_ step: Int, samples: [TrainingSample], learningRate: Float) throws -> StepStatistics
    func evaluate(_ split: EvaluationSplit) throws -> Evaluation
    func state() throws -> ModelState
}

/// Training in this process on all its cores.
public final class LocalExecutor: TrainingExecutor {
    public let replica: Replica
    private let data: CIFAR10

    public init(configuration: TrainingConfiguration, data: CIFAR10, threads: Int, state: ModelState? = nil) throws {
        self.data = data
        replica = try Replica(configuration: configuration, meanImage: data.meanImage, threads: threads)
        if let state { try replica.load(state) }
    }

    public func step(_ step: Int, samples: [TrainingSample], learningRate: Float) throws -> StepStatistics {
        try replica.step(
            on: data.train, samples: samples, globalBatch: samples.count, learningRate: learningRate,
            synchronizer: LocalSynchronizer())
    }

    public func evaluate(_ split: EvaluationSplit) throws -> Evaluation {
        switch split {
        case .test: return try replica.evaluate(data.test)
        case .validation: return try data.validation.map { try replica.evaluate($0) } ?? Evaluation()
        }
    }

    public func state() throws -> ModelState { replica.state() }
}
