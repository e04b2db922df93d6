import Foundation
import TensorCore
import TestSupport
import Testing
import Training

/// The fault-injection suite: real coordinator and worker processes, killed, frozen, restarted,
/// fed damaged messages and damaged disks. Each scenario must end with the exact step count,
/// parameters bitwise equal to an unfaulted single-process run, and no damaged checkpoint (or,
/// where the fault makes that impossible, stop with the documented clear error).
@Suite(.serialized, .enabled(if: canRunFaultSuite, "needs real CIFAR-10 and the release build"))
struct FaultScenarioTests {
    /// Scenario 1: SIGKILL one of three workers at a step and a point chosen by the seed: before
    /// the forward pass, before its n-th ring send (inside a batch-norm or gradient all-reduce),
    /// or right after it sent its result.
    @Test(arguments: killSeeds)
    func workerKilledAtRandomPoint(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed))
        let step = Int.random(in: 3...25, using: &rng)
        let point = ["compute", "ring:\(Int.random(in: 1...18, using: &rng))", "result"][Int.random(in: 0..<3, using: &rng)]
        let run = FaultRun(iterations: 30)
        try run.startCoordinator(workers: 3)
        try run.startWorker()
        let victim = try run.startWorker(["--fault-plan", "kill@\(step):\(point)"])
        try run.startWorker()
        try run.expectCompletesLikeReference()

        let lost = run.lostEvent(of: victim)
        try #require(lost != nil, "the killed worker was not reported lost: \(run.events)")
        let killed = try #require(run.faultTime(of: victim), "\(victim.output)")
        let detection = (lost!["time"] as! Double) - killed
        let recovered = run.events("recovered").first { ($0["time"] as! Double) >= (lost!["time"] as! Double) }
        let recovery = try #require(recovered, "no recovered event: \(run.events)")["time"] as! Double - killed
        #expect(detection <= 3, "detection took \(detection) s")
        #expect(recovery <= 5, "recovery took \(recovery) s")
        ScenarioReport(
            scenario: "1. SIGKILL a worker (seed \(seed))", injected: "kill at step \(step), \(point)",
            outcome: "lost, same step re-run by 2", bitwiseEqual: true, detectionSeconds: detection,
            recoverySeconds: recovery, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 1b: `train --workers 3` and one of its local worker processes is SIGKILLed from
    /// outside: the coordinator sees the process exit at once.
    @Test func localWorkerKilledFromOutside() throws {
        let run = FaultRun(iterations: 150)
        let train = try ToolProcess(
            [
                "train", "--workers", "3", "--worker-threads", "1", "--data", realDataDirectory!,
                "--out", run.runDirectory,
            ] + trainingFlags(iterations: 150))
        defer { if train.process.isRunning { kill(train.process.processIdentifier, SIGKILL) } }
        try #require(run.waitUntil { run.events("membership").first?["workers"] as? Int == 3 }, "\(train.output)")
        let (_, children) = try ToolProcess.run(["-P", String(train.process.processIdentifier)], executable: "/usr/bin/pgrep")
        let victim = try #require(children.split(separator: "\n").compactMap { Int32($0) }.first, "no worker processes")
        let killed = Date().timeIntervalSince1970
        kill(victim, SIGKILL)
        #expect(train.wait(seconds: 120) == 0, "\(train.output)")
        let lost = try #require(run.events("lost").first { $0["pid"] as? Int == Int(victim) }, "\(run.events)")
        #expect((lost["reason"] as? String)?.contains("exited") == true, "\(lost)")
        let detection = (lost["time"] as! Double) - killed
        let recovery = (run.events("recovered").first?["time"] as? Double).map { $0 - killed }
        #expect(detection < 1, "\(detection) s")
        let state = try CheckpointDirectory(runDirectory: run.runDirectory).latestValid().checkpoint
        let reference = try referenceState(iterations: 150)
        #expect(state.step == 150 && state.modelState == reference)
        ScenarioReport(
            scenario: "1b. SIGKILL a local worker of train --workers 3", injected: "kill -9 from outside after the first step",
            outcome: "process exit seen at once; same step re-run by 2", bitwiseEqual: true, detectionSeconds: detection,
            recoverySeconds: recovery, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 1c: a worker hangs in its computation while its heartbeats go on: the step
    /// deadline finds it (the others wait on the ring) and it is removed.
    @Test func hungWorkerFoundByStepDeadline() throws {
        let run = FaultRun(iterations: 30)
        try run.startCoordinator(workers: 3, extra: ["--step-timeout", "3"])
        try run.startWorker()
        let hung = try run.startWorker(["--fault-plan", "hang@6:compute"])
        try run.startWorker()
        try run.expectCompletesLikeReference()
        let lost = try #require(run.lostEvent(of: hung), "\(run.events)")
        #expect((lost["reason"] as? String)?.contains("while computing") == true, "\(lost)")
        let started = try #require(run.faultTime(of: hung))
        ScenarioReport(
            scenario: "1c. A worker hangs (heartbeats continue)", injected: "endless wait before step 6's forward pass",
            outcome: "removed at the 3 s step deadline as the one not waiting on the ring", bitwiseEqual: true,
            detectionSeconds: (lost["time"] as! Double) - started, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 2: SIGSTOP a worker inside an all-reduce past the heartbeat timeout, then SIGCONT
    /// it: it is removed, its old-epoch messages are dropped, and it rejoins at a step boundary.
    @Test func frozenWorkerIsRemovedAndRejoins() throws {
        let run = FaultRun(iterations: 200)
        try run.startCoordinator(workers: 3)
        try run.startWorker()
        let frozen = try run.startWorker(["--fault-plan", "stop@10:ring:5"])
        try run.startWorker()
        let pid = Int(frozen.process.processIdentifier)
        let removed = run.waitUntil { run.events("lost").contains { $0["pid"] as? Int == pid } }
        kill(frozen.process.processIdentifier, SIGCONT)
        try #require(removed, "the frozen worker was not removed: \(run.events)")
        let output = try run.expectCompletesLikeReference()
        #expect(frozen.wait(seconds: 30) == 0, "\(frozen.output)")
        let joins = run.events("joined").filter { $0["pid"] as? Int == pid }.count
        #expect(joins == 2, "the woken worker should join again:\n\(frozen.output)\n\(output)")
        #expect(frozen.output.contains("joining again"), "\(frozen.output)")
        let lost = run.lostEvent(of: frozen)!
        let stopped = run.faultTime(of: frozen)!
        ScenarioReport(
            scenario: "2. SIGSTOP a worker in an all-reduce, SIGCONT later", injected: "stop at step 10, ring send 5",
            outcome: "removed; woken worker dropped old-epoch messages and rejoined", bitwiseEqual: true,
            detectionSeconds: (lost["time"] as! Double) - stopped, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 3a: two of four workers die at the same step.
    @Test func twoOfFourKilledAtOnce() throws {
        let run = FaultRun(iterations: 30)
        try run.startCoordinator(workers: 4)
        try run.startWorker()
        let a = try run.startWorker(["--fault-plan", "kill@8:compute"])
        let b = try run.startWorker(["--fault-plan", "kill@8:compute"])
        try run.startWorker()
        try run.expectCompletesLikeReference()
        let lost = Set(run.events("lost").compactMap { $0["pid"] as? Int })
        #expect(lost.isSuperset(of: [Int(a.process.processIdentifier), Int(b.process.processIdentifier)]))
        #expect(run.events("membership").last?["workers"] as? Int == 2)
        ScenarioReport(
            scenario: "3a. SIGKILL two of four workers at once", injected: "kill 2 at step 8",
            outcome: "both lost, step 8 re-run by 2", bitwiseEqual: true, detectionSeconds: nil, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 3b: all workers but one die, at different steps and points.
    @Test func allButOneKilled() throws {
        let run = FaultRun(iterations: 30)
        try run.startCoordinator(workers: 3)
        try run.startWorker(["--fault-plan", "kill@5:ring:2"])
        let survivor = try run.startWorker()
        try run.startWorker(["--fault-plan", "kill@9:result"])
        try run.expectCompletesLikeReference()
        #expect(run.events("lost").count == 2)
        #expect(run.events("membership").last?["workers"] as? Int == 1)
        #expect(survivor.wait(seconds: 30) == 0)
        ScenarioReport(
            scenario: "3b. SIGKILL all workers but one", injected: "kill at step 5 (ring send 2) and 9 (after result)",
            outcome: "one worker finishes the run", bitwiseEqual: true, detectionSeconds: nil, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 3c: `--max-workers 2` keeps a third worker waiting; when a member dies the spare
    /// takes its place at once.
    @Test func spareWorkerReplacesTheDeadOne() throws {
        let run = FaultRun(iterations: 300)
        try run.startCoordinator(workers: 2, extra: ["--max-workers", "2"])
        let victim = try run.startWorker()
        try run.startWorker()
        try #require(run.waitUntil { !run.events("membership").isEmpty }, "\(run.coordinator!.output)")
        let spare = try run.startWorker()
        try #require(run.waitUntil { run.events("joined").count == 3 }, "\(run.events)")
        kill(victim.process.processIdentifier, SIGKILL)
        try run.expectCompletesLikeReference()
        let memberships = run.events("membership").map { $0["workers"] as? Int ?? 0 }
        #expect(memberships == [2, 2], "\(run.events)")
        #expect(run.events("lost").count == 1, "\(run.events)")
        #expect(run.events("paused").isEmpty)
        #expect(spare.output.contains("ready at epoch 2"), "\(spare.output)")
        ScenarioReport(
            scenario: "3c. A spare worker (--max-workers 2) replaces a dead one", injected: "kill -9 1 of 2 while 1 waits",
            outcome: "the waiting worker is admitted in the same recovery", bitwiseEqual: true, detectionSeconds: nil,
            recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 3d: below `--min-workers` the coordinator pauses, with a status line, until a
    /// worker joins, then goes on.
    @Test func pausesBelowMinimumUntilAWorkerJoins() throws {
        let run = FaultRun(iterations: 30)
        let coordinator = try run.startCoordinator(workers: 2, extra: ["--min-workers", "2"])
        try run.startWorker()
        try run.startWorker(["--fault-plan", "kill@10:compute"])
        try #require(run.waitUntil { !run.events("paused").isEmpty }, "\(coordinator.output)")
        try run.startWorker()
        let output = try run.expectCompletesLikeReference()
        #expect(output.contains("paused before step 10"), "\(output)")
        #expect(run.events("resumed").count == 1)
        ScenarioReport(
            scenario: "3d. Below --min-workers 2", injected: "kill 1 of 2 at step 10, start another later",
            outcome: "paused with a status line, resumed when the new worker joined", bitwiseEqual: true,
            detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 4a: a new worker joins a running job and receives the model at a step boundary.
    @Test func workerJoinsMidRun() throws {
        let run = FaultRun(iterations: 150)
        try run.startCoordinator(workers: 2)
        try run.startWorker()
        try run.startWorker()
        try #require(
            run.waitUntil {
                FileManager.default.fileExists(atPath: run.runDirectory + "/metrics.jsonl")
                    && ((try? String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8))?.isEmpty == false)
            })
        let newcomer = try run.startWorker()
        try run.expectCompletesLikeReference()
        let grown = run.events("membership").first { $0["workers"] as? Int == 3 }
        #expect(grown != nil && (grown!["step"] as! Int) > 5, "\(run.events)\n\(newcomer.output)")
        #expect(newcomer.wait(seconds: 30) == 0)
        ScenarioReport(
            scenario: "4a. A new worker joins mid-run", injected: "third worker started after step 5",
            outcome: "admitted at step \(grown?["step"] as? Int ?? 0) with the model", bitwiseEqual: true,
            detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 4b: a killed worker is restarted and rejoins.
    @Test func killedWorkerRestartsAndRejoins() throws {
        let run = FaultRun(iterations: 150)
        try run.startCoordinator(workers: 3)
        try run.startWorker()
        let victim = try run.startWorker(["--fault-plan", "kill@10:ring:7"])
        try run.startWorker()
        let pid = Int(victim.process.processIdentifier)
        try #require(run.waitUntil { run.events("lost").contains { $0["pid"] as? Int == pid } }, "\(run.events)")
        try run.startWorker()
        try run.expectCompletesLikeReference()
        let events = run.events
        let lostIndex = events.firstIndex { $0["event"] as? String == "lost" }!
        #expect(events[lostIndex...].contains { $0["event"] as? String == "membership" && $0["workers"] as? Int == 3 }, "\(events)")
        ScenarioReport(
            scenario: "4b. A killed worker is restarted", injected: "kill at step 10 (ring send 7), start a new worker",
            outcome: "back to 3 workers at the next step boundary", bitwiseEqual: true, detectionSeconds: nil,
            recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 5: SIGKILL the coordinator; the workers notice within the heartbeat timeout and
    /// exit (status 3); a new coordinator with --resume continues from the latest checkpoint.
    @Test func coordinatorKilledAndResumed() throws {
        let run = FaultRun(iterations: 300)
        let first = try run.startCoordinator(workers: 2, checkpointEvery: 100)
        let workers = [try run.startWorker(), try run.startWorker()]
        let checkpoints = CheckpointDirectory(runDirectory: run.runDirectory)
        try #require(run.waitUntil { !checkpoints.files().isEmpty }, "no checkpoint:\n\(first.output)")
        let noticed = run.killCoordinatorExpectingWorkersToExit(workers)
        #expect(noticed <= 4, "workers took \(noticed) s to exit")
        let resumedFrom = try checkpoints.latestValid().checkpoint.step
        run.endpoint = "ipc://\(run.directory)/coordinator-2.sock"
        try run.startCoordinator(workers: 2, resume: true)
        try run.startWorker()
        try run.startWorker()
        let output = try run.expectCompletesLikeReference()
        #expect(output.contains("resuming"), "\(output)")
        ScenarioReport(
            scenario: "5. SIGKILL the coordinator, restart with --resume", injected: "kill after checkpoint \(resumedFrom)",
            outcome: "workers exit (status 3) in \(String(format: "%.1f", noticed)) s; resumed from step \(resumedFrom)",
            bitwiseEqual: true, detectionSeconds: noticed, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// The shortest heartbeat timeout works: workers waiting to be admitted (the coordinator
    /// wants a third) exit within it when the coordinator is SIGKILLed, and shorter ones are refused.
    @Test func shortestHeartbeatTimeoutEndsWaitingWorkers() throws {
        let run = FaultRun(iterations: 30)
        let coordinator = try run.startCoordinator(workers: 3, extra: ["--heartbeat-timeout", "1"])
        let workers = [try run.startWorker(["--heartbeat-timeout", "1"]), try run.startWorker(["--heartbeat-timeout", "1"])]
        try #require(run.waitUntil { run.events("joined").count == 2 }, "\(coordinator.output)")
        let noticed = run.killCoordinatorExpectingWorkersToExit(workers)
        #expect(noticed <= 3, "workers took \(noticed) s to exit")
        ScenarioReport(
            scenario: "5b. SIGKILL the coordinator while workers wait to be admitted", injected: "--heartbeat-timeout 1, kill",
            outcome: "workers exit (status 3) in \(String(format: "%.1f", noticed)) s; a timeout below 1 s is refused",
            bitwiseEqual: nil, detectionSeconds: noticed, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
        for command in [["worker", "--coordinator", "ipc:///tmp/x"], ["coordinator", "--workers", "1"]] {
            let (status, output) = try ToolProcess.run(command + ["--heartbeat-timeout", "0.5"])
            #expect(status != 0 && output.contains("--heartbeat-timeout must be at least 1.0 s"), "\(output)")
        }
    }

    /// Scenario 6: message faults from the seeded injector, on the coordinator's and every
    /// worker's sends: lost and damaged messages cost a step deadline and a new epoch,
    /// duplicates and delays cost nothing.
    @Test(arguments: [("drop", 0.004), ("delay", 0.05), ("duplicate", 0.05), ("truncate", 0.004), ("corrupt", 0.004)])
    func messageFaults(kind: String, rate: Double) throws {
        let run = FaultRun(iterations: 30)
        let spec = { (seed: Int) in "seed=\(seed),\(kind)=\(rate)" }
        try run.startCoordinator(workers: 3, extra: ["--inject-faults", spec(100), "--step-timeout", "1.5"])
        for seed in 1...3 { try run.startWorker(["--inject-faults", spec(seed)]) }
        let output = try run.expectCompletesLikeReference()
        var injected = 0
        for text in [output] + run.workers.map({ $0.wait(seconds: 30) >= 0 ? $0.output : "" }) {
            for line in text.split(separator: "\n") where line.contains("injected faults:") {
                if let range = line.range(of: "\(kind) ") { injected += Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0 }
            }
        }
        #expect(injected > 0, "no \(kind) was injected")
        ScenarioReport(
            scenario: "6. Message faults: \(kind)", injected: "\(kind) with p = \(rate) per send, \(injected) injected",
            outcome: "\(run.events("retry").count) step deadline(s) then re-run; all else dropped by checks",
            bitwiseEqual: true, detectionSeconds: nil, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 7a: the newest checkpoint is damaged before --resume: the previous one is used,
    /// with a warning, and the run still ends bitwise equal.
    @Test func corruptLatestCheckpointFallsBack() throws {
        let run = FaultRun(iterations: 30)
        let first = FaultRun(iterations: 20)
        try first.startCoordinator(workers: 2, checkpointEvery: 10)
        try first.startWorker()
        try first.startWorker()
        try #require(first.coordinator!.wait(seconds: 120) == 0, "\(first.coordinator!.output)")
        try FileManager.default.moveItem(atPath: first.runDirectory, toPath: run.runDirectory)
        let newest = CheckpointDirectory(runDirectory: run.runDirectory).files()[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: newest))

        try run.startCoordinator(workers: 2, resume: true)
        try run.startWorker()
        try run.startWorker()
        let output = try run.expectCompletesLikeReference()
        #expect(output.contains("warning") && output.contains("step 10 of 30"), "\(output)")
        ScenarioReport(
            scenario: "7a. Corrupt the newest checkpoint, then --resume", injected: "one byte flipped in step-20",
            outcome: "warning, resumed from step 10", bitwiseEqual: true, detectionSeconds: nil, recoverySeconds: nil,
            wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }

    /// Scenario 7b: the disk fills while a checkpoint is written (a file-size limit on the
    /// coordinator): the run stops with a clear error, the earlier checkpoints are intact, and
    /// a later --resume finishes bitwise equal.
    @Test func fullDiskWhileCheckpointingLosesNothing() throws {
        let run = FaultRun(iterations: 30)
        let first = FaultRun(iterations: 20)
        try first.startCoordinator(workers: 2, checkpointEvery: 10)
        try first.startWorker()
        try first.startWorker()
        try #require(first.coordinator!.wait(seconds: 120) == 0, "\(first.coordinator!.output)")
        try FileManager.default.moveItem(atPath: first.runDirectory, toPath: run.runDirectory)
        let checkpoints = CheckpointDirectory(runDirectory: run.runDirectory)
        let before = try checkpoints.files().map { try Data(contentsOf: URL(fileURLWithPath: $0)) }

        // 64 KiB per file: metrics and events fit, a 0.3 MB checkpoint does not.
        let limited = try run.startCoordinator(workers: 2, resume: true, shell: "ulimit -f 64")
        try run.startWorker()
        try run.startWorker()
        #expect(limited.wait(seconds: 120) == 1)
        #expect(limited.output.contains("File too large"), "\(limited.output)")
        let after = try checkpoints.files().map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(after == before, "saved checkpoints changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: run.runDirectory + "/checkpoints").filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        try run.startCoordinator(workers: 2, resume: true)
        try run.startWorker()
        try run.startWorker()
        try run.expectCompletesLikeReference()
        ScenarioReport(
            scenario: "7b. Disk full while checkpointing", injected: "64 KiB file-size limit on the coordinator",
            outcome: "clear error, earlier checkpoints byte-identical; --resume finishes", bitwiseEqual: true,
            detectionSeconds: nil, recoverySeconds: nil, wallSeconds: -run.started.timeIntervalSinceNow
        ).save()
    }
}

/// Seeds of scenario 1: three in CI, more from scripts/soak (RESNET_DDP_SOAK_SEEDS).
let killSeeds = Array(1...max(1, Int(ProcessInfo.processInfo.environment["RESNET_DDP_SOAK_SEEDS"] ?? "") ?? 3))
