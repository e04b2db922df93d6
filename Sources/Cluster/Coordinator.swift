import Foundation
import Models
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

        public init(listen: String, workers: Int, minWorkers: Int? = nil, maxWorkers: Int? = nil,
                    batchNorm: ControlMessage.BatchNormMode = .sync, rendezvousTimeout: Double = 300,
                    stepTimeout: Double = 120, heartbeatTimeout: Double = 2, checkEvery: Int = 50, injectFaults: String? = nil) {
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

    private final class Member {
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
    private struct MembershipChanged: Error {}

    public let options: Options
    public let configuration: TrainingConfiguration
    public let runID: UInt64
    /// The resolved listening endpoint (with the port chosen for `tcp://host:*`).
    public let endpoint: String
    public private(set) var dataset: ControlMessage.DatasetInfo?
    private let context: ZMQContext
    private let socket: ZMQSocket
    private let authenticator: ZAPAuthenticator?
    private let handshake: HandshakeMonitor?
    private let hostName = ProcessInfo.processInfo.hostName
    private var members: [Member] = []
    private var pending: [Member] = []
    private var epoch: UInt32 = 0
    private var sequence: UInt32 = 0
    private var needsReform = true
    private var completedSteps = 0
    /// The last model state the coordinator saw (initial, or fetched for a checkpoint).
    private var savedState: (step: Int, state: ModelState)?
    /// When the first member was lost since the last completed step (for `recovered`).
    private var firstLoss: Double?
    private var lastRejoin: [String: Double] = [:]
    /// Heartbeat tokens of removed workers, so that only the removed worker itself is told to rejoin.
    private var removedTokens: [String: String] = [:]
    /// Set by `stop`: workers that acknowledged and exited are not "lost".
    private var stopping = false
    private let log: (String) -> Void
    /// Called while waiting; returns the PIDs of local worker processes that have exited.
    public var liveness: () -> Set<Int32> = { [] }
    /// Polled while waiting for the first workers to join: true ends the wait with `interrupted`
    /// (before any step, so nothing is lost; a pause mid-run keeps waiting for its state's sake).
    public var shouldStop: () -> Bool = { false }
    /// Told of every membership event.
    public var onEvent: (Event) -> Void = { _ in }

    public init(options: Options, configuration: TrainingConfiguration, log: @escaping (String) -> Void) throws {
        precondition(options.workers >= 1 && options.minWorkers >= 1, "at least one worker")
        guard options.workers <= configuration.batchSize else {
            throw ClusterError.configuration("--workers \(options.workers) is more than the \(configuration.batchSize) images of a batch: "
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

    private func channel(_ member: Member) -> ControlChannel {
        ControlChannel(socket: socket, runID: runID, sender: -1, peerName: member.name)
    }

    private func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    private func emit(_ event: String, worker: Member? = nil, reason: String? = nil, seconds: Double? = nil) {
        onEvent(Event(time: Date().timeIntervalSince1970, event: event, step: completedSteps + 1, worker: worker?.hello.workerID,
                      pid: worker?.hello.pid, reason: reason, epoch: epoch, workers: members.count, seconds: seconds))
    }

    // MARK: A-D membership

    /// Waits for `options.workers` workers, checks their datasets agree, and sets them up with
    /// `state`, the model after `startStep` steps.
    public func rendezvous(state: ModelState, startStep: Int = 0) throws {
        completedSteps = startStep
        savedState = (startStep, state)
        let deadline = monotonicSeconds() + options.rendezvousTimeout
        log("coordinator: waiting for \(options.workers) worker(s) on \(endpoint)")
        while agreeingPendingCount < options.workers {
            // A local worker that exits now (bad data, bad flags) will not join: fail at once, not
            // after the whole rendezvous timeout.
            if shouldStop() { throw ClusterError.interrupted("while waiting for workers to join") }
            if let gone = liveness().min() {
                throw ClusterError.workerFailed("local worker (pid \(gone))", "it exited before all workers joined (its error is above)")
            }
            _ = try next(until: deadline, timeout: options.rendezvousTimeout,
                         waitingFor: "\(options.workers - pending.count) more worker(s) to join")
        }
        try prepareMembership()
        log("coordinator: \(members.count) worker(s) ready, batch norm \(options.batchNorm.rawValue)")
    }

    /// At a step boundary: admits waiting workers, pauses while there are fewer than the minimum,
    /// and forms a new ring when the membership changed.
    private func prepareMembership() throws {
        var pausedAt: Double?
        var lastStatus = 0.0
        while true {
            // More members than images would leave a worker an empty shard.
            let room = min(options.maxWorkers, configuration.batchSize) - members.count
            if room > 0 && !pending.isEmpty {
                if dataset == nil { settleDataset() }
                let admitted = pending.prefix(room)
                pending.removeFirst(admitted.count)
                members += admitted
                needsReform = true
            }
            if members.count < options.minWorkers {
                let now = monotonicSeconds()
                if pausedAt == nil {
                    pausedAt = now
                    emit("paused", reason: "\(members.count) of at least \(options.minWorkers) workers")
                }
                if now - lastStatus >= 10 {
                    lastStatus = now
                    log("coordinator: paused before step \(completedSteps + 1): \(members.count) worker(s), "
                        + "--min-workers \(options.minWorkers); waiting for workers to join \(endpoint)")
                }
                _ = try next(until: pausedAt! + options.rendezvousTimeout, timeout: options.rendezvousTimeout,
                             waitingFor: "\(options.minWorkers - members.count) more worker(s) (--min-workers \(options.minWorkers))")
                continue
            }
            if pausedAt != nil {
                emit("resumed")
                pausedAt = nil
            }
            guard needsReform else { return }
            do {
                try reform()
                return
            } catch is MembershipChanged {
                continue
            }
        }
    }

    /// A new epoch: every member gets its rank and the ring; members that hold the model undo an
    /// unfinished step, new members receive the model; all must then agree on the parameters.
    private func reform() throws {
        epoch += 1
        let request = nextSequence()
        let endpoints = members.map(\.hello.ringEndpoint)
        let ringKeys = options.curve == nil ? nil : members.map { $0.hello.publicKey ?? "" }
        let holders = members.filter(\.hasState), joiners = members.filter { !$0.hasState }
        func setup(_ member: Member) -> ControlMessage.Setup {
            let rank = members.firstIndex { $0 === member }!
            return ControlMessage.Setup(nextStep: completedSteps, rank: rank, worldSize: members.count, configuration: configuration,
                                        batchNorm: options.batchNorm, ringEndpoints: endpoints, ringKeys: ringKeys,
                                        parameterCount: savedState!.state.parameters.count, stateCount: savedState!.state.state.count,
                                        checkEvery: options.checkEvery)
        }
        for member in holders { try send(.setup, setup(member), to: member, sequence: request) }
        var readies = try collect(.ready, from: holders, sequence: request, timeout: options.stepTimeout,
                                  what: "workers to set up for epoch \(epoch)")
        if !joiners.isEmpty {
            let state: ModelState
            if let savedState, savedState.step == completedSteps {
                state = savedState.state
            } else if let holder = holders.first {
                state = try fetchState(from: holder)
            } else {
                throw ClusterError.stateLost("every worker holding the model after step \(completedSteps) was lost; "
                    + "continue from the latest checkpoint with --resume")
            }
            let bytes = FloatCoding.bytes(state)
            for member in joiners { try send(.setup, setup(member), binary: bytes, to: member, sequence: request) }
            // New members load the dataset and build the model first.
            readies += try collect(.ready, from: joiners, sequence: request, timeout: max(options.stepTimeout, 30),
                                   what: "new workers to set up for epoch \(epoch)")
        }
        let all = holders + joiners
        let reference = try readies[0].body(ControlMessage.Ready.self, source: all[0].name).0
        for (member, reply) in zip(all, readies) {
            let ready = try reply.body(ControlMessage.Ready.self, source: member.name).0
            if ready.completedSteps != completedSteps || ready.parameterHash != reference.parameterHash {
                lose(member, reason: "after \(ready.completedSteps) steps has parameters \(ready.parameterHash); expected "
                     + "\(completedSteps) steps and \(reference.parameterHash)")
                throw MembershipChanged()
            }
            member.hasState = true
        }
        needsReform = false
        log("coordinator: epoch \(epoch): \(members.count) worker(s) from step \(completedSteps + 1) "
            + "(\(joiners.count) new); parameters \(reference.parameterHash)")
        emit("membership")
    }

    private func fetchState(from member: Member) throws -> ModelState {
        let request = nextSequence()
        try send(.stateRequest, ControlMessage.Empty(), to: member, sequence: request)
        let reply = try collect(.state, from: [member], sequence: request, timeout: options.stepTimeout, what: "the model state")[0]
        let (_, binary) = try reply.body(ControlMessage.Empty.self, source: member.name)
        let architecture = try configuration.architecture()
        return try FloatCoding.state(binary, parameterCount: architecture.parameterCount,
                                     stateCount: architecture.stateCount,
                                     source: member.name)
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
    private func withMembers<T>(_ operation: () throws -> T) throws -> T {
        var attempts = 0
        while true {
            try prepareMembership()
            do { return try operation() } catch is MembershipChanged {
                attempts += 1
                // Losses end when workers run out; retries after lost messages must end too.
                guard attempts < Self.maximumAttempts else {
                    throw ClusterError.noProgress("step \(completedSteps + 1) failed \(attempts) times in a row; "
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
            for (rank, shard) in Self.shards(count: samples.count, workers: ranks.count).enumerated() {
                let command = ControlMessage.Step(step: step, learningRate: learningRate, globalBatch: samples.count,
                                                  samples: Array(samples[shard]), reportHash: reportHash)
                try send(.step, command, step: step, to: ranks[rank], sequence: request)
            }
            let replies = try collect(.result, from: ranks, sequence: request, timeout: options.stepTimeout, what: "step \(step + 1)")
            var total = StepStatistics()
            var hashes: [String?] = []
            for (member, reply) in zip(ranks, replies) {
                let (result, _) = try reply.body(ControlMessage.Result.self, source: member.name)
                total = total.merged(with: result.statistics)
                hashes.append(result.parameterHash)
            }
            if reportHash, let reference = hashes[0] {
                for (rank, hash) in hashes.enumerated() where hash != reference {
                    throw ClusterError.diverged("after step \(step + 1), \(ranks[rank].name) (rank \(rank)) has parameters "
                        + "\(hash ?? "none"), rank 0 has \(reference)")
                }
            }
            guard total.images == samples.count else {
                throw ClusterError.diverged("step \(step + 1): workers reported \(total.images) images of \(samples.count)")
            }
            completedSteps = step + 1
            if let firstLoss {
                let seconds = monotonicSeconds() - firstLoss
                log("coordinator: recovered: step \(step + 1) done by \(ranks.count) worker(s), "
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
            for (rank, shard) in Self.shards(count: count, workers: ranks.count).enumerated() {
                let command = ControlMessage.Evaluate(split: split, start: shard.lowerBound, end: shard.upperBound)
                try send(.evaluate, command, to: ranks[rank], sequence: request)
            }
            // An evaluation is forward passes only, about a third of a training image's work each.
            let timeout = options.stepTimeout * (1 + Double(count) / Double(configuration.batchSize) / 3)
            return try collect(.evaluation, from: ranks, sequence: request, timeout: timeout, what: "\(split) evaluation")
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

    // MARK: sending and receiving

    private func send<T: Encodable>(_ kind: MessageKind, _ body: T, binary: [UInt8] = [], step: Int = 0, to member: Member,
                                    sequence: UInt32, timeout: Double = 30) throws {
        do {
            try channel(member).send(kind, body, binary: binary, step: step, epoch: epoch, sequence: sequence,
                                     identity: member.identity, timeout: timeout)
        } catch let error as TransportError {
            guard kind != .stop else { throw error }
            lose(member, reason: "could not send \(kind): \(error)")
            throw MembershipChanged()
        }
    }

    /// Removes a member (or a waiting worker) and records why.
    private func lose(_ member: Member, reason: String) {
        if removedTokens.count >= 4096 { removedTokens.removeAll() }   // bounded under a flood of joins
        removedTokens[member.hello.workerID] = member.hello.heartbeatToken
        if let index = members.firstIndex(where: { $0 === member }) {
            members.remove(at: index)
            needsReform = true
            firstLoss = firstLoss ?? monotonicSeconds()
            log("coordinator: lost \(member.name), rank \(index), during step \(completedSteps + 1): \(reason); "
                + "\(members.count) worker(s) left")
            emit("lost", worker: member, reason: reason)
        } else if let index = pending.firstIndex(where: { $0 === member }) {
            pending.remove(at: index)
            log("coordinator: \(member.name) left before it was admitted: \(reason)")
        }
    }

    /// One reply of `kind` to request `sequence` from each of `wanted`, in that order. A member
    /// lost meanwhile, a failure report, or the deadline throws `MembershipChanged` after
    /// removing whoever is to blame.
    private func collect(_ kind: MessageKind, from wanted: [Member], sequence: UInt32, timeout: Double, what: String) throws -> [Received] {
        var replies = [ObjectIdentifier: Received]()
        let deadline = monotonicSeconds() + timeout
        while replies.count < wanted.count {
            if wanted.contains(where: { member in !members.contains { $0 === member } }) { throw MembershipChanged() }
            let missing = wanted.filter { replies[ObjectIdentifier($0)] == nil }
            let received: Received?
            do {
                received = try next(until: deadline, timeout: timeout, waitingFor: "\(what) from \(missing.map(\.name).joined(separator: ", "))")
            } catch let error as TransportError {
                guard case .timeout = error else { throw error }
                // Everyone who is computing instead of waiting on the ring is hung; when all
                // wait, a message was lost: run the step again at a new epoch.
                let suspects = missing.filter { !$0.waiting }
                for member in suspects { lose(member, reason: "no reply to \(what) within \(timeout) s while computing (hung?)") }
                if suspects.isEmpty {
                    log("coordinator: no reply to \(what) within \(timeout) s from \(missing.map(\.name).joined(separator: ", ")), "
                        + "all waiting: a message was lost; starting again at a new epoch")
                    needsReform = true
                    firstLoss = firstLoss ?? monotonicSeconds()
                    emit("retry", reason: "\(what): no reply within \(timeout) s, all waiting")
                }
                throw MembershipChanged()
            }
            guard let received else { continue }
            guard let member = members.first(where: { $0.identity == received.identity }) else {
                log("coordinator: ignored \(received.header.kind) from \(peerName(received.identity)), not a member")
                continue
            }
            let header = received.header
            if header.kind == .failure {
                let reason = (try? received.body(ControlMessage.Failure.self, source: member.name).0.message) ?? "undecodable failure"
                lose(member, reason: "reported failure: \(reason)")
                throw MembershipChanged()
            }
            guard header.kind == kind, header.epoch == epoch, header.sequence == sequence,
                  wanted.contains(where: { $0 === member }) else {
                log("coordinator: ignored \(header.kind) (epoch \(header.epoch), request \(header.sequence)) from \(member.name) "
                    + "while waiting for \(what)")
                continue
            }
            if replies[ObjectIdentifier(member)] != nil {
                log("coordinator: ignored a duplicate \(kind) from \(member.name)")
                continue
            }
            replies[ObjectIdentifier(member)] = received
        }
        return wanted.map { replies[ObjectIdentifier($0)]! }
    }

    /// The next message for the caller, nil after a short slice without one; throws at the
    /// deadline. Handles on the way: liveness and heartbeat checks, heartbeats, hellos, and
    /// malformed or foreign frames (logged and dropped).
    private func next(until deadline: Double, timeout: Double, waitingFor what: String) throws -> Received? {
        sweep()
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else { throw TransportError.timeout(what, seconds: timeout) }
        guard let frames = try socket.receive(timeout: min(remaining, 0.1)) else { return nil }
        do {
            guard frames.count == 2 else { throw TransportError.malformed("\(frames.count) frames (expected identity + message)") }
            let source = "peer \(peerName(frames[0]))"
            let message = try WireMessage.decode(frames[1], from: source)
            let received = Received(identity: frames[0], message: message)
            switch message.header.kind {
            case .heartbeat:
                try heartbeat(received, source: source)
                return nil
            case .hello:
                try hello(received, source: source)
                return nil
            default:
                guard message.header.runID == runID else {
                    throw TransportError.unexpected("\(message.header.kind) of another run (\(hex(message.header.runID)))")
                }
                if let member = members.first(where: { $0.identity == received.identity }) { member.lastSeen = monotonicSeconds() }
                return received
            }
        } catch let error as TransportError {
            log("coordinator: \(error)")
            return nil
        }
    }

    private func heartbeat(_ received: Received, source: String) throws {
        guard received.header.runID == runID || received.header.runID == 0 else {
            throw TransportError.unexpected("heartbeat of another run (\(hex(received.header.runID)))")
        }
        let (beat, _) = try received.body(ControlMessage.Heartbeat.self, source: source)
        let answer = WireMessage(WireHeader(kind: .heartbeat, runID: runID, epoch: epoch, sender: -1)).encoded()
        try? socket.send([received.identity, answer], timeout: 0, to: source)
        let id = Array(beat.workerID.utf8)
        if let member = (members + pending).first(where: { $0.identity == id }) {
            // Only the worker itself knows its token: a beat in its name from anyone else (e.g.
            // replayed after it died) must not keep it alive.
            guard beat.token == member.hello.heartbeatToken else {
                throw TransportError.unexpected("heartbeat from \(source) for \(member.name) without its token: ignored")
            }
            member.lastSeen = monotonicSeconds()
            member.waiting = beat.waiting
        } else if received.header.runID == runID, removedTokens[beat.workerID] == beat.token,
                  monotonicSeconds() - (lastRejoin[beat.workerID] ?? 0) > 1 {
            // A worker of this run that was removed (e.g. it was frozen): tell it to join again.
            lastRejoin[beat.workerID] = monotonicSeconds()
            let rejoin = WireMessage(WireHeader(kind: .rejoin, runID: runID, epoch: epoch, sender: -1)).encoded()
            try? socket.send([id, rejoin], timeout: 0, to: source)
        }
    }

    private func hello(_ received: Received, source: String) throws {
        let (hello, _) = try received.body(ControlMessage.Hello.self, source: source)
        guard Array(hello.workerID.utf8) == received.identity else {
            throw TransportError.unexpected("hello from \(source) names worker \(hello.workerID.prefix(8)), not itself")
        }
        // Every field is checked before any of it is trusted: a hostile hello is refused, never fatal.
        if let problem = hello.problem(validation: configuration.validation) {
            throw TransportError.unexpected("hello from \(source) refused: \(problem)")
        }
        // Only admitted members define the run's dataset: a waiting peer must not decide it.
        if let dataset, dataset != hello.dataset {
            refuse(received.identity, host: hello.host, pid: hello.pid, dataset: hello.dataset, source: source)
            return
        }
        if let curve = options.curve, !(hello.publicKey.map(curve.authorized.contains) ?? false) {
            throw TransportError.unexpected("hello from \(source) announces a ring key that is not authorized")
        }
        if let old = (members + pending).first(where: { $0.identity == received.identity }) {
            lose(old, reason: "it joined again")
        }
        let member = Member(identity: received.identity, hello: hello)
        pending.append(member)
        log("coordinator: \(member.name) joined; it takes part from the next step boundary")
        emit("joined", worker: member)
    }

    /// Waiting workers that agree about the dataset: all of them once the run has one, else the
    /// largest group with the same dataset.
    private var agreeingPendingCount: Int {
        if dataset != nil { return pending.count }
        return Dictionary(grouping: pending, by: { $0.hello.dataset }).values.map(\.count).max() ?? 0
    }

    /// The first admission fixes the run's dataset: that of most waiting workers (the earliest
    /// to join on a tie). Waiting workers with another are refused.
    private func settleDataset() {
        let groups = Dictionary(grouping: pending, by: { $0.hello.dataset })
        guard let chosen = pending.map(\.hello.dataset).max(by: { groups[$0]!.count < groups[$1]!.count }) else { return }
        dataset = chosen
        for member in pending where member.hello.dataset != chosen {
            pending.removeAll { $0 === member }
            refuse(member.identity, host: member.hello.host, pid: member.hello.pid, dataset: member.hello.dataset,
                   source: member.name)
        }
    }

    private func refuse(_ identity: [UInt8], host: String, pid: Int32, dataset refused: ControlMessage.DatasetInfo, source: String) {
        log("coordinator: refused worker on \(host) (pid \(pid)): its dataset \(refused) differs from \(dataset!)")
        let body = try? ControlPayload.encode(ControlMessage.Stop(reason: "dataset differs from the run's"))
        let stop = WireMessage(WireHeader(kind: .stop, runID: runID, sender: -1), payload: body ?? []).encoded()
        try? socket.send([identity, stop], timeout: 0, to: source)
    }

    /// Removes members and waiting workers whose process exited or whose heartbeats stopped.
    private func sweep() {
        guard !stopping else { return }
        while let failure = handshake?.failure(asServer: true) { log("coordinator: refused: \(failure)") }
        let exited = liveness()
        let now = monotonicSeconds()
        for member in members + pending {
            if member.hello.host == hostName && exited.contains(member.hello.pid) {
                lose(member, reason: "its process exited")
            } else if now - member.lastSeen > options.heartbeatTimeout {
                lose(member, reason: "no heartbeat for \(String(format: "%.1f", now - member.lastSeen)) s "
                     + "(--heartbeat-timeout \(options.heartbeatTimeout))")
            }
        }
    }
}

/// `drop 2, duplicate 0, ...` for the log.
func describe(_ faults: FaultInjector) -> String {
    let counts = faults.injected
    return FaultInjector.Fault.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ")
}

/// A printable name for a ZeroMQ routing id (ours are UUIDs; others are arbitrary bytes).
func peerName(_ identity: [UInt8]) -> String {
    if let text = String(validating: identity, as: UTF8.self), text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "/" }) {
        return String(text.prefix(8))
    }
    return identity.prefix(8).map { String(format: "%02x", $0) }.joined()
}

public enum ClusterError: Error, CustomStringConvertible {
    case datasetMismatch(String)
    case workerFailed(String, String)
    case diverged(String)
    case stateLost(String)
    case noProgress(String)
    case configuration(String)
    case interrupted(String)

    public var description: String {
        switch self {
        case .datasetMismatch(let reason): "workers disagree about the dataset: \(reason)"
        case .workerFailed(let worker, let reason): "\(worker) failed: \(reason)"
        case .diverged(let reason): "replicas diverged: \(reason)"
        case .stateLost(let reason): "the model state is lost: \(reason)"
        case .noProgress(let reason): "no progress: \(reason)"
        case .configuration(let reason): reason
        case .interrupted(let when): "interrupted \(when)"
        }
    }
}
