import CIFAR
import Collectives
import Foundation
import TensorCore
import Timing
import Training
import Transport

/// A worker process: joins a coordinator, receives its rank, configuration and the model state,
/// then computes its share of every step with the same engine as single-process training and
/// all-reduces gradients (and batch-norm statistics) with its ring neighbours. It survives
/// membership changes (see `ControlMessage`): a new epoch aborts the current step, rolls the
/// model back to the step's start, and the step is run again in the new ring.
public final class Worker {
    /// Thrown inside a step when the coordinator moved on (new epoch, rejoin or stop).
    private struct Interrupted: Error {}

    private let options: Options
    private let log: @Sendable (String) -> Void
    private let workerID: String
    private let heartbeatToken: String
    // The connections, made by `init`: they exist for the worker's whole life.
    private let context: ZMQContext
    private let faults: FaultInjector?
    private let ringSocket: ZMQSocket
    private let ringEndpoint: String
    private let control: ZMQSocket
    private var channel: ControlChannel
    private let heartbeat: HeartbeatSender
    private let authenticator: ZAPAuthenticator?
    private let handshake: HandshakeMonitor
    private var session: Session?
    private var member = false
    private var epoch: UInt32 = 0
    private var lastSequence: UInt32 = 0
    private var completedSteps = 0
    /// The model at the start of the step in progress (or last done), to undo a step the
    /// coordinator did not complete.
    private var snapshot: (step: Int, state: ModelState)?
    private var stash: [Received] = []
    private var faultPlanUsed = false

