import Foundation
import Models
import Training
import Transport

/// The coordinator of a distributed run (see `ControlMessage` for the protocol). It owns the
/// order of the data: it is the `TrainingExecutor` of a `Trainer`, which gives it each step's
/// global batch; it splits the batch into contiguous shards, one per worker, as evenly as
/// possible (128 over 3 = 43/43/42), and collects the results. Every wait is bounded.
public final class Coordinator: TrainingExecutor {
    public struct Options: Sendable {
        public var listen: String
        public var workers: Int
        public var batchNorm: ControlMessage.BatchNormMode
        public var rendezvousTimeout: Double
        public var stepTimeout: Double
        /// Compare the workers' parameter hashes every this many steps (and at the last step).
        public var checkEvery: Int

        public init(listen: String, workers: Int, batchNorm: ControlMessage.BatchNormMode = .sync,
                    rendezvousTimeout: Double = 300, stepTimeout: Double = 300, checkEvery: Int = 50) {
            self.listen = listen
            self.workers = workers
            self.batchNorm = batchNorm
            self.rendezvousTimeout = rendezvousTimeout
            self.stepTimeout = stepTimeout
            self.checkEvery = checkEvery
        }
    }

    private struct Member {
        let identity: [UInt8]
        let hello: ControlMessage.Hello
        var name: String { "worker \(hello.workerID.prefix(8)) (\(hello.host) pid \(hello.pid))" }
    }

    public let options: Options
    public let configuration: TrainingConfiguration
    public let runID: UInt64
    /// The resolved listening endpoint (with the port chosen for `tcp://host:*`).
    public let endpoint: String
    public private(set) var dataset: ControlMessage.DatasetInfo?
    private let context: ZMQContext
    private let socket: ZMQSocket
    private var members: [Member] = []
    private let log: (String) -> Void
    /// Called while waiting; returns a reason when a worker is known to be dead (local processes).
    public var liveness: () -> String? = { nil }

    public init(options: Options, configuration: TrainingConfiguration, log: @escaping (String) -> Void) throws {
        precondition(options.workers >= 1, "at least one worker")
        self.options = options
        self.configuration = configuration
        self.log = log
        var rng = SystemRandomNumberGenerator()
        runID = rng.next()
        context = try ZMQContext()
        socket = try ZMQSocket(context, kind: .router, lingerMilliseconds: 1000)
        endpoint = try socket.bind(options.listen)
    }

    public var trainImages: Int { (dataset?.trainImages ?? 0) - configuration.validation }

    private func channel(_ rank: Int) -> ControlChannel {
        ControlChannel(socket: socket, runID: runID, sender: -1, peerName: members[rank].name)
    }

    // MARK: A-D rendezvous

    /// Waits for the workers, checks their datasets agree, sends each its rank, the configuration
    /// and `state`, and waits until all are ready.
    public func rendezvous(state: ModelState) throws {
        let deadline = monotonicSeconds() + options.rendezvousTimeout
        log("coordinator: waiting for \(options.workers) worker(s) on \(endpoint)")
        while members.count < options.workers {
            guard let received = try next(until: deadline, timeout: options.rendezvousTimeout,
                                          waitingFor: "\(options.workers - members.count) more worker(s) to join") else { continue }
            guard received.message.header.kind == .hello else {
                log("coordinator: ignored \(received.message.header.kind) before setup")
                continue
            }
            let hello: ControlMessage.Hello
            do {
                (hello, _) = try received.body(ControlMessage.Hello.self, source: "peer \(peerName(received.identity))")
            } catch {
                log("coordinator: \(error)")
                continue
            }
            if let reference = members.first?.hello.dataset, reference != hello.dataset {
                throw ClusterError.datasetMismatch("worker on \(hello.host) (pid \(hello.pid)) has dataset \(hello.dataset); "
                    + "the first worker has \(reference)")
            }
            guard hello.dataset.trainImages > configuration.validation else {
                throw ClusterError.datasetMismatch("--validation \(configuration.validation) leaves no training images")
            }
            members.append(Member(identity: received.identity, hello: hello))
            log("coordinator: \(members.last!.name) joined as rank \(members.count - 1)")
        }
        dataset = members[0].hello.dataset
        let endpoints = members.map(\.hello.ringEndpoint)
        for rank in members.indices {
            let setup = ControlMessage.Setup(rank: rank, worldSize: members.count, configuration: configuration,
                                             batchNorm: options.batchNorm, ringEndpoints: endpoints,
                                             parameterCount: state.parameters.count, stateCount: state.state.count,
                                             checkEvery: options.checkEvery)
            try channel(rank).send(.setup, setup, binary: FloatCoding.bytes(state), identity: members[rank].identity)
        }
        _ = try collect(.ready, step: 0, timeout: options.rendezvousTimeout, what: "workers to set up")
        log("coordinator: \(members.count) worker(s) ready, batch norm \(options.batchNorm.rawValue)")
    }

