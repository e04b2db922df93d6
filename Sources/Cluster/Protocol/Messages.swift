import Foundation
import Training
import Transport

/// The control-plane protocol between the coordinator (ROUTER) and its workers (DEALER).
///
///  A. worker -> coordinator  hello       worker id, ring endpoint, dataset fingerprint and counts.
///     From then on the worker also sends a `heartbeat` every interval from a second socket, with
///     the secret token of its hello; the coordinator counts only beats with the right token and
///     answers each one (a worker that hears nothing for --heartbeat-timeout exits).
///  B. coordinator: admits joined workers at a step boundary (the first time when --workers have
///     joined), checks that every worker has the same dataset, and ranks them.
///  C. coordinator -> worker  setup       membership epoch (header), rank, world size, the step to
///                                        run next, configuration, batch-norm mode, every rank's
///                                        ring endpoint; binary for new members only: parameters,
///                                        momentum and running statistics
///  D. worker: (re)connects its ring PUSH socket to the next rank's PULL endpoint; rolls back a
///     step it applied that the coordinator did not complete (a snapshot from the step's start)
///     worker -> coordinator  ready       steps applied and the parameter hash (all must agree)
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
/// Faults: a member that dies (its process exits, its heartbeats stop) or fails, or that is not
/// waiting on the ring when a step misses its deadline, is removed; the coordinator bumps the
/// epoch, sends C to the survivors (and to workers waiting to join) and re-runs the same step.
/// Workers poll their control socket while they wait on the ring, so a new epoch aborts the
/// step at once. A worker that hears `rejoin` (it was removed, e.g. it was frozen) says A again.
///
/// Every message is a `WireMessage` (magic, version, kind, run id, epoch, sequence, step, sender,
/// length, checksum) whose payload is a `ControlPayload` (JSON + binary); the ring uses
/// `ringChunk`. Requests carry a sequence number that replies echo: a worker drops a request of
/// an old epoch or one it has seen (replays, duplicates); the coordinator drops replies that do
/// not answer the request it waits for.
public enum ControlMessage {
    public struct DatasetInfo: Codable, Sendable, Hashable {
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
        /// The worker's CURVE public key (its ring socket's server key), when CURVE is on.
        public var publicKey: String?
        /// A random secret that this worker's heartbeats carry: they come from a second socket, so
        /// the routing id alone would let anyone who learns the worker id speak for it.
        public var heartbeatToken: String

        /// What is wrong with this hello's fields for a run holding out `validation` images, or nil.
        public func problem(validation: Int) -> String? {
            let limit = 1 << 24  // images: far above CIFAR-10's 60,000, far below an allocation failure
            if workerID.isEmpty || workerID.utf8.count > 64 { return "workerID must have 1-64 bytes" }
            if host.isEmpty || host.utf8.count > 255 { return "host must have 1-255 bytes" }
            if pid <= 0 { return "pid \(pid) is not a process id" }
            if !(ringEndpoint.hasPrefix("tcp://") || ringEndpoint.hasPrefix("ipc://")) || ringEndpoint.utf8.count > 512 {
                return "ringEndpoint must be tcp://... or ipc://... (at most 512 bytes)"
            }
            if dataset.fingerprint.isEmpty || dataset.fingerprint.utf8.count > 128 { return "dataset.fingerprint must have 1-128 bytes" }
            if dataset.trainImages <= validation || dataset.trainImages > limit {
                return "dataset.trainImages \(dataset.trainImages) must be above --validation \(validation) and at most \(limit)"
            }
            if dataset.testImages < 1 || dataset.testImages > limit { return "dataset.testImages \(dataset.testImages) must be 1-\(limit)" }
            if let publicKey, publicKey.utf8.count != 40 { return "publicKey must be a 40-character Z85 key" }
            if heartbeatToken.utf8.count != 32 || !heartbeatToken.allSatisfy(\.isHexDigit) { return "heartbeatToken must be 32 hex digits" }
            return nil
        }
    }

    public enum BatchNormMode: String, Codable, Sendable, CaseIterable {
        /// Statistics of the whole global batch (all-reduced per layer): W workers compute what one
        /// process computes.
        case sync
        /// Each worker normalizes with its own shard's statistics; running statistics are averaged.
        case local
    }

    public struct Setup: Codable, Sendable {
        /// Steps completed so far: the worker's model must be the state after this many steps.
        public var nextStep: Int
        public var rank: Int
        public var worldSize: Int
        public var configuration: TrainingConfiguration
        public var batchNorm: BatchNormMode
        public var ringEndpoints: [String]
        /// Every rank's CURVE public key, when CURVE is on.
        public var ringKeys: [String]?
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

    public struct Ready: Codable, Sendable {
        public var completedSteps: Int
        public var parameterHash: String
    }

    public struct Heartbeat: Codable, Sendable {
        public var workerID: String
        /// The `heartbeatToken` of the worker's hello.
        public var token: String
        /// True while the worker waits (for a command or on the ring), false while it computes:
        /// when a step misses its deadline, the members that are not waiting are the suspects.
        public var waiting: Bool
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
