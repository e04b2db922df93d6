import Collectives
import Foundation
import Models
import Timing
import Training
import Transport

/// A-D of the protocol: waiting for workers, admitting them at step boundaries, forming the ring,
/// removing the lost.
extension Coordinator {

    /// Waits for `options.workers` workers, checks their datasets agree, and sets them up with
    /// `state`, the model after `startStep` steps.
    public func rendezvous(state: ModelState, startStep: Int = 0) throws {
        completedSteps = startStep
        savedState = (startStep, state)
        let deadline = monotonicSeconds() + options.rendezvousTimeout
        let security = options.curve.map { ", CURVE: \($0.authorized.count) authorized worker key(s)" } ?? ", no CURVE (plaintext)"
        log("coordinator: waiting for \(options.workers) worker(s) on \(endpoint)\(security)")
        while agreeingPendingCount < options.workers {
            // A local worker that exits now (bad data, bad flags) will not join: fail at once, not
            // after the whole rendezvous timeout.
            if shouldStop() { throw ClusterError.interrupted("while waiting for workers to join") }
            if let gone = liveness().min() {
                throw ClusterError.workerFailed("local worker (pid \(gone))", "it exited before all workers joined (its error is above)")
            }
            _ = try next(
                until: deadline, timeout: options.rendezvousTimeout,
                waitingFor: "\(options.workers - pending.count) more worker(s) to join")
        }
        try prepareMembership()
        log("coordinator: \(members.count) worker(s) ready, batch norm \(options.batchNorm.rawValue)")
    }

