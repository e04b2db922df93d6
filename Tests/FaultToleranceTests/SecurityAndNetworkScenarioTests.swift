import Foundation
import TestSupport
import Testing
import Training

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
        try run.startCoordinator(workers: 2, extra: ["--curve-secret-key", keys + "/coordinator.key",
                                                     "--authorized-keys", keys + "/authorized"])
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
        ScenarioReport(scenario: "8. Unauthorized and plaintext workers vs a CURVE run", injected: "a worker with an unlisted key, one without CURVE",
                       outcome: "both refused at the handshake and exit naming why; the run is unaffected", bitwiseEqual: true,
                       detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow).save()
    }

    /// Scenario 9 (root only): a worker in its own network namespace is cut off (link down). The
    /// coordinator removes it, the cut-off worker stops hearing the coordinator and exits
    /// (status 3); with the link restored, a worker started there again joins.
    @Test(.enabled(if: ipTool != nil || requiredByCI, "needs root and iproute2"))
    func workerCutOffByNetworkPartition() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let run = FaultRun(iterations: 400)
        run.endpoint = "tcp://\(namespace.hostAddress):\(Int.random(in: 20_000..<60_000))"
        try run.startCoordinator(workers: 3)
        try run.startWorker(["--ring-host", namespace.hostAddress])
        try run.startWorker(["--ring-host", namespace.hostAddress])
        let isolated = try run.startWorker(["--ring-host", namespace.namespaceAddress], namespace: namespace.name)
        // Longer than the worker's own --timeout (60 s), so that a worker that cannot reach the
        // coordinator has said why before this gives up.
        let joined = run.waitUntil(seconds: 90) {
            run.events("membership").first?["workers"] as? Int == 3 || !isolated.process.isRunning
        } && run.events("membership").first?["workers"] as? Int == 3
        try #require(joined, "the worker in namespace \(namespace.name) did not join:\n\(isolated.output)\ncoordinator:\n\(run.coordinator!.output)")
        try namespace.setLink(up: false)
        let cut = Date()
        try #require(run.waitUntil { !run.events("lost").isEmpty }, "\(run.events)")
        let detection = -cut.timeIntervalSinceNow
        #expect(isolated.wait(seconds: 15) == 3, "\(isolated.output)")
        try namespace.setLink(up: true)
        try run.startWorker(["--ring-host", namespace.namespaceAddress], namespace: namespace.name)
        try run.expectCompletesLikeReference()
        let lostIndex = run.events.firstIndex { $0["event"] as? String == "lost" }!
        #expect(run.events[lostIndex...].contains { $0["event"] as? String == "membership" && $0["workers"] as? Int == 3 },
                "\(run.events)")
        ScenarioReport(scenario: "9. Network partition (worker in a namespace, link down)", injected: "veth link down, later up",
                       outcome: "removed; the cut-off worker exits (status 3); a restarted one rejoins", bitwiseEqual: true,
                       detectionSeconds: detection, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow).save()
    }
}
