import CIFAR
import Cluster
import Foundation
import TestSupport
import Testing
import Training
import Transport

/// A member that is admitted but lies (no CURVE, so nothing proves it is a real worker): a
/// DEALER in this process joins a real coordinator, answers correctly up to one reply, and
/// sends that one with hostile counts. The coordinator must remove it naming the field (it used
/// to trap on a short confusion matrix, and took any counts into its metrics); a real worker
/// that joins then finishes the run, bitwise equal to single-process training when the liar
/// held no state the run still needs.
@Suite(.serialized, .enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
struct HostileMemberTests {
    static let common = ["--depth", "8", "--iterations", "2", "--eval-every", "1", "--log-every", "1"]

    enum Lie { case ready, result, evaluation }

    /// The real dataset's fingerprint, as a worker computes it: the first admitted worker sets
    /// the dataset of the run, so the liar must claim the real one for real workers to join.
    static let fingerprint = try! DatasetFiles.load(directory: realDataDirectory!).info.fingerprint

    /// Runs the coordinator with the liar admitted first and a real worker after the lie.
    func run(lying lie: Lie, json: String) throws -> (status: Int32, reason: Process.TerminationReason, output: String, run: String) {
        let port = Int.random(in: 20_000..<60_000)
        let run = temporaryDirectory() + "/run"
        let coordinator = try ToolProcess(
            [
                "coordinator", "--listen", "tcp://127.0.0.1:\(port)", "--workers", "1", "--out", run,
                "--rendezvous-timeout", "60", "--step-timeout", "60", "--heartbeat-timeout", "60",
            ]
                + Self.common)
        defer { if coordinator.process.isRunning { kill(coordinator.process.processIdentifier, SIGKILL) } }
        let context = try ZMQContext()
        let liar = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 2000)
        defer { liar.close() }
        try liar.setRoutingID(Array("liar".utf8))
        try liar.connect("tcp://127.0.0.1:\(port)")
        func payload(_ json: String) -> [UInt8] {
            withUnsafeBytes(of: UInt32(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8)
        }
        let hello =
            #"{"workerID":"liar","host":"h","pid":1,"ringEndpoint":"tcp://127.0.0.1:1","#
            + #""dataset":{"fingerprint":"\#(Self.fingerprint)","trainImages":50000,"testImages":10000},"#
            + #""heartbeatToken":"0123456789abcdef0123456789abcdef"}"#
        try liar.send(
            [WireMessage(WireHeader(kind: .hello, runID: 0, sender: -1), payload: payload(hello)).encoded()],
            timeout: 10, to: "coordinator")
        var worker: ToolProcess?
        defer { if let worker, worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) } }
        let deadline = Date(timeIntervalSinceNow: 60)
        while worker == nil, Date() < deadline, coordinator.process.isRunning {
            guard let frames = try liar.receive(timeout: 0.5), let frame = frames.last,
                let request = try? WireMessage.decode(frame, from: "coordinator")
            else { continue }
            func answer(_ kind: MessageKind, _ json: String) throws {
                let header = WireHeader(
                    kind: kind, runID: request.header.runID, epoch: request.header.epoch,
                    sequence: request.header.sequence, step: request.header.step, sender: 0)
                try liar.send([WireMessage(header, payload: payload(json)).encoded()], timeout: 10, to: "coordinator")
            }
            let honest: String
            switch request.header.kind {
            case .setup:
                honest = #"{"completedSteps":0,"parameterHash":"abc"}"#
                if lie == .ready { try answer(.ready, json) } else { try answer(.ready, honest) }
            case .step:
                let step = try JSONSerialization.jsonObject(with: Data(request.payload.dropFirst(4))) as! [String: Any]
                let images = (step["samples"] as! [Any]).count
                let hash = step["reportHash"] as! Bool ? #""abc""# : "null"
                honest = #"{"statistics":{"lossSumFixed":0,"correct":0,"images":\#(images),"nonFinite":0},"parameterHash":\#(hash)}"#
                if lie == .result { try answer(.result, json) } else { try answer(.result, honest) }
            case .evaluate:
                try answer(.evaluation, json)  // only `.evaluation` lies get this far
            default:
                continue
            }
            if (lie, request.header.kind) == (.ready, .setup) || (lie, request.header.kind) == (.result, .step)
                || request.header.kind == .evaluate
            {
                worker = try ToolProcess([
                    "worker", "--coordinator", "tcp://127.0.0.1:\(port)", "--data", realDataDirectory!,
                    "--threads", "1", "--timeout", "60",
                ])
            }
        }
        let status = coordinator.wait(seconds: 120)
        return (status, coordinator.process.terminationReason, coordinator.output, run)
    }

    @Test func lyingMembersAreRemovedAndTheRunGoesOn() throws {
        let single = temporaryDirectory() + "/single"
        let (singleStatus, singleOutput) = try ToolProcess.run(["train", "--data", realDataDirectory!, "--out", single] + Self.common)
        try #require(singleStatus == 0, "\(singleOutput)")
        let reference = try CheckpointDirectory(runDirectory: single).latestValid().checkpoint

        let lies: [(Lie, String, String)] = [
            (.ready, #"{"completedSteps":0,"parameterHash":"not a hash"}"#, "sent an invalid ready: parameterHash must be 1-16 hex digits"),
            (
                .result, #"{"statistics":{"lossSumFixed":0,"correct":9223372036854775807,"images":128,"nonFinite":0},"parameterHash":null}"#,
                "sent an invalid result: statistics.correct 9223372036854775807 must be 0-128"
            ),
        ]
        for (lie, json, expected) in lies {
            let (status, reason, output, run) = try self.run(lying: lie, json: json)
            #expect(reason == .exit && status == 0, "\(lie): status \(status) \(reason):\n\(output)")
            #expect(output.contains(expected), "\(lie):\n\(output)")
            let distributed = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
            #expect(distributed.step == 2 && distributed.modelState == reference.modelState, "\(lie)")
        }
    }

    /// After step 1 only the liar holds the model: the run must end with an error that says so
    /// (and keeps what is saved), not a trap.
    @Test func aLyingEvaluationEndsTheRunWithAnError() throws {
        let json = #"{"images":10000,"lossSumFixed":0,"wrong":0,"imagesFirst1000":1000,"wrongFirst1000":0,"confusion":[]}"#
        let (status, reason, output, _) = try run(lying: .evaluation, json: json)
        #expect(reason == .exit && status == 1, "status \(status) \(reason):\n\(output)")
        #expect(output.contains("sent an invalid evaluation: confusion must be 10 x 10"), "\(output)")
        #expect(output.contains("was lost"), "\(output)")
    }
}