    /// At a step boundary: admits waiting workers, pauses while there are fewer than the minimum,
    /// and forms a new ring when the membership changed.
    func prepareMembership() throws {
        var pausedAt: Double?
        var lastStatus = 0.0
        while true {
            // More members than images would leave a worker an empty shard.
            let room = min(options.maxWorkers, configuration.batchSize, AllReduce.maximumRanks) - members.count
            if room > 0 && !pending.isEmpty {
                if dataset == nil { settleDataset() }
                let admitted = pending.prefix(room)
                pending.removeFirst(admitted.count)
                members += admitted
                needsReform = true
            }
            if members.count < options.minWorkers {
                // With no member holding the model there is nothing left to save, and perhaps no
                // worker to come back (a batch system signalled the whole job): stop now, not
                // after the rendezvous timeout.
                if shouldStop() && !members.contains(where: \.hasState) {
                    throw ClusterError.interrupted("while paused before step \(completedSteps + 1) with no worker holding the model")
                }
                let now = monotonicSeconds()
                if pausedAt == nil {
                    pausedAt = now
                    emit("paused", reason: "\(members.count) of at least \(options.minWorkers) workers")
                }
                if now - lastStatus >= 10 {
                    lastStatus = now
                    log(
                        "coordinator: paused before step \(completedSteps + 1): \(members.count) worker(s), "
                            + "--min-workers \(options.minWorkers); waiting for workers to join \(endpoint)")
                }
                _ = try next(
                    until: pausedAt! + options.rendezvousTimeout, timeout: options.rendezvousTimeout,
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
    func reform() throws {
        epoch += 1
        let request = nextSequence()
        let endpoints = members.map(\.hello.ringEndpoint)
        let ringKeys = options.curve == nil ? nil : members.map { $0.hello.publicKey ?? "" }
        let holders = members.filter(\.hasState), joiners = members.filter { !$0.hasState }
        func setup(_ member: Member) -> ControlMessage.Setup {
            let rank = members.firstIndex { $0 === member }!
            return ControlMessage.Setup(
                nextStep: completedSteps, rank: rank, worldSize: members.count, configuration: configuration,
                batchNorm: options.batchNorm, ringEndpoints: endpoints, ringKeys: ringKeys,
                parameterCount: savedState!.state.parameters.count, stateCount: savedState!.state.state.count,
                checkEvery: options.checkEvery)
        }
        for member in holders { try send(.setup, setup(member), to: member, sequence: request) }
        var readies = try collect(
            .ready, from: holders, sequence: request, timeout: options.stepTimeout,
            what: "workers to set up for epoch \(epoch)", check: Self.checkReady)
        if !joiners.isEmpty {
            let state: ModelState
            if let savedState, savedState.step == completedSteps {
                state = savedState.state
            } else if let holder = holders.first {
                state = try fetchState(from: holder)
            } else {
                throw ClusterError.stateLost(
                    "every worker holding the model after step \(completedSteps) was lost; "
                        + "continue from the latest checkpoint with --resume")
            }
            let bytes = FloatCoding.bytes(state)
            for member in joiners { try send(.setup, setup(member), binary: bytes, to: member, sequence: request) }
            // New members load the dataset and build the model first.
            readies += try collect(
                .ready, from: joiners, sequence: request, timeout: max(options.stepTimeout, 30),
                what: "new workers to set up for epoch \(epoch)", check: Self.checkReady)
        }
        let all = holders + joiners
        let reference = try readies[0].body(ControlMessage.Ready.self, source: all[0].name).0
        for (member, reply) in zip(all, readies) {
            let ready = try reply.body(ControlMessage.Ready.self, source: member.name).0
            if ready.completedSteps != completedSteps || ready.parameterHash != reference.parameterHash {
                lose(
                    member,
                    reason: "after \(ready.completedSteps) steps has parameters \(ready.parameterHash); expected "
                        + "\(completedSteps) steps and \(reference.parameterHash)")
                throw MembershipChanged()
            }
            member.hasState = true
        }
        needsReform = false
        log(
            "coordinator: epoch \(epoch): \(members.count) worker(s) from step \(completedSteps + 1) "
                + "(\(joiners.count) new); parameters \(reference.parameterHash)")
        emit("membership")
    }

    static func checkReady(_: Int, _ reply: Received) -> String? {
        reply.problem(ControlMessage.Ready.self) { ready, _ in ready.problem() }
    }

    func fetchState(from member: Member) throws -> ModelState {
        let request = nextSequence()
        try send(.stateRequest, ControlMessage.Empty(), to: member, sequence: request)
        let architecture = try configuration.architecture()
        let expectedBytes = (2 * architecture.parameterCount + architecture.stateCount) * 4
        let reply = try collect(.state, from: [member], sequence: request, timeout: options.stepTimeout, what: "the model state") {
            _, reply in
            reply.problem(ControlMessage.Empty.self) { _, binary in
                binary.count == expectedBytes ? nil : "\(binary.count) state bytes, expected \(expectedBytes)"
            }
        }[0]
        let (_, binary) = try reply.body(ControlMessage.Empty.self, source: member.name)
        return try FloatCoding.state(
            binary, parameterCount: architecture.parameterCount,
            stateCount: architecture.stateCount,
            source: member.name)
    }

    /// Removes a member (or a waiting worker) and records why.
    func lose(_ member: Member, reason: String) {
        if removedTokens.count >= 4096 { removedTokens.removeAll() }  // bounded under a flood of joins
        removedTokens[member.hello.workerID] = member.hello.heartbeatToken
        if let index = members.firstIndex(where: { $0 === member }) {
            members.remove(at: index)
            needsReform = true
            firstLoss = firstLoss ?? monotonicSeconds()
            log(
                "coordinator: lost \(member.name), rank \(index), during step \(completedSteps + 1): \(reason); "
                    + "\(members.count) worker(s) left")
            emit("lost", worker: member, reason: reason)
        } else if let index = pending.firstIndex(where: { $0 === member }) {
            pending.remove(at: index)
            log("coordinator: \(member.name) left before it was admitted: \(reason)")
        }
    }

    /// Waiting workers that agree about the dataset: all of them once the run has one, else the
    /// largest group with the same dataset.
    var agreeingPendingCount: Int {
        if dataset != nil { return pending.count }
        return Dictionary(grouping: pending, by: { $0.hello.dataset }).values.map(\.count).max() ?? 0
    }

    /// The first admission fixes the run's dataset: that of most waiting workers (the earliest
    /// to join on a tie). Waiting workers with another are refused.
    func settleDataset() {
        let groups = Dictionary(grouping: pending, by: { $0.hello.dataset })
        guard let chosen = pending.map(\.hello.dataset).max(by: { groups[$0]!.count < groups[$1]!.count }) else { return }
        dataset = chosen
        for member in pending where member.hello.dataset != chosen {
            pending.removeAll { $0 === member }
            refuse(
                member.identity, host: member.hello.host, pid: member.hello.pid, dataset: member.hello.dataset,
                source: member.name)
        }
    }

    func refuse(_ identity: [UInt8], host: String, pid: Int32, dataset refused: ControlMessage.DatasetInfo, source: String) {
        log("coordinator: refused worker on \(host) (pid \(pid)): its dataset \(refused) differs from \(dataset!)")
        let body = try? ControlPayload.encode(ControlMessage.Stop(reason: "dataset differs from the run's"))
        let stop = WireMessage(WireHeader(kind: .stop, runID: runID, sender: -1), payload: body ?? []).encoded()
        try? socket.send([identity, stop], timeout: 0, to: source)
    }

    /// Removes members and waiting workers whose process exited or whose heartbeats stopped.
    func sweep() {
        guard !stopping else { return }
        while let failure = handshake?.failure(asServer: true) { log("coordinator: refused: \(failure)") }
        let exited = liveness()
        let now = monotonicSeconds()
        for member in members + pending {
            if member.hello.host == hostName && exited.contains(member.hello.pid) {
                lose(member, reason: "its process exited")
            } else if now - member.lastSeen > options.heartbeatTimeout {
                lose(
                    member,
                    reason: "no heartbeat for \(String(format: "%.1f", now - member.lastSeen)) s "
                        + "(--heartbeat-timeout \(options.heartbeatTimeout))")
            }
        }
    }
}