    // MARK: E-G steps, evaluation, state

    /// Contiguous shards of `count` items, sizes differing by at most one (larger first).
    public static func shards(count: Int, workers: Int) -> [Range<Int>] {
        (0..<workers).map { r in
            let base = count / workers, extra = count % workers
            let start = r * base + min(r, extra)
            return start..<(start + base + (r < extra ? 1 : 0))
        }
    }

    public func step(_ step: Int, samples: [TrainingSample], learningRate: Float) throws -> StepStatistics {
        let reportHash = (step + 1) % options.checkEvery == 0 || step + 1 == configuration.iterations
        for (rank, shard) in Self.shards(count: samples.count, workers: members.count).enumerated() {
            let command = ControlMessage.Step(step: step, learningRate: learningRate, globalBatch: samples.count,
                                              samples: Array(samples[shard]), reportHash: reportHash)
            try channel(rank).send(.step, command, step: step, identity: members[rank].identity)
        }
        let replies = try collect(.result, step: step, timeout: options.stepTimeout, what: "step \(step + 1)")
        var total = StepStatistics()
        var hashes: [String?] = []
        for reply in replies {
            let (result, _) = try reply.body(ControlMessage.Result.self, source: "a worker")
            total = total.merged(with: result.statistics)
            hashes.append(result.parameterHash)
        }
        if reportHash, let reference = hashes[0] {
            for (rank, hash) in hashes.enumerated() where hash != reference {
                throw ClusterError.diverged("after step \(step + 1), \(members[rank].name) (rank \(rank)) has parameters "
                    + "\(hash ?? "none"), rank 0 has \(reference)")
            }
        }
        return total
    }

    public func evaluate(_ split: EvaluationSplit) throws -> Evaluation {
        let count = split == .test ? (dataset?.testImages ?? 0) : configuration.validation
        for (rank, shard) in Self.shards(count: count, workers: members.count).enumerated() {
            let command = ControlMessage.Evaluate(split: split, start: shard.lowerBound, end: shard.upperBound)
            try channel(rank).send(.evaluate, command, identity: members[rank].identity)
        }
        return try collect(.evaluation, step: 0, timeout: options.stepTimeout, what: "\(split) evaluation")
            .reduce(Evaluation()) { $0.merged(with: try $1.body(Evaluation.self, source: "a worker").0) }
    }

    public func state() throws -> ModelState {
        try channel(0).send(.stateRequest, ControlMessage.Empty(), identity: members[0].identity)
        let reply = try collect(.state, step: 0, timeout: options.stepTimeout, what: "the model state", ranks: [0])[0]
        let (_, binary) = try reply.body(ControlMessage.Empty.self, source: members[0].name)
        let architecture = try configuration.architecture()
        return try FloatCoding.state(binary, parameterCount: architecture.parameterCount,
                                     stateCount: 2 * architecture.convolutions.reduce(0) { $0 + $1.outChannels },
                                     source: members[0].name)
    }

