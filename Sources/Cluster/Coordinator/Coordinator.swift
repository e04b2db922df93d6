import Foundation
import Models
import Timing
import Training
import Transport

/// The coordinator of a distributed run (see `ControlMessage` for the protocol). It owns the
/// order of the data: it is the `TrainingExecutor` of a `Trainer`, which gives it each step's
/// global batch; it splits the batch into contiguous shards, one per worker, as evenly as
/// possible (128 over 3 = 43/43/42), and collects the results. Every wait is bounded.
///
/// Membership is elastic: a worker that exits, stops sending heartbeats, reports a failure or
/// hangs is removed, and the step is run again from its start by the survivors (with synchronized
/// batch norm and exact sums the result does not depend on how many there are). Workers that
/// join during the run are admitted at the next step boundary and receive the model.
public final class Coordinator: TrainingExecutor {
    public struct Options: Sendable {
        public var listen: String
        /// Workers to wait for before the first step.
        public var workers: Int
        /// Below this many the coordinator pauses until workers join.
        public var minWorkers: Int
        /// Workers beyond this many wait until a place is free.
        public var maxWorkers: Int
        public var batchNorm: ControlMessage.BatchNormMode
        public var rendezvousTimeout: Double
        public var stepTimeout: Double
        /// A member whose heartbeats stop for this long is declared lost.
        public var heartbeatTimeout: Double
        /// Compare the workers' parameter hashes every this many steps (and at the last step).
        public var checkEvery: Int
        /// `--inject-faults` spec for the coordinator's own messages (tests).
        public var injectFaults: String?
        /// CURVE: the coordinator's key pair and the workers' public keys it accepts.
        public var curve: (keys: CurveKeyPair, authorized: Set<String>)?

        public init(
            listen: String, workers: Int, minWorkers: Int? = nil, maxWorkers: Int? = nil,
            batchNorm: ControlMessage.BatchNormMode = .sync, rendezvousTimeout: Double,
            stepTimeout: Double = 120, heartbeatTimeout: Double = 2, checkEvery: Int = 50, injectFaults: String? = nil
        ) {
            self.listen = listen
            self.workers = workers
            self.minWorkers = minWorkers ?? 1
            self.maxWorkers = maxWorkers ?? max(workers, 64)
            self.batchNorm = batchNorm
            self.rendezvousTimeout = rendezvousTimeout
            self.stepTimeout = stepTimeout
            self.heartbeatTimeout = heartbeatTimeout
            self.checkEvery = checkEvery
            self.injectFaults = injectFaults
        }
    }

    /// A machine-readable record of a membership change (written to RUN_DIR/events.jsonl).
    public struct Event: Codable, Sendable {
        /// Seconds since 1970.
        public var time: Double
        /// joined, lost, membership, recovered, paused, resumed
        public var event: String
        /// The 1-based step in progress (or next).
        public var step: Int
        public var worker: String?
        public var pid: Int32?
        public var reason: String?
        public var epoch: UInt32?
        public var workers: Int?
        /// For `recovered`: seconds from the first loss to the completed step.
        public var seconds: Double?
    }

    final class Member {
        let identity: [UInt8]
        let hello: ControlMessage.Hello
        var lastSeen: Double
        var waiting = true
        /// Holds the model at `completedSteps` (set once it was set up).
        var hasState = false
        init(identity: [UInt8], hello: ControlMessage.Hello) {
            self.identity = identity
            self.hello = hello
            lastSeen = monotonicSeconds()
        }
        var name: String { "worker \(hello.workerID.prefix(8)) (\(hello.host) pid \(hello.pid))" }
    }

    /// The operation in progress must start again: the membership changed.
    struct MembershipChanged: Error {}

