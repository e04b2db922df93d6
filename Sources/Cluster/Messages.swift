import Foundation
import Training
import Transport

/// The control-plane protocol between the coordinator (ROUTER) and its workers (DEALER).
///
///  A. worker -> coordinator  hello       worker id, ring endpoint, dataset fingerprint and counts
///  B. coordinator waits until `--workers` hellos arrived (bounded), checks that every worker has
///     the same dataset, and ranks the workers in arrival order.
///  C. coordinator -> worker  setup       rank, world size, run id, configuration, batch-norm mode,
///                                        every rank's ring endpoint; binary: parameters, momentum
///                                        and running statistics (so workers need not share a seed)
///  D. worker: connects its ring PUSH socket to the next rank's PULL endpoint
///     worker -> coordinator  ready
///  E. per step: coordinator -> worker  step  its contiguous share of the global batch (image
///     indices with their augmentation), the learning rate and the global batch size
///  F. workers: forward (synchronized batch norm all-reduces each layer's sums over the ring),
///     backward, ring all-reduce of the fixed-point gradients, the same SGD update everywhere
///     worker -> coordinator  result      loss sum, correct count, parameter hash
///  G. coordinator: checks the parameter hashes agree (any mismatch stops the run naming the
///     worker), logs, and when due sends `evaluate` (a range of the test or validation set per
///     worker, answered by `evaluation`) or `stateRequest` to rank 0 (answered by `state`)
///  H. coordinator -> worker  stop; a worker that fails sends `failure` with the reason.
///
/// Every message is a `WireMessage` (magic, version, kind, run id, epoch, step, sender, length,
/// checksum) whose payload is a `ControlPayload` (JSON + binary); the ring uses `ringChunk`.
public enum ControlMessage {
    public struct DatasetInfo: Codable, Sendable, Equatable {
        /// Hash of every training and test image and label, in file order.
        public var fingerprint: String
        public var trainImages: Int
        public var testImages: Int
    }

    public struct Hello: Codable, Sendable {
        public var workerID: String
        public var host: String
        public var pid: Int32
        public var ringEndpoint: String
        public var dataset: DatasetInfo
    }

    public enum BatchNormMode: String, Codable, Sendable, CaseIterable {
        /// Statistics of the whole global batch (all-reduced per layer): W workers compute what one
        /// process computes.
        case sync
        /// Each worker normalizes with its own shard's statistics; running statistics are averaged.
        case local
    }

    public struct Setup: Codable, Sendable {
        public var rank: Int
        public var worldSize: Int
        public var configuration: TrainingConfiguration
        public var batchNorm: BatchNormMode
        public var ringEndpoints: [String]
        public var parameterCount: Int
        public var stateCount: Int
        /// Compare parameter hashes every this many steps.
        public var checkEvery: Int
    }

    public struct Step: Codable, Sendable {
        public var step: Int
        public var learningRate: Float
        public var globalBatch: Int
        public var samples: [TrainingSample]
        public var reportHash: Bool
    }

    public struct Result: Codable, Sendable {
        public var statistics: StepStatistics
        /// Hex FNV-1a of the parameters after the step, when asked for.
        public var parameterHash: String?
    }

    public struct Evaluate: Codable, Sendable {
        public var split: EvaluationSplit
        public var start: Int
        public var end: Int
    }

    public struct Stop: Codable, Sendable {
        public var reason: String
    }

    public struct Failure: Codable, Sendable {
        public var message: String
    }

    public struct Empty: Codable, Sendable {
        public init() {}
    }
}

/// Floats to little-endian bytes and back (model state on the wire).
public enum FloatCoding {
    public static func bytes(_ arrays: [[Float]]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(arrays.reduce(0) { $0 + $1.count } * 4)
        for array in arrays { array.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// Splits `bytes` into arrays of `counts` floats; throws if the sizes disagree.
    public static func floats(_ bytes: [UInt8], counts: [Int], source: String) throws -> [[Float]] {
        guard bytes.count == counts.reduce(0, +) * 4 else {
            throw TransportError.malformed("\(source) sent \(bytes.count) state bytes, expected \(counts.reduce(0, +) * 4)")
        }
        var offset = 0
        return counts.map { count in
            defer { offset += count * 4 }
            return bytes[offset..<(offset + count * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
    }

    public static func bytes(_ state: ModelState) -> [UInt8] { bytes([state.parameters, state.momentum, state.state]) }

    public static func state(_ bytes: [UInt8], parameterCount: Int, stateCount: Int, source: String) throws -> ModelState {
        let parts = try floats(bytes, counts: [parameterCount, parameterCount, stateCount], source: source)
        return ModelState(parameters: parts[0], momentum: parts[1], state: parts[2])
    }
}

public func hex(_ value: UInt64) -> String { String(value, radix: 16) }