    /// Tells every worker to stop and waits (briefly) for their acknowledgements, so that the
    /// message is delivered before the socket closes. Best effort: used on success and on failure.
    public func stop(reason: String) {
        for rank in members.indices {
            try? channel(rank).send(.stop, ControlMessage.Stop(reason: reason), identity: members[rank].identity, timeout: 2)
        }
        _ = try? collect(.stop, step: 0, timeout: 5, what: "workers to acknowledge the stop")
        socket.close()
    }

    // MARK: receiving

    /// One reply of `kind` from each rank in `ranks` (default: all), in rank order. A `failure`
    /// from a worker, a dead local worker or the deadline ends the wait with an error naming it.
    private func collect(_ kind: MessageKind, step: Int, timeout: Double, what: String, ranks: [Int]? = nil) throws -> [Received] {
        let wanted = ranks ?? Array(members.indices)
        var replies = [Int: Received]()
        let deadline = monotonicSeconds() + timeout
        while replies.count < wanted.count {
            let missing = wanted.filter { replies[$0] == nil }.map { members[$0].name }
            guard let received = try next(until: deadline, timeout: timeout,
                                          waitingFor: "\(what) from \(missing.joined(separator: ", "))") else {
                continue
            }
            guard let rank = members.firstIndex(where: { $0.identity == received.identity }) else {
                log("coordinator: ignored \(received.message.header.kind) from an unknown peer")
                continue
            }
            let header = received.message.header
            if header.kind == .failure {
                let (failure, _) = try received.body(ControlMessage.Failure.self, source: members[rank].name)
                throw ClusterError.workerFailed(members[rank].name, failure.message)
            }
            guard header.runID == runID, header.kind == kind, header.step == UInt64(step), wanted.contains(rank) else {
                log("coordinator: ignored \(header.kind) (step \(header.step)) from \(members[rank].name) while waiting for \(what)")
                continue
            }
            if replies[rank] != nil {
                log("coordinator: ignored a duplicate \(kind) from \(members[rank].name)")
                continue
            }
            replies[rank] = received
        }
        return wanted.map { replies[$0]! }
    }

    /// The next decodable message, nil after a one-second slice without one; throws at the deadline.
    private func next(until deadline: Double, timeout: Double, waitingFor what: String) throws -> Received? {
        if let dead = liveness() { throw ClusterError.workerFailed(dead, "exited while the coordinator waited for \(what)") }
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else { throw TransportError.timeout(what, seconds: timeout) }
        guard let frames = try socket.receive(timeout: min(remaining, 1)) else { return nil }
        do {
            guard frames.count == 2 else { throw TransportError.malformed("\(frames.count) frames (expected identity + message)") }
            let message = try WireMessage.decode(frames[1], from: "peer \(peerName(frames[0]))")
            if message.header.kind != .hello && message.header.runID != runID {
                throw TransportError.unexpected("\(message.header.kind) of another run (\(hex(message.header.runID)))")
            }
            return Received(identity: frames[0], message: message)
        } catch let error as TransportError {
            log("coordinator: \(error)")
            return nil
        }
    }
}

/// A printable name for a ZeroMQ routing id (ours are UUIDs; others are arbitrary bytes).
func peerName(_ identity: [UInt8]) -> String {
    if let text = String(validating: identity, as: UTF8.self), text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) {
        return String(text.prefix(8))
    }
    return identity.prefix(8).map { String(format: "%02x", $0) }.joined()
}

public enum ClusterError: Error, CustomStringConvertible {
    case datasetMismatch(String)
    case workerFailed(String, String)
    case diverged(String)

    public var description: String {
        switch self {
        case .datasetMismatch(let reason): "workers disagree about the dataset: \(reason)"
        case .workerFailed(let worker, let reason): "\(worker) failed: \(reason)"
        case .diverged(let reason): "replicas diverged: \(reason)"
        }
    }
}