    public let options: Options
    public let configuration: TrainingConfiguration
    public let runID: UInt64
    /// The resolved listening endpoint (with the port chosen for `tcp://host:*`).
    public let endpoint: String
    public internal(set) var dataset: ControlMessage.DatasetInfo?
    let context: ZMQContext
    let socket: ZMQSocket
    let authenticator: ZAPAuthenticator?
    let handshake: HandshakeMonitor?
    let hostName = ProcessInfo.processInfo.hostName
    var members: [Member] = []
    var pending: [Member] = []
    var epoch: UInt32 = 0
    var sequence: UInt32 = 0
    var needsReform = true
    var completedSteps = 0
    /// The last model state the coordinator saw (initial, or fetched for a checkpoint).
    var savedState: (step: Int, state: ModelState)?
    /// When the first member was lost since the last completed step (for `recovered`).
    var firstLoss: Double?
    var lastRejoin: [String: Double] = [:]
    /// Heartbeat tokens of removed workers, so that only the removed worker itself is told to rejoin.
    var removedTokens: [String: String] = [:]
    /// Set by `stop`: workers that acknowledged and exited are not "lost".
    var stopping = false
    let log: (String) -> Void
    /// Called while waiting; returns the PIDs of local worker processes that have exited.
    public var liveness: () -> Set<Int32> = { [] }
    /// Polled while waiting for workers: true ends the wait with `interrupted` before the first
    /// step, or in a pause where no member holds the model (nothing to save); a pause whose
    /// members hold the model keeps waiting for its state's sake.
    public var shouldStop: () -> Bool = { false }
    /// Told of every membership event.
    public var onEvent: (Event) -> Void = { _ in }

