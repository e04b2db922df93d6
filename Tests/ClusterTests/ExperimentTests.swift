import Foundation
import TestSupport
import Testing
import Training

@Suite(.serialized) struct ExperimentTests {
    /// A short `figure6` trains every net of the depths asked for, plain and residual (small
    /// depths: the mechanism is the same at 20-56, the test set's evaluation far cheaper); running
    /// it again skips every finished run.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func figure6RunsEveryNetAndResumesBySkipping() throws {
        let out = temporaryDirectory() + "/figure6"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let arguments = [
            "experiment", "figure6", "--out", out, "--schedule", "short", "--iterations", "4", "--depths", "8,14",
            "--data", realDataDirectory!,
        ]
        let first = try ToolProcess.run(arguments, seconds: 600)
        try #require(first.status == 0, "\(first.output)")
        for name in ["plain-8", "plain-14", "resnet-8", "resnet-14"] {
            let checkpoint = try CheckpointDirectory(runDirectory: "\(out)/\(name)").latestValid().checkpoint
            #expect(checkpoint.step == 4, "\(name)")
            #expect(checkpoint.configuration.milestones == [2, 3] && checkpoint.configuration.residual == name.hasPrefix("resnet"))
        }
        let second = try ToolProcess.run(arguments, seconds: 120)
        #expect(second.status == 0)
        #expect(second.output.components(separatedBy: "skipped").count - 1 == 4, "\(second.output)")
    }

    /// `--nets resnet` trains the residual net of each depth and never starts its plain twin (a
    /// paper-schedule folder can then finish one kind without restarting the other).
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func netsKeepsOneKind() throws {
        let out = temporaryDirectory() + "/figure6-nets"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try ToolProcess.run(
            [
                "experiment", "figure6", "--out", out, "--schedule", "short", "--iterations", "4", "--depths", "8",
                "--nets", "resnet", "--data", realDataDirectory!,
            ], seconds: 300)
        try #require(result.status == 0, "\(result.output)")
        #expect(try CheckpointDirectory(runDirectory: "\(out)/resnet-8").latestValid().checkpoint.step == 4)
        #expect(!FileManager.default.fileExists(atPath: "\(out)/plain-8"), "\(result.output)")
        #expect(result.output.contains("[1/1] resnet-8"), "\(result.output)")
    }
}

/// Processes whose command line mentions `text` (zombies have none and are not listed).
func processes(mentioning text: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: data, as: UTF8.self).contains(text)
    }
}

/// A long figure6 experiment of ResNet-8 / plain-8 in a new folder, started and past its first metrics line.
private func startLongExperiment(_ extra: [String] = []) throws -> (tool: ToolProcess, out: String) {
    let out = temporaryDirectory() + "/experiment"
    let tool = try ToolProcess(
        [
            "experiment", "figure6", "--out", out, "--depths", "8", "--schedule", "short",
            "--iterations", "100000", "--threads", "1", "--data", realDataDirectory!,
        ] + extra)
    let metrics = "\(out)/plain-8/metrics.jsonl"
    let started = waitUntil(seconds: 120) { ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").contains("\"step\"") }
    if !started { kill(tool.process.processIdentifier, SIGKILL) }
    try #require(started, "no metrics line within 120 s: \(tool.output)")
    return (tool, out)
}

