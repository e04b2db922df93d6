import Foundation
import Models
import Timing
import Training
import Transport

/// Sending, and the receive loop that answers heartbeats and hellos on the way.
extension Coordinator {

    func send<T: Encodable>(
        _ kind: MessageKind, _ body: T, binary: [UInt8] = [], step: Int = 0, to member: Member,
        sequence: UInt32, timeout: Double = 30
    ) throws {
        do {
            try channel(member).send(
                kind, body, binary: binary, step: step, epoch: epoch, sequence: sequence,
                identity: member.identity, timeout: timeout)
        } catch let error as TransportError {
            guard kind != .stop else { throw error }
            lose(member, reason: "could not send \(kind): \(error)")
            throw MembershipChanged()
        }
    }

    /// One reply of `kind` to request `sequence` from each of `wanted`, in that order. A member
    /// lost meanwhile, a failure report, a reply that `check` (given the member's index in
    /// `wanted`) finds a problem with, or the deadline throws `MembershipChanged` after removing
    /// whoever is to blame.
    func collect(
        _ kind: MessageKind, from wanted: [Member], sequence: UInt32, timeout: Double, what: String,
        check: (Int, Received) -> String? = { _, _ in nil }
    ) throws -> [Received] {
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
                    log(
                        "coordinator: no reply to \(what) within \(timeout) s from \(missing.map(\.name).joined(separator: ", ")), "
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
                wanted.contains(where: { $0 === member })
            else {
                log(
                    "coordinator: ignored \(header.kind) (epoch \(header.epoch), request \(header.sequence)) from \(member.name) "
                        + "while waiting for \(what)")
                continue
            }
            if replies[ObjectIdentifier(member)] != nil {
                log("coordinator: ignored a duplicate \(kind) from \(member.name)")
                continue
            }
            if let index = wanted.firstIndex(where: { $0 === member }), let problem = check(index, received) {
                lose(member, reason: "sent an invalid \(kind): \(problem)")
                throw MembershipChanged()
            }
            replies[ObjectIdentifier(member)] = received
        }
        return wanted.map { replies[ObjectIdentifier($0)]! }
    }

    /// The next message for the caller, nil after a short slice without one; throws at the
    /// deadline. Handles on the way: liveness and heartbeat checks, heartbeats, hellos, and
    /// malformed or foreign frames (logged and dropped).
    func next(until deadline: Double, timeout: Double, waitingFor what: String) throws -> Received? {
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

    func heartbeat(_ received: Received, source: String) throws {
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
            monotonicSeconds() - (lastRejoin[beat.workerID] ?? 0) > 1
        {
            // A worker of this run that was removed (e.g. it was frozen): tell it to join again.
            lastRejoin[beat.workerID] = monotonicSeconds()
            let rejoin = WireMessage(WireHeader(kind: .rejoin, runID: runID, epoch: epoch, sender: -1)).encoded()
            try? socket.send([id, rejoin], timeout: 0, to: source)
        }
    }

    func hello(_ received: Received, source: String) throws {
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
