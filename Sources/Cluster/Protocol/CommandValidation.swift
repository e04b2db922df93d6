import CIFAR
import Collectives
import Training

/// A worker's checks of what its coordinator sends. The coordinator is a peer like any other: a
/// spoofed or broken one must get an error naming the field, never a trap or an out-of-bounds read
/// in the kernels (which compile with -Ounchecked).
extension ControlMessage.Setup {
    /// What is wrong with this setup, or nil. `current` is the configuration of the session this
    /// worker already runs, if any (a run keeps its configuration).
    public func problem(current: TrainingConfiguration?) -> String? {
        let configurationErrors = configuration.validationErrors()
        if !configurationErrors.isEmpty { return "configuration: \(configurationErrors.joined(separator: "; "))" }
        if let current, current != configuration { return "configuration differs from the one this worker was set up with" }
        guard let architecture = try? configuration.architecture() else { return "configuration.depth \(configuration.depth) is not 6n+2" }
        if worldSize < 1 || worldSize > min(configuration.batchSize, AllReduce.maximumRanks) {
            return "worldSize \(worldSize) must be 1-\(min(configuration.batchSize, AllReduce.maximumRanks)) "
                + "(at most one worker per image of a batch, and \(AllReduce.maximumRanks))"
        }
        if rank < 0 || rank >= worldSize { return "rank \(rank) must be 0-\(worldSize - 1)" }
        if ringEndpoints.count != worldSize { return "ringEndpoints has \(ringEndpoints.count) entries for worldSize \(worldSize)" }
        if let bad = ringEndpoints.first(where: { !Self.isEndpoint($0) }) {
            return "ringEndpoints entry '\(bad.prefix(80))' is not tcp://... or ipc://... (at most 512 bytes)"
        }
        if let ringKeys, ringKeys.count != worldSize { return "ringKeys has \(ringKeys.count) entries for worldSize \(worldSize)" }
        // Equal to the iterations once every step is done (a new ring for the final evaluation).
        if nextStep < 0 || nextStep > configuration.iterations {
            return "nextStep \(nextStep) must be 0-\(configuration.iterations) for \(configuration.iterations) iterations"
        }
        if parameterCount != architecture.parameterCount || stateCount != architecture.stateCount {
            return "parameterCount \(parameterCount) and stateCount \(stateCount) do not match \(architecture): "
                + "\(architecture.parameterCount) and \(architecture.stateCount)"
        }
        if checkEvery < 1 { return "checkEvery \(checkEvery) must be at least 1" }
        return nil
    }

    static func isEndpoint(_ text: String) -> Bool {
        (text.hasPrefix("tcp://") || text.hasPrefix("ipc://")) && text.utf8.count <= 512
    }
}

extension ControlMessage.Step {
    /// What is wrong with this step for a run with `configuration` over `trainImages` images, or nil.
    public func problem(configuration: TrainingConfiguration, trainImages: Int) -> String? {
        if globalBatch < 1 || globalBatch > configuration.batchSize {
            return "globalBatch \(globalBatch) must be 1-\(configuration.batchSize) (the batch size)"
        }
        if samples.isEmpty || samples.count > globalBatch { return "samples has \(samples.count) entries, must be 1-\(globalBatch)" }
        if !(learningRate.isFinite && learningRate >= 0) { return "learningRate \(learningRate) must be finite and non-negative" }
        let crop = 0...(2 * Augmentation.padding)
        for sample in samples {
            if sample.index < 0 || sample.index >= trainImages { return "samples names image \(sample.index) of \(trainImages)" }
            if !crop.contains(sample.augmentation.cropX) || !crop.contains(sample.augmentation.cropY) {
                return "samples crop origin (\(sample.augmentation.cropX), \(sample.augmentation.cropY)) must be within 0-\(crop.upperBound)"
            }
        }
        return nil
    }
}

extension ControlMessage.Evaluate {
    /// What is wrong with this evaluation over a set of `setSize` images (nil: no such set), or nil.
    public func problem(setSize: Int?) -> String? {
        guard let setSize else { return "split \(split) does not exist in this run" }
        if start < 0 || start > end || end > setSize { return "evaluation range \(start)..<\(end) of \(split) (\(setSize) images)" }
        return nil
    }
}
