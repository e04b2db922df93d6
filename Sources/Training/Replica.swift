import CIFAR
import Foundation
import Layers
import Models
import TensorCore

/// One image of a global batch with the augmentation the coordinator (or the sampler) chose.
public struct TrainingSample: Sendable, Codable, Equatable {
    public let index: Int
    public let augmentation: Augmentation

    public init(index: Int, augmentation: Augmentation) {
        self.index = index
        self.augmentation = augmentation
    }
}

/// Summed loss and correct predictions over the images of one step (or one worker's share). The
/// loss is kept in fixed point so that shares add up exactly to the whole batch's figure.
public struct StepStatistics: Sendable, Codable, Equatable {
    public var lossSumFixed: Int64 = 0
    public var correct = 0
    public var images = 0
    /// Images whose loss was NaN or infinite: the step diverged.
    public var nonFinite = 0

    public init(lossSumFixed: Int64 = 0, correct: Int = 0, images: Int = 0, nonFinite: Int = 0) {
        self.lossSumFixed = lossSumFixed
        self.correct = correct
        self.images = images
        self.nonFinite = nonFinite
    }

    public var lossSum: Double { FixedPoint.decode(lossSumFixed, scale: FixedPoint.statisticsScale) }

    public func merged(with other: StepStatistics) -> StepStatistics {
        StepStatistics(
            lossSumFixed: lossSumFixed &+ other.lossSumFixed, correct: correct + other.correct,
            images: images + other.images, nonFinite: nonFinite + other.nonFinite)
    }
}

/// Parameters, momentum and batch-norm running statistics: everything a step changes.
public struct ModelState: Sendable, Equatable {
    public var parameters: [Float]
    public var momentum: [Float]
    public var state: [Float]

    public init(parameters: [Float], momentum: [Float], state: [Float]) {
        self.parameters = parameters
        self.momentum = momentum
        self.state = state
    }

    /// FNV-1a of the parameter bytes: equal hashes mean bitwise-equal weights.
    public var parameterHash: UInt64 { parameters.withUnsafeBytes { fnv1a64($0) } }
}

/// A model with its optimizer and input pipeline: what computes one step, in a single process or
/// as one worker of a distributed run (the `GradientSynchronizer` makes the difference).
public final class Replica {
    public let configuration: TrainingConfiguration
    public let model: ResNet
    public let pool: ComputePool
    private let optimizer: SGD
    private let assembler: BatchAssembler
    private var evaluator: Evaluator
    private var criterion = SoftmaxCrossEntropy()
    private var input: Tensor?

    /// `profiler`: times every operation (`ComputePool.measure`), for worker profiles.
    public init(configuration: TrainingConfiguration, meanImage: [Float], threads: Int, profiler: Profiler? = nil) throws {
        let errors = configuration.validationErrors()
        guard errors.isEmpty else { throw TrainingError.invalidConfiguration(errors) }
        self.configuration = configuration
        pool = ComputePool(threads: threads, profiler: profiler)
        model = ResNet(try configuration.architecture(), seed: configuration.seed, pool: pool)
        optimizer = SGD(
            parameterCount: model.store.parameterCount, momentum: configuration.momentum,
            weightDecay: configuration.weightDecay)
        assembler = BatchAssembler(meanImage: meanImage)
        evaluator = Evaluator(assembler: assembler, batchSize: configuration.evalBatchSize, pool: pool)
    }

    public func load(_ state: ModelState) throws {
        let store = model.store
        guard state.parameters.count == store.parameterCount, state.momentum.count == store.parameterCount,
            state.state.count == store.stateCount
        else {
            throw CheckpointError.mismatch(
                "state",
                "it holds \(state.parameters.count) parameters and "
                    + "\(state.state.count) statistics; \(model.architecture) has \(store.parameterCount) and \(store.stateCount)")
        }
        store.values.baseAddress!.update(from: state.parameters, count: state.parameters.count)
        optimizer.velocity.pointer.update(from: state.momentum, count: state.momentum.count)
        store.state.baseAddress!.update(from: state.state, count: state.state.count)
    }

    public func state() -> ModelState {
        ModelState(
            parameters: Array(model.store.values),
            momentum: Array(UnsafeBufferPointer(start: optimizer.velocity.pointer, count: model.store.parameterCount)),
            state: Array(model.store.state))
    }

    public var parameterHash: UInt64 { fnv1a64(UnsafeRawBufferPointer(model.store.values)) }

    /// One SGD step on `samples`, part of a batch of `globalBatch` images: the loss gradient is that
    /// of the mean over the global batch, and `synchronizer` sums gradients over the replicas.
    public func step(
        on images: LabeledImages, samples: [TrainingSample], globalBatch: Int, learningRate: Float,
        synchronizer: any GradientSynchronizer
    ) throws -> StepStatistics {
        let batch = Tensor.reusing(input, shape: [samples.count, 32, 32, 3])
        input = batch
        assembler.fill(batch, from: images, indices: samples.map(\.index), augmentations: samples.map(\.augmentation), pool: pool)
        let labels = samples.map { Int(images.labels[$0.index]) }
        model.store.zeroGradients()
        synchronizer.beginStep(model.store)
        let logits = try model.forward(batch, mode: .training)
        let (result, dLogits) = criterion.evaluate(logits: logits, labels: labels, computeGradient: true, batchSize: globalBatch)
        let store = model.store
        try model.backward(dLogits!) { try synchronizer.gradientsFinished(store, from: $0) }
        try synchronizer.synchronize(model.store)
        model.store.resolveGradients()
        optimizer.step(model.store, learningRate: learningRate, pool: pool)
        return StepStatistics(
            lossSumFixed: result.lossSumFixed, correct: result.correct, images: samples.count,
            nonFinite: result.nonFinite)
    }

    public func evaluate(_ images: LabeledImages, range: Range<Int>? = nil) throws -> Evaluation {
        try evaluator.evaluate(model, on: images, range: range)
    }
}