@Suite(.serialized) struct ExperimentSignalTests {
    /// SIGINT to `experiment` reaches its `train` child, which stops with a checkpoint; the
    /// experiment exits 130, and no process of the run is left.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func interruptStopsTheRunningTrainingWithACheckpoint() throws {
        let (tool, out) = try startLongExperiment()
        defer { try? FileManager.default.removeItem(atPath: out) }
        kill(tool.process.processIdentifier, SIGINT)
        let status = tool.wait(seconds: 60)
        #expect(status == 130, "\(tool.output)")
        #expect(waitUntil(seconds: 10) { processes(mentioning: out).isEmpty }, "left running: \(processes(mentioning: out))")
        let checkpoint = try CheckpointDirectory(runDirectory: "\(out)/plain-8").latestValid().checkpoint
        #expect(checkpoint.step >= 50 && checkpoint.step < 100_000)
        #expect(tool.output.contains("interrupted"), "\(tool.output)")
    }

    /// A SIGKILLed `experiment` (a batch system's time limit, the end of a session) does not leave
    /// its `train` running: the child notices, stops with a checkpoint and exits; while it runs, a
    /// second trainer on the same directory is refused and told its pid.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func killedExperimentLeavesNoTrainerAndOneWriterPerDirectory() throws {
        let (tool, out) = try startLongExperiment()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = "\(out)/plain-8"
        let trainers = processes(mentioning: run)
        try #require(trainers.count == 1, "\(trainers)")
        let second = try ToolProcess.run(["train", "--resume", run, "--data", realDataDirectory!], seconds: 60)
        #expect(second.status != 0)
        #expect(second.output.contains("in use by another trainer (pid \(trainers[0]))"), "\(second.output)")

        kill(tool.process.processIdentifier, SIGKILL)
        tool.process.waitUntilExit()
        #expect(waitUntil(seconds: 60) { processes(mentioning: out).isEmpty }, "left running: \(processes(mentioning: out))")
        let checkpoint = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
        #expect(checkpoint.step >= 50 && checkpoint.step < 100_000)

        // A resumed run can be extended, not cut below what it has reached; config.json stays.
        let config = try String(contentsOfFile: "\(run)/config.json", encoding: .utf8)
        let cut = try ToolProcess.run(["train", "--resume", run, "--iterations", "10", "--data", realDataDirectory!], seconds: 60)
        #expect(cut.status != 0)
        #expect(cut.output.contains("--iterations 10 is below the step the run has reached"), "\(cut.output)")
        #expect(try String(contentsOfFile: "\(run)/config.json", encoding: .utf8) == config)
    }

    /// A `train` that dies (SIGKILL: the OOM killer, a lost worker's error) is resumed from its
    /// newest checkpoint by the experiment, which trains on to the next checkpoint.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func failedRunIsResumedFromItsNewestCheckpoint() throws {
        let (tool, out) = try startLongExperiment(["--checkpoint-every", "20"])
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = "\(out)/plain-8"
        let directory = CheckpointDirectory(runDirectory: run)
        try #require(waitUntil(seconds: 300) { (try? directory.latestValid()) != nil }, "no checkpoint: \(tool.output)")
        let first = try #require(processes(mentioning: run).first)
        kill(first, SIGKILL)
        let restart = #/restart 1 of 3 from step (\d+)/#
        try #require(waitUntil(seconds: 60) { tool.output.contains(restart) }, "\(tool.output)")
        let match = try #require(tool.output.firstMatch(of: restart))
        let from = try #require(Int(match.1))
        #expect(processes(mentioning: run).allSatisfy { $0 != first })
        #expect(
            waitUntil(seconds: 300) { ((try? directory.latestValid())?.checkpoint.step ?? 0) > from },
            "no checkpoint after step \(from): \(tool.output)")
        kill(tool.process.processIdentifier, SIGINT)
        #expect(tool.wait(seconds: 60) == 130, "\(tool.output)")
        #expect(!tool.output.contains("restart 2"), "\(tool.output)")
    }
}

/// `train --workers` configurations that cannot work fail at once with the reason.
@Suite(.serialized) struct LocalWorkersRefusalTests {
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func moreWorkersThanImagesIsRefused() throws {
        let out = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try ToolProcess.run(
            [
                "train", "--workers", "3", "--batch-size", "2", "--depth", "8", "--iterations", "2",
                "--out", out, "--data", realDataDirectory!,
            ], seconds: 60)
        #expect(status != 0)
        #expect(output.contains("--workers 3 is more than the 2 images of a batch"), "\(output)")
    }

    /// Workers that die at start (here: a truncated test file, which only the workers read) end
    /// the run within seconds, not after the 120 s rendezvous.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func workersThatFailAtStartEndTheRunAtOnce() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        for index in 1...5 {
            try FileManager.default.createSymbolicLink(
                atPath: "\(data)/data_batch_\(index).bin",
                withDestinationPath: realDataFile("data_batch_\(index).bin"))
        }
        try Data(repeating: 1, count: 1000).write(to: URL(fileURLWithPath: data + "/test_batch.bin"))
        let started = Date()
        let (status, output) = try ToolProcess.run(
            [
                "train", "--workers", "2", "--depth", "8", "--iterations", "2",
                "--out", directory + "/run", "--data", data,
            ], seconds: 110)
        #expect(status != 0 && status != -1, "\(output)")
        #expect(output.contains("test_batch.bin"), "\(output)")
        #expect(output.contains("exited before all workers joined"), "\(output)")
        #expect(Date().timeIntervalSince(started) < 100, "waited for the rendezvous timeout")
    }
}