    /// Binds the data-plane socket and connects to the coordinator (nothing is sent before `run`).
    public init(options: Options, log: @escaping @Sendable (String) -> Void) throws {
        self.options = options
        self.log = log
        let workerID = UUID().uuidString
        var rng = SystemRandomNumberGenerator()
        let heartbeatToken = (0..<2).map { _ in String(format: "%016llx", rng.next() as UInt64) }.joined()
        self.workerID = workerID
        self.heartbeatToken = heartbeatToken
        let faults = try options.injectFaults.map { try FaultInjector(spec: $0) }
        self.faults = faults
        let context = try ZMQContext()
        self.context = context
        // With CURVE, the ring socket accepts only the current members' keys (set at each setup).
        authenticator = try options.curve.map { [context] _ in try ZAPAuthenticator(context: context, authorized: [], log: log) }
        let ringSocket = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        if let curve = options.curve { try ringSocket.makeCurveServer(curve.keys) }
        self.ringSocket = ringSocket
        ringEndpoint = try ringSocket.bind("tcp://\(options.ringHost):*")
        let control = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 2000)
        control.faults = faults
        try control.setRoutingID(Array(workerID.utf8))
        if let curve = options.curve { try control.makeCurveClient(curve.keys, serverKey: curve.coordinatorKey) }
        self.control = control
        handshake = try HandshakeMonitor(context, watching: control, name: "control")
        try control.connect(options.coordinator)
        channel = ControlChannel(socket: control, runID: 0, sender: -1, peerName: "coordinator \(options.coordinator)")
        heartbeat = HeartbeatSender(
            context: context, endpoint: options.coordinator, workerID: workerID, token: heartbeatToken,
            interval: options.heartbeatInterval, timeout: options.heartbeatTimeout, curve: options.curve, log: log)
    }

    private var name: String { member ? "worker \(workerID.prefix(8)) rank \(channel.sender)" : "worker \(workerID.prefix(8))" }

    /// Runs until the coordinator says stop. Throws with a clear reason otherwise.
    public func run() throws {
        defer { authenticator?.stop() }
        let files = try DatasetFiles.load(directory: options.dataDirectory)
        heartbeat.start()
        defer { heartbeat.stop() }
        defer {
            session?.ring.close()
            ringSocket.close()
        }
        let hello = ControlMessage.Hello(
            workerID: workerID, host: ProcessInfo.processInfo.hostName, pid: getpid(),
            ringEndpoint: ringEndpoint, dataset: files.info, publicKey: options.curve?.keys.publicKey,
            heartbeatToken: heartbeatToken)
        try sendHello(hello)
        // The hello went out on a connection the coordinator accepted: from now on its silence
        // counts, even if it dies before it answers a heartbeat.
        heartbeat.heard()
        log("worker \(workerID.prefix(8)): joined \(options.coordinator), ring endpoint \(ringEndpoint)")

        while true {
            let received = try nextCommand()
            heartbeat.waiting = false
            let header = received.header
            do {
                switch header.kind {
                case .setup:
                    try handleSetup(received, files: files)
                case .step:
                    try handleStep(received)
                case .evaluate:
                    let (command, _) = try received.body(ControlMessage.Evaluate.self, source: "coordinator")
                    let data = try setUpSession().data
                    let set = command.split == .test ? data.test : data.validation
                    if let problem = command.problem(setSize: set?.count) { throw TransportError.malformed(problem) }
                    if let set {
                        try reply(.evaluation, try setUpSession().replica.evaluate(set, range: command.start..<command.end), to: header)
                    }
                case .stateRequest:
                    try reply(.state, ControlMessage.Empty(), binary: FloatCoding.bytes(try setUpSession().replica.state()), to: header)
                case .stop:
                    let (stop, _) = try received.body(ControlMessage.Stop.self, source: "coordinator")
                    log("\(name): stopping (\(stop.reason))")
                    if let faults = control.faults { log("\(name): injected faults: \(describe(faults))") }
                    try? channel.send(.stop, ControlMessage.Empty(), epoch: header.epoch, sequence: header.sequence)
                    return
                case .rejoin:
                    log("\(name): the coordinator no longer counts this worker as a member (it was declared lost); joining again")
                    member = false
                    try sendHello(hello)
                default:
                    log("\(name): ignored unexpected \(header.kind) from the coordinator")
                }
            } catch {
                try? channel.send(.failure, ControlMessage.Failure(message: "\(name): \(error)"), epoch: epoch)
                throw error
            }
        }
    }

    /// Sends the hello, waiting (bounded by `options.timeout`) until the connection is up, and
    /// failing at once with the reason when the coordinator refuses the security handshake.
    private func sendHello(_ hello: ControlMessage.Hello) throws {
        let deadline = monotonicSeconds() + options.timeout
        while true {
            if let failure = handshake.failure() { throw WorkerError.refused(failure) }
            do {
                try channel.send(.hello, hello, timeout: 0.5)
                return
            } catch let error as TransportError {
                guard case .timeout = error, monotonicSeconds() < deadline else { throw error }
            }
        }
    }

    private func reply<T: Encodable>(_ kind: MessageKind, _ body: T, binary: [UInt8] = [], step: Int = 0, to request: WireHeader) throws {
        try channel.send(kind, body, binary: binary, step: step, epoch: request.epoch, sequence: request.sequence)
    }

    // MARK: setup (C, D)

    /// The session of the first setup; commands that need one before it are a protocol error.
    private func setUpSession() throws -> Session {
        guard let session else { throw TransportError.unexpected("a command that needs a setup came before the first one") }
        return session
    }

    private func handleSetup(_ received: Received, files: DatasetFiles) throws {
        let header = received.header
        let (setup, binary) = try received.body(ControlMessage.Setup.self, source: "coordinator")
        if let problem = setup.problem(current: session?.replica.configuration) {
            throw TransportError.malformed("the coordinator's setup: \(problem)")
        }
        if session == nil {
            let ring = ZMQCommunicator(
                context: context, runID: header.runID, incoming: ringSocket, control: control,
                timeout: options.timeout, faults: faults, curve: options.curve?.keys, log: log)
            ring.waitSpinSeconds = Double(options.waitSpinMicroseconds) / 1e6
            session = try Session(
                runID: header.runID, setup: setup, files: files, threads: options.threads, ring: ring,
                profiler: options.profileOperations ? Profiler() : nil)
            channel.runID = header.runID
            heartbeat.runID = header.runID
            ring.interrupt = { [unowned self] in try self.pollControl() }
            ring.waitChanged = { [unowned self] in self.heartbeat.waiting = $0 }
            ring.willSend = { [unowned self] in self.faultPoint(.ringSend) }
        }
        let session = try setUpSession()
        if !binary.isEmpty {
            try session.replica.load(
                FloatCoding.state(
                    binary, parameterCount: setup.parameterCount, stateCount: setup.stateCount,
                    source: "coordinator"))
            completedSteps = setup.nextStep
            snapshot = nil
        } else if completedSteps == setup.nextStep + 1, let snapshot, snapshot.step == setup.nextStep {
            // This worker finished a step that another did not: undo it, the step is run again.
            try session.replica.load(snapshot.state)
            completedSteps = setup.nextStep
            log("\(name): undid step \(setup.nextStep + 1), which the coordinator did not complete")
        } else if completedSteps != setup.nextStep {
            throw ClusterError.diverged("the coordinator continues after step \(setup.nextStep) but this worker has done \(completedSteps)")
        }
        if options.curve != nil {
            guard let keys = setup.ringKeys, keys.count == setup.worldSize, keys.allSatisfy(CurveKeys.isKey) else {
                throw TransportError.malformed("setup without the ring's CURVE keys")
            }
            authenticator?.authorized = Set(keys)
        }
        try session.ring.configure(
            rank: setup.rank, epoch: header.epoch, endpoints: setup.ringEndpoints,
            keys: options.curve != nil ? setup.ringKeys : nil)
        channel.sender = Int32(setup.rank)
        epoch = header.epoch
        lastSequence = header.sequence
        member = true
        let ready = ControlMessage.Ready(completedSteps: completedSteps, parameterHash: hex(session.replica.parameterHash))
        try reply(.ready, ready, to: header)
        log(
            "\(name)/\(setup.worldSize): ready at epoch \(epoch), step \(completedSteps + 1) (\(setup.configuration.depth) layers, "
                + "batch norm \(setup.batchNorm.rawValue), \(options.threads) threads, \(VectorUnit.compiled))")
    }

    // MARK: steps (E, F)

    private func handleStep(_ received: Received) throws {
        let session = try setUpSession()
        let (command, _) = try received.body(ControlMessage.Step.self, source: "coordinator")
        guard command.step == completedSteps else {
            throw ClusterError.diverged("asked for the step after \(command.step) steps, but this worker has done \(completedSteps)")
        }
        if let problem = command.problem(configuration: session.replica.configuration, trainImages: session.data.train.count) {
            throw TransportError.malformed("the coordinator's step \(command.step + 1): \(problem)")
        }
        let start: ModelState
        if let snapshot, snapshot.step == command.step {
            start = snapshot.state
        } else {
            start = session.replica.state()
            snapshot = (command.step, start)
        }
        session.ring.step = UInt64(command.step)
        session.sequence.reset()
        currentStep = command.step
        ringSends = 0
        heartbeat.waiting = false
        faultPoint(.compute)
        let statistics: StepStatistics
        let stepStart = monotonicSeconds()
        if let resultSent, resultSent.step == command.step - 1 { session.clock.profile.betweenStepsSeconds += stepStart - resultSent.time }
        do {
            statistics = try session.replica.step(
                on: session.data.train, samples: command.samples, globalBatch: command.globalBatch,
                learningRate: command.learningRate, synchronizer: session.synchronizer)
        } catch is Interrupted {
            session.clock.profile = PhaseProfile()
            session.replica.pool.profiler?.reset()
            // Forward already moved the running statistics: back to the step's start.
            try session.replica.load(start)
            log("\(name): step \(command.step + 1) aborted by the coordinator (epoch \(epoch))")
            return
        }
        completedSteps += 1
        let result = ControlMessage.Result(
            statistics: statistics,
            parameterHash: command.reportHash ? hex(session.replica.parameterHash) : nil)
        try reply(.result, result, step: command.step, to: received.header)
        let sent = monotonicSeconds()
        resultSent = (command.step, sent)
        report(session.clock, stepSeconds: sent - stepStart, step: command.step + 1)
        faultPoint(.afterResult)
    }

    /// The step and time of the last result sent, to time the wait for the next step.
    private var resultSent: (step: Int, time: Double)?

    private func report(_ clock: PhaseClock, stepSeconds: Double, step: Int) {
        guard options.profileEvery > 0 else { return }
        clock.profile.steps += 1
        clock.profile.stepSeconds += stepSeconds
        guard clock.profile.steps == options.profileEvery else { return }
        log("phases " + clock.profile.json(rank: Int(channel.sender), worldSize: session?.ring.size ?? 1, lastStep: step))
        if let profiler = session?.replica.pool.profiler {
            log("operations " + PhaseProfile.operationsJSON(profiler.report, rank: Int(channel.sender), steps: clock.profile.steps, lastStep: step))
            profiler.reset()
        }
        clock.profile = PhaseProfile()
    }

    // MARK: receiving

    /// The next command to act on: stashed ones first. Requests of an old epoch, replays and
    /// undecodable frames are logged and dropped. Waiting is bounded by the parent's life and,
    /// until the coordinator has answered, by `options.timeout`.
    private func nextCommand() throws -> Received {
        let deadline = monotonicSeconds() + options.timeout
        while true {
            if !stash.isEmpty {
                let received = stash.removeFirst()
                if accept(received) { return received }
                continue
            }
            if let parent = options.parentPID, kill(parent, 0) != 0 { throw WorkerError.parentGone(parent) }
            if session == nil, let failure = handshake.failure() { throw WorkerError.refused(failure) }
            // Once the coordinator answered, waiting to be admitted is fine: the heartbeat thread
            // ends the process if it goes silent.
            if !member && !heartbeat.hasContact && monotonicSeconds() > deadline {
                throw TransportError.timeout("the coordinator \(options.coordinator) to set up this worker", seconds: options.timeout)
            }
            heartbeat.waiting = true
            if let received = try receiveControl(timeout: 0.5), accept(received) { return received }
        }
    }

    /// Whether a command belongs to this worker now (current epoch, not seen before).
    private func accept(_ received: Received) -> Bool {
        let header = received.header
        switch header.kind {
        case .setup:
            if member && header.epoch <= epoch {
                log("\(name): dropped a setup of epoch \(header.epoch) (current \(epoch))")
                return false
            }
            return true
        case .rejoin:
            return member && header.epoch >= epoch
        case .stop:
            return true
        default:
            guard member, header.epoch == epoch, header.sequence > lastSequence else {
                log(
                    "\(name): dropped \(header.kind) of epoch \(header.epoch) sequence \(header.sequence) "
                        + "(current epoch \(epoch), last sequence \(lastSequence)): stale or repeated")
                return false
            }
            lastSequence = header.sequence
            return true
        }
    }

    /// Called by the ring while it waits: stashes control messages, and interrupts the step when
    /// one of them ends it (a new epoch, rejoin, stop).
    private func pollControl() throws {
        if let parent = options.parentPID, kill(parent, 0) != 0 { throw WorkerError.parentGone(parent) }
        while let received = try receiveControl(timeout: 0) {
            stash.append(received)
            let header = received.header
            if header.kind == .stop || (header.kind == .setup && header.epoch > epoch) || (header.kind == .rejoin && header.epoch >= epoch) {
                throw Interrupted()
            }
        }
    }

    private func receiveControl(timeout: Double) throws -> Received? {
        guard let frames = try control.receive(timeout: timeout) else { return nil }
        do {
            guard frames.count == 1 else { throw TransportError.malformed("\(frames.count) frames from the coordinator") }
            let message = try WireMessage.decode(frames[0], from: "coordinator")
            heartbeat.heard()
            if let session, message.header.runID != session.runID {
                throw TransportError.unexpected("message of another run (\(hex(message.header.runID)))")
            }
            return Received(identity: [], message: message)
        } catch let error as TransportError {
            log("\(name): dropped a control message: \(error)")
            return nil
        }
    }

    // MARK: fault plan (tests)

    private var currentStep = 0
    private var ringSends = 0

    private func faultPoint(_ point: FaultPlan.Point) {
        guard let plan = options.faultPlan, !faultPlanUsed, plan.step == currentStep + 1 else { return }
        if point == .ringSend { ringSends += 1 }
        switch (plan.point, point) {
        case (.compute, .compute), (.afterResult, .afterResult): break
        case (.ringSend, .ringSend) where ringSends == plan.ringSend: break
        default: return
        }
        faultPlanUsed = true
        log(
            "\(name): fault plan: \(plan.action) at step \(plan.step) (\(plan.description)), unix time "
                + String(format: "%.3f", Date().timeIntervalSince1970))
        switch plan.action {
        case .kill: kill(getpid(), SIGKILL)
        case .stop: kill(getpid(), SIGSTOP)
        case .hang: while true { sleep(1000) }
        }
    }
}
