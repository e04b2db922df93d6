import Cluster
import Foundation
import TestSupport
import Testing
import Training
import Transport

/// Scenarios 8 and 9 of the fault table: security and the network. Brought back after commit
/// c9c82c0 dropped them while the README kept their rows.
@Suite(.serialized, .enabled(if: canRunFaultSuite, "needs real CIFAR-10 and the release build"))
struct SecurityAndNetworkScenarioTests {
    /// Scenario 8: a CURVE-protected run. A worker with a key that is not authorized and a
    /// worker without CURVE try to join: both are refused and exit with the reason; the
    /// authorized workers train (control and ring encrypted) to the reference result.
    @Test func curveRefusesUnauthorizedAndPlaintextWorkers() throws {
        let run = FaultRun(iterations: 30)
        let keys = run.directory + "/keys"
        let (status, output) = try ToolProcess.run(["keygen", "coordinator", "w1", "w2", "intruder", "--out", keys])
        try #require(status == 0, "\(output)")
        let authorized = try ["w1", "w2"].map { try String(contentsOfFile: "\(keys)/\($0).pub", encoding: .utf8) }.joined()
        try authorized.write(toFile: keys + "/authorized", atomically: true, encoding: .utf8)
        try run.startCoordinator(
            workers: 2,
            extra: [
                "--curve-secret-key", keys + "/coordinator.key",
                "--authorized-keys", keys + "/authorized",
            ])
        let coordinatorKey = ["--coordinator-key", keys + "/coordinator.pub"]
        let intruder = try run.startWorker(["--curve-secret-key", keys + "/intruder.key"] + coordinatorKey)
        let plaintext = try run.startWorker()
        #expect(intruder.wait(seconds: 30) == 1)
        #expect(intruder.output.contains("refused this process's CURVE key"), "\(intruder.output)")
        #expect(plaintext.wait(seconds: 30) == 1)
        #expect(plaintext.output.contains("security handshake"), "\(plaintext.output)")
        try run.startWorker(["--curve-secret-key", keys + "/w1.key"] + coordinatorKey)
        try run.startWorker(["--curve-secret-key", keys + "/w2.key"] + coordinatorKey)
        let coordinatorOutput = try run.expectCompletesLikeReference()
        #expect(coordinatorOutput.contains("is not authorized"), "\(coordinatorOutput)")
        #expect(run.events("joined").count == 2)
        ScenarioReport(
            scenario: "8. Unauthorized and plaintext workers vs a CURVE run", injected: "a worker with an unlisted key, one without CURVE",
            outcome: "both refused at the handshake and exit naming why; the run is unaffected", bitwiseEqual: true,
            detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// A third party that learned a worker's id keeps sending heartbeats in its name (with a
    /// guessed token) while the worker is SIGKILLed: the beats are ignored, so the death is found
    /// by the heartbeat timeout (2 s), not by the step deadline (20 s here, 120 s by default).
    @Test func forgedHeartbeatsDoNotHideADeadWorker() throws {
        let port = Int.random(in: 20_000..<60_000)
        let run = FaultRun(iterations: 30)
        run.endpoint = "tcp://127.0.0.1:\(port)"
        try run.startCoordinator(workers: 2)
        try run.startWorker()
        let victim = try run.startWorker(["--fault-plan", "kill@8"])
        let joined = run.waitUntil { run.events("joined").contains { $0["pid"] as? Int == Int(victim.process.processIdentifier) } }
        let victimID = try #require(
            joined ? run.events("joined").first { $0["pid"] as? Int == Int(victim.process.processIdentifier) }?["worker"] as? String : nil,
            "\(run.events)")
        let context = try ZMQContext()
        let forger = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 0)
        defer { forger.close() }
        try forger.connect(run.endpoint)
        let beat = #"{"workerID":"\#(victimID)","token":"00000000000000000000000000000000","waiting":true}"#
        let payload = withUnsafeBytes(of: UInt32(beat.utf8.count).littleEndian) { Array($0) } + Array(beat.utf8)
        let frame = WireMessage(WireHeader(kind: .heartbeat, runID: 0, sender: -1), payload: payload).encoded()
        // Beats every 0.1 s until the coordinator reports the victim lost (or gives up).
        let lost = run.waitUntil(seconds: 90) {
            _ = try? forger.send([frame], timeout: 0, to: "coordinator")
            _ = try? forger.receive(timeout: 0.1)
            return run.lostEvent(of: victim) != nil || !(run.coordinator!.process.isRunning)
        }
        try #require(lost && run.lostEvent(of: victim) != nil, "\(run.events)\n\(run.coordinator!.output)")
        let killed = try #require(run.faultTime(of: victim), "\(victim.output)")
        let detection = (run.lostEvent(of: victim)!["time"] as! Double) - killed
        #expect((run.lostEvent(of: victim)!["reason"] as? String)?.contains("no heartbeat") == true, "\(run.events)")
        #expect(detection <= 3, "detection took \(detection) s")
        try run.expectCompletesLikeReference()
        #expect(run.coordinator!.output.contains("without its token"), "\(run.coordinator!.output)")
        ScenarioReport(
            scenario: "8b. Forged heartbeats in a SIGKILLed worker's name", injected: "kill at step 8; a third party beats for it every 0.1 s",
            outcome: "beats without the worker's token ignored; lost by its heartbeat timeout", bitwiseEqual: true,
            detectionSeconds: detection, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// A peer that joins first with another dataset (and keeps its heartbeats going) does not
    /// decide the run's dataset: the real workers are admitted, the peer is refused.
    @Test func waitingPeerDoesNotSetTheDataset() throws {
        let run = FaultRun(iterations: 20)
        run.endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000..<60_000))"
        try run.startCoordinator(workers: 2)
        let context = try ZMQContext()
        let liar = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 0)
        defer { liar.close() }
        let id = "liar-\(UUID().uuidString.prefix(8))", token = "0123456789abcdef0123456789abcdef"
        try liar.setRoutingID(Array(id.utf8))
        try liar.connect(run.endpoint)
        func frame(_ kind: MessageKind, _ json: String) -> [UInt8] {
            let payload = withUnsafeBytes(of: UInt32(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8)
            return WireMessage(WireHeader(kind: kind, runID: 0, sender: -1), payload: payload).encoded()
        }
        let hello = frame(
            .hello,
            #"{"workerID":"\#(id)","host":"elsewhere","pid":4242,"ringEndpoint":"tcp://127.0.0.1:1","#
                + #""dataset":{"fingerprint":"fake","trainImages":50000,"testImages":10000},"heartbeatToken":"\#(token)"}"#)
        try liar.send([hello], timeout: 10, to: "coordinator")
        try #require(run.waitUntil { run.events("joined").contains { $0["worker"] as? String == id } }, "\(run.coordinator!.output)")
        try run.startWorker()
        try run.startWorker()
        // The liar keeps beating until the coordinator tells it to stop.
        let beat = frame(.heartbeat, #"{"workerID":"\#(id)","token":"\#(token)","waiting":true}"#)
        var stopped = false
        _ = run.waitUntil(seconds: 120) {
            _ = try? liar.send([beat], timeout: 0, to: "coordinator")
            while let frames = try? liar.receive(timeout: 0.1) {
                if frames.count == 1, (try? WireMessage.decode(frames[0], from: "coordinator"))?.header.kind == .stop { stopped = true }
            }
            return stopped || !run.coordinator!.process.isRunning
        }
        #expect(stopped, "the waiting peer with another dataset was not refused")
        let output = try run.expectCompletesLikeReference()
        #expect(output.contains("its dataset") && output.contains("fake"), "\(output)")
        ScenarioReport(
            scenario: "8c. A waiting peer with another dataset joins first", injected: "hello with a fake fingerprint, heartbeats",
            outcome: "the real workers are admitted, the peer is refused", bitwiseEqual: true,
            detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 9 (root only): a worker in its own network namespace is cut off (link down). The
    /// coordinator removes it, the cut-off worker stops hearing the coordinator and exits
    /// (status 3); with the link restored, a worker started there again joins.
    @Test(.enabled(if: ipTool != nil || requiredByCI, "needs root and iproute2"))
    func workerCutOffByNetworkPartition() throws {
        let network = try SimulatedHosts(count: 1)
        defer { network.remove() }
        let host = network.hosts[0]
        let run = FaultRun(iterations: 400)
        run.endpoint = "tcp://\(network.gateway):\(Int.random(in: 20_000..<60_000))"
        try run.startCoordinator(workers: 3)
        try run.startWorker(["--ring-host", network.gateway])
        try run.startWorker(["--ring-host", network.gateway])
        let isolated = try run.startWorker(["--ring-host", host.address], namespace: host.namespace)
        // Longer than the worker's own --timeout (60 s), so that a worker that cannot reach the
        // coordinator has said why before this gives up.
        let joined =
            run.waitUntil(seconds: 90) {
                run.events("membership").first?["workers"] as? Int == 3 || !isolated.process.isRunning
            } && run.events("membership").first?["workers"] as? Int == 3
        try #require(joined, "the worker in namespace \(host.namespace) did not join:\n\(isolated.output)\ncoordinator:\n\(run.coordinator!.output)")
        try network.setLink(of: host, up: false)
        let cut = Date()
        try #require(run.waitUntil { !run.events("lost").isEmpty }, "\(run.events)")
        let detection = -cut.timeIntervalSinceNow
        #expect(isolated.wait(seconds: 15) == 3, "\(isolated.output)")
        try network.setLink(of: host, up: true)
        try run.startWorker(["--ring-host", host.address], namespace: host.namespace)
        try run.expectCompletesLikeReference()
        let lostIndex = run.events.firstIndex { $0["event"] as? String == "lost" }!
        #expect(
            run.events[lostIndex...].contains { $0["event"] as? String == "membership" && $0["workers"] as? Int == 3 },
            "\(run.events)")
        ScenarioReport(
            scenario: "9. Network partition (worker in a namespace, link down)", injected: "veth link down, later up",
            outcome: "removed; the cut-off worker exits (status 3); a restarted one rejoins", bitwiseEqual: true,
            detectionSeconds: detection, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }
}