@Suite struct CoordinatorInterruptTests {
    /// Ctrl-C while the coordinator waits for workers ends it at once (exit 130), not after the
    /// rendezvous timeout.
    @Test(.enabled(if: resnetDDPExecutable != nil, "needs the release build"))
    func interruptDuringRendezvousStops() throws {
        let out = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let port = Int.random(in: 20_000..<60_000)
        let tool = try ToolProcess([
            "coordinator", "--listen", "tcp://127.0.0.1:\(port)", "--workers", "2", "--depth", "8",
            "--iterations", "2", "--out", out, "--rendezvous-timeout", "300",
        ])
        let waiting = waitUntil(seconds: 60) { tool.output.contains("waiting for 2 worker(s)") }
        if !waiting { kill(tool.process.processIdentifier, SIGKILL) }
        try #require(waiting, "\(tool.output)")
        kill(tool.process.processIdentifier, SIGINT)
        #expect(tool.wait(seconds: 30) == 130, "\(tool.output)")
        #expect(tool.output.contains("interrupted while waiting for workers to join"), "\(tool.output)")
    }
}

/// `train --workers --profile-workers`: every worker reports, per window of --log-every steps,
/// where its step time went, and the parts add up to the step.
@Suite struct WorkerPhaseProfileTests {
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func workersReportTheirPhases() throws {
        let out = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try ToolProcess.run(
            [
                "train", "--workers", "2", "--worker-threads", "1", "--depth", "8", "--iterations", "4",
                "--log-every", "2", "--profile-workers", "--out", out,
                "--data", realDataDirectory!,
            ], seconds: 120)
        try #require(status == 0, "\(output)")
        let profiles = try output.split(separator: "\n").filter { $0.hasPrefix("phases {") }.map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.dropFirst("phases ".count).utf8)) as? [String: Any])
        }
        #expect(profiles.count == 4, "two windows of two workers: \(output)")
        for profile in profiles {
            // ResNet-8 has 7 batch-norm layers, each summed over the ring in forward and in backward.
            #expect(profile["batchnorm_allreduces_per_step"] as? Int == 14, "\(profile)")
            #expect(profile["steps"] as? Int == 2 && profile["world_size"] as? Int == 2, "\(profile)")
            let part = { (key: String) in profile[key] as? Double ?? -1 }
            let parts = ["compute_ms", "batchnorm_allreduce_ms", "gradient_allreduce_ms"].map(part)
            #expect(parts.allSatisfy { $0 >= 0 } && part("between_steps_ms") >= 0, "\(profile)")
            #expect(abs(parts.reduce(0, +) - part("step_ms")) < 0.01, "\(profile)")
        }
        #expect(Set(profiles.compactMap { $0["rank"] as? Int }) == [0, 1])
        #expect(Set(profiles.compactMap { $0["step"] as? Int }) == [2, 4])
    }

    /// `--profile-worker-operations`: beside each phase line, the engine's time per operation,
    /// which fits inside the step it was measured in.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func workersReportTheirOperations() throws {
        let out = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try ToolProcess.run(
            [
                "train", "--workers", "2", "--worker-threads", "1", "--depth", "8", "--iterations", "4",
                "--log-every", "2", "--profile-workers", "--profile-worker-operations", "--out", out,
                "--data", realDataDirectory!,
            ], seconds: 120)
        try #require(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        let parse = { (prefix: String) in
            try lines.filter { $0.hasPrefix(prefix + " {") }.map { line in
                try #require(JSONSerialization.jsonObject(with: Data(line.dropFirst(prefix.count + 1).utf8)) as? [String: Any])
            }
        }
        let phases = try parse("phases"), operations = try parse("operations")
        #expect(operations.count == 4, "two windows of two workers: \(output)")
        for window in operations {
            let times = try #require(window["ms_per_step"] as? [String: Double], "\(window)")
            let phase = try #require(phases.first { $0["rank"] as? Int == window["rank"] as? Int && $0["step"] as? Int == window["step"] as? Int })
            let step = try #require(phase["step_ms"] as? Double)
            #expect(times.keys.contains { $0.hasPrefix("conv ") && $0.hasSuffix(" forward") }, "\(window)")
            #expect(times.values.allSatisfy { $0 >= 0 } && times.values.reduce(0, +) <= step, "\(window) in a step of \(step) ms")
        }
    }
}