    public init(options: Options, configuration: TrainingConfiguration, log: @escaping (String) -> Void) throws {
        precondition(options.workers >= 1 && options.minWorkers >= 1, "at least one worker")
        guard options.workers <= configuration.batchSize else {
            throw ClusterError.configuration(
                "--workers \(options.workers) is more than the \(configuration.batchSize) images of a batch: "
                    + "every worker needs at least one image per step")
        }
        self.options = options
        self.configuration = configuration
        self.log = log
        var rng = SystemRandomNumberGenerator()
        runID = rng.next()
        context = try ZMQContext()
        socket = try ZMQSocket(context, kind: .router, lingerMilliseconds: 1000)
        socket.faults = try options.injectFaults.map { try FaultInjector(spec: $0) }
        if let curve = options.curve {
            let write: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("coordinator: \($0)\n".utf8)) }
            authenticator = try ZAPAuthenticator(context: context, authorized: curve.authorized, log: write)
            try socket.makeCurveServer(curve.keys)
            handshake = try HandshakeMonitor(context, watching: socket, name: "coordinator")
        } else {
            authenticator = nil
            handshake = nil
        }
        endpoint = try socket.bind(options.listen)
    }

    public var trainImages: Int { (dataset?.trainImages ?? 0) - configuration.validation }
    public var workerCount: Int { members.count }

    func channel(_ member: Member) -> ControlChannel {
        ControlChannel(socket: socket, runID: runID, sender: -1, peerName: member.name)
    }

    func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    func emit(_ event: String, worker: Member? = nil, reason: String? = nil, seconds: Double? = nil) {
        onEvent(
            Event(
                time: Date().timeIntervalSince1970, event: event, step: completedSteps + 1, worker: worker?.hello.workerID,
                pid: worker?.hello.pid, reason: reason, epoch: epoch, workers: members.count, seconds: seconds))
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

    /// Runs `operation` on the current members, again (after re-forming the ring) whenever the
    /// membership changes under it.
    func withMembers<T>(_ operation: () throws -> T) throws -> T {
        var attempts = 0
        while true {
            try prepareMembership()
            do { return try operation() } catch is MembershipChanged {
                attempts += 1
                // Losses end when workers run out; retries after lost messages must end too.
                guard attempts < Self.maximumAttempts else {
                    throw ClusterError.noProgress(
                        "step \(completedSteps + 1) failed \(attempts) times in a row; "
                            + "see the log for each reason")
                }
            }
        }
    }

    /// How often one operation may start again before the run stops.
    static let maximumAttempts = 20

    public func step(_ step: Int, samples: [TrainingSample], learningRate: Float) throws -> StepStatistics {
        precondition(step == completedSteps, "step \(step) after \(completedSteps)")
        let reportHash = (step + 1) % options.checkEvery == 0 || step + 1 == configuration.iterations
        return try withMembers {
            let request = nextSequence()
            let ranks = members
            let shards = Self.shards(count: samples.count, workers: ranks.count)
            for (rank, shard) in shards.enumerated() {
                let command = ControlMessage.Step(
                    step: step, learningRate: learningRate, globalBatch: samples.count,
                    samples: Array(samples[shard]), reportHash: reportHash)
                try send(.step, command, step: step, to: ranks[rank], sequence: request)
            }
            let replies = try collect(.result, from: ranks, sequence: request, timeout: options.stepTimeout, what: "step \(step + 1)") {
                rank, reply in
                reply.problem(ControlMessage.Result.self) { result, _ in
                    result.problem(images: shards[rank].count, hashRequested: reportHash)
                }
            }
            var total = StepStatistics()
            var hashes: [String?] = []
            for (member, reply) in zip(ranks, replies) {
                let (result, _) = try reply.body(ControlMessage.Result.self, source: member.name)
                total = total.merged(with: result.statistics)
                hashes.append(result.parameterHash)
            }
            if reportHash, let reference = hashes[0] {
                for (rank, hash) in hashes.enumerated() where hash != reference {
                    throw ClusterError.diverged(
                        "after step \(step + 1), \(ranks[rank].name) (rank \(rank)) has parameters "
                            + "\(hash ?? "none"), rank 0 has \(reference)")
                }
            }
            guard total.images == samples.count else {
                throw ClusterError.diverged("step \(step + 1): workers reported \(total.images) images of \(samples.count)")
            }
            completedSteps = step + 1
            if let firstLoss {
                let seconds = monotonicSeconds() - firstLoss
                log(
                    "coordinator: recovered: step \(step + 1) done by \(ranks.count) worker(s), "
                        + "\(String(format: "%.2f", seconds)) s after the first loss")
                self.firstLoss = nil
                emit("recovered", seconds: seconds)
            }
            return total
        }
    }

    public func evaluate(_ split: EvaluationSplit) throws -> Evaluation {
        let count = split == .test ? (dataset?.testImages ?? 0) : configuration.validation
        return try withMembers {
            let request = nextSequence()
            let ranks = members
            let shards = Self.shards(count: count, workers: ranks.count)
            for (rank, shard) in shards.enumerated() {
                let command = ControlMessage.Evaluate(split: split, start: shard.lowerBound, end: shard.upperBound)
                try send(.evaluate, command, to: ranks[rank], sequence: request)
            }
            // An evaluation is forward passes only, about a third of a training image's work each.
            let timeout = options.stepTimeout * (1 + Double(count) / Double(configuration.batchSize) / 3)
            return try collect(.evaluation, from: ranks, sequence: request, timeout: timeout, what: "\(split) evaluation") {
                rank, reply in reply.problem(Evaluation.self) { evaluation, _ in evaluation.problem(range: shards[rank]) }
            }
            .reduce(Evaluation()) { $0.merged(with: try $1.body(Evaluation.self, source: "a worker").0) }
        }
    }

    public func state() throws -> ModelState {
        let state = try withMembers { try fetchState(from: members[0]) }
        savedState = (completedSteps, state)
        return state
    }

    /// Tells every worker (members and those waiting to join) to stop and waits briefly for
    /// their acknowledgements, so that the message is delivered before the socket closes.
    public func stop(reason: String) {
        stopping = true
        let everyone = members + pending
        let request = nextSequence()
        for member in everyone {
            try? send(.stop, ControlMessage.Stop(reason: reason), to: member, sequence: request, timeout: 2)
        }
        if let faults = socket.faults { log("coordinator: injected faults: \(describe(faults))") }
        var acknowledged = Set<[UInt8]>()
        let deadline = monotonicSeconds() + 5
        while acknowledged.count < everyone.count, monotonicSeconds() < deadline {
            guard let received = try? next(until: deadline, timeout: 5, waitingFor: "stop acknowledgements") else { continue }
            if received.header.kind == .stop { acknowledged.insert(received.identity) }
        }
        socket.close()
        authenticator?.stop()
    }
}
