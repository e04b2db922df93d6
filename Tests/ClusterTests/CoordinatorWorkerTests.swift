import Cluster
import Foundation
import TestSupport
import Testing
import Training
import Transport

private let canRun = realDataDirectory != nil && resnetDDPExecutable != nil

/// Separate `coordinator` and `worker` processes, with hostile traffic sent to the coordinator
/// before the workers join: it must log and drop it, and the run must finish with the same
/// weights as single-process training.
@Suite(.serialized) struct CoordinatorWorkerTests {
    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func separateProcessesSurviveGarbageAndMatchSingleProcess() throws {
        let port = Int.random(in: 20_000..<60_000)
        let run = temporaryDirectory() + "/run"
        let common = ["--depth", "8", "--iterations", "10", "--eval-every", "10", "--log-every", "5"]
        let coordinator = try ToolProcess(
            [
                "coordinator", "--listen", "tcp://127.0.0.1:\(port)", "--workers", "2",
                "--out", run, "--rendezvous-timeout", "60", "--step-timeout", "60",
            ] + common)
        defer { if coordinator.process.isRunning { kill(coordinator.process.processIdentifier, SIGKILL) } }

        // Hostile peer: random bytes, a wrong magic, a wrong version, a hello with a corrupt body.
        let context = try ZMQContext()
        let attacker = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 2000)
        try attacker.connect("tcp://127.0.0.1:\(port)")
        var hello = WireMessage(WireHeader(kind: .hello, runID: 0, sender: -1), payload: [200, 0, 0, 0, 1, 2]).encoded()
        var wrongVersion = hello
        wrongVersion[4] = 7
        hello[hello.count - 1] ^= 1  // now also fails its checksum
        for frame in [
            [UInt8](repeating: 0xAB, count: 100), Array("GET / HTTP/1.0\r\n\r\n".utf8), wrongVersion, hello,
            WireMessage(WireHeader(kind: .hello, runID: 0, sender: -1), payload: [3, 0, 0, 0, 0x7B, 0x7D, 0x7D]).encoded(),
        ] {
            try attacker.send([frame], timeout: 10, to: "coordinator")
        }
        attacker.close()
        // Well-formed, correctly checksummed hellos whose fields are hostile: refused, never fatal.
        for (id, train, pid) in [("evil-1", 0, 1), ("evil-2", -3, 1), ("evil-3", 50_000, 0)] {
            let liar = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 2000)
            try liar.setRoutingID(Array(id.utf8))
            try liar.connect("tcp://127.0.0.1:\(port)")
            let json =
                #"{"workerID":"\#(id)","host":"h","pid":\#(pid),"ringEndpoint":"tcp://127.0.0.1:1","#
                + #""dataset":{"fingerprint":"x","trainImages":\#(train),"testImages":10000},"#
                + #""heartbeatToken":"0123456789abcdef0123456789abcdef"}"#
            let body = withUnsafeBytes(of: UInt32(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8)
            try liar.send([WireMessage(WireHeader(kind: .hello, runID: 0, sender: -1), payload: body).encoded()], timeout: 10, to: "coordinator")
            liar.close()
        }

        let workers = try (0..<2).map { _ in
            try ToolProcess([
                "worker", "--coordinator", "tcp://127.0.0.1:\(port)", "--data", realDataDirectory!,
                "--threads", "1", "--timeout", "60",
            ])
        }
        let status = coordinator.wait(seconds: 240)
        let output = coordinator.output
        try #require(status == 0, "coordinator failed:\n\(output)\nworkers:\n\(workers.map(\.output))")
        for worker in workers { #expect(worker.wait(seconds: 30) == 0, "\(worker.output)") }
        #expect(output.contains("bad magic"), "\(output)")
        #expect(output.contains("protocol version 7"), "\(output)")
        #expect(output.contains("checksum"), "\(output)")
        #expect(output.contains("undecodable"), "\(output)")
        #expect(output.contains("refused: dataset.trainImages 0 must be above"), "\(output)")
        #expect(output.contains("refused: dataset.trainImages -3 must be above"), "\(output)")
        #expect(output.contains("refused: pid 0 is not a process id"), "\(output)")

        let single = temporaryDirectory() + "/single"
        let (singleStatus, singleOutput) = try ToolProcess.run(["train", "--data", realDataDirectory!, "--out", single] + common)
        try #require(singleStatus == 0, "\(singleOutput)")
        let distributed = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
        let reference = try CheckpointDirectory(runDirectory: single).latestValid().checkpoint
        #expect(distributed.step == 10)
        #expect(distributed.modelState == reference.modelState)
        // Metrics were written by the coordinator, one line per log step.
        let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
    }

    /// A stop while paused with no worker left (a batch system signalled the whole job) ends the
    /// coordinator at once, not after the rendezvous timeout.
    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func aStopWhilePausedWithNoWorkerEndsTheCoordinator() throws {
        let port = Int.random(in: 20_000..<60_000)
        let run = temporaryDirectory() + "/run"
        let coordinator = try ToolProcess([
            "coordinator", "--listen", "tcp://127.0.0.1:\(port)", "--workers", "1", "--out", run,
            "--depth", "8", "--iterations", "5000", "--log-every", "5",
            "--rendezvous-timeout", "600", "--heartbeat-timeout", "2",
        ])
        defer { if coordinator.process.isRunning { kill(coordinator.process.processIdentifier, SIGKILL) } }
        let worker = try ToolProcess([
            "worker", "--coordinator", "tcp://127.0.0.1:\(port)", "--data", realDataDirectory!,
            "--threads", "1",
        ])
        func waitFor(_ text: String, seconds: Double) -> Bool {
            let deadline = Date(timeIntervalSinceNow: seconds)
            while !coordinator.output.contains(text) {
                if Date() > deadline || !coordinator.process.isRunning { return false }
                usleep(50_000)
            }
            return true
        }
        try #require(waitFor("step 5/5000", seconds: 120), "\(coordinator.output)")
        kill(worker.process.processIdentifier, SIGKILL)
        try #require(waitFor("paused before step", seconds: 60), "\(coordinator.output)")
        kill(coordinator.process.processIdentifier, SIGTERM)
        #expect(coordinator.wait(seconds: 30) == 130, "\(coordinator.output)")
        #expect(coordinator.output.contains("interrupted while paused before step"), "\(coordinator.output)")
        #expect(coordinator.output.contains("with no worker holding the model"), "\(coordinator.output)")
    }
}
