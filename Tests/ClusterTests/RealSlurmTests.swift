import Foundation
import TestSupport
import Testing
import Training

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
private let canRun =
    (ipTool != nil && SimulatedSlurm.installed && realDataDirectory != nil && resnetDDPExecutable != nil)
    || requiredByCI

/// cluster/slurm.sbatch on a real Slurm: slurmctld and three slurmd, one per simulated host, so
/// the coordinator (task 0, on host0) and the two workers run on three different hosts.
@Suite(.serialized, .enabled(if: canRun, "needs root, iproute2, slurm-wlm with munge, real CIFAR-10 and the release build"))
final class RealSlurmTests {
    let directory = temporaryDirectory()
    let hosts: SimulatedHosts
    let slurm: SimulatedSlurm

    init() throws {
        hosts = try SimulatedHosts(count: 3)
        do {
            slurm = try SimulatedSlurm(hosts: hosts, directory: directory)
        } catch {
            hosts.remove()
            throw error
        }
    }

    deinit {
        slurm.stop()
        hosts.remove()
    }

    /// Submits `cluster/slurm.sbatch` with training flags; returns the job id and its run directory.
    func submit(_ name: String, iterations: Int, wait: Bool = false) throws -> (job: String, run: String, output: String) {
        let run = "\(directory)/run-\(name)", output = "\(directory)/\(name).out"
        let environment = slurm.environment.merging([
            "RESNET_DDP_REPO": repository, "RESNET_DDP_DATA": realDataDirectory!,
            "RESNET_DDP_PORT": "\(Int.random(in: 20_000..<60_000))",
        ]) { $1 }
        let arguments =
            ["--parsable", "--nodes=3", "--output=\(output)"] + (wait ? ["--wait"] : [])
            + [
                "\(repository)/cluster/slurm.sbatch", "--depth", "8", "--iterations", "\(iterations)",
                "--eval-every", "\(iterations)", "--log-every", "5", "--out", run,
            ]
        let (status, text) = try ToolProcess.run(
            arguments, executable: "/usr/bin/sbatch", environment: environment,
            seconds: wait ? 300 : 60)
        try #require(status == 0 || wait, "sbatch: \(text)\n\(slurm.log("slurmctld"))")
        let job = text.split(separator: "\n").first.map { String($0.split(separator: ";")[0]) } ?? ""
        return (job, run, output)
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The job's exit code as Slurm reports it ("0:0" is success).
    func exitCode(_ job: String) throws -> String {
        let (_, output) = try slurm.run("/usr/bin/scontrol", ["show", "job", job])
        return output.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("ExitCode=") }.map { String($0.dropFirst(9)) } ?? output
    }

    func jobEnded(_ job: String) -> Bool {
        let output = (try? slurm.run("/usr/bin/squeue", ["-h", "-j", job]).output) ?? "?"
        return output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    func processes() -> [(host: String, pid: Int32, command: String)] { hosts.resnetDDPProcesses() }

    func singleProcess(iterations: Int) throws -> ModelState {
        let single = "\(directory)/single-\(iterations)"
        let (status, output) = try ToolProcess.run([
            "train", "--data", realDataDirectory!, "--out", single, "--depth", "8",
            "--iterations", "\(iterations)", "--eval-every", "\(iterations)",
            "--log-every", "5",
        ])
        try #require(status == 0, "\(output)")
        return try CheckpointDirectory(runDirectory: single).latestValid().checkpoint.modelState
    }

    @Test func sbatchOnThreeNodesMatchesSingleProcess() throws {
        let (job, run, output) = try submit("short", iterations: 10, wait: true)
        let log = text(output)
        #expect(try exitCode(job) == "0:0", "\(log)")
        // Progress lines in the job's output file; workers on the two other hosts.
        #expect(log.contains("step 5/10") && log.contains("step 10/10") && log.contains("finished 10 steps"), "\(log)")
        #expect(log.contains("on tcp://host0:") && log.contains("(host1 pid") && log.contains("(host2 pid"), "\(log)")
        let distributed = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
        #expect(distributed.step == 10)
        #expect(distributed.modelState == (try singleProcess(iterations: 10)))
        #expect(waitUntil(seconds: 30) { processes().isEmpty }, "\(processes())")
    }

    @Test func aWorkerKilledMidRunIsSurvived() throws {
        let (job, run, output) = try submit("killed", iterations: 40)
        let started = waitUntil(seconds: 120) { text(output).contains("step 10/40") }
        try #require(started, "\(text(output))")
        let worker = try #require(processes().first { $0.host == "host2" && $0.command.contains(" worker ") })
        kill(worker.pid, SIGKILL)  // as the OOM killer would
        #expect(waitUntil(seconds: 180) { jobEnded(job) }, "\(text(output))")
        let log = text(output)
        #expect(log.contains("lost worker") && log.contains("finished 40 steps"), "\(log)")
        // The run finished without the worker, so the job succeeded; srun's error is reported.
        #expect(try exitCode(job) == "0:0", "\(log)")
        #expect(log.contains("slurm.sbatch: the run finished; a worker task ended with an error"), "\(log)")
        let distributed = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
        #expect(distributed.step == 40)
        #expect(distributed.modelState == (try singleProcess(iterations: 40)))
    }

    @Test func scancelCheckpointsAndLeavesNoProcess() throws {
        let (job, run, output) = try submit("cancelled", iterations: 5000)
        let started = waitUntil(seconds: 120) { text(output).contains("step 10/5000") }
        try #require(started, "\(text(output))")
        try #require(processes().count == 3, "\(processes())")
        let (status, message) = try slurm.run("/usr/bin/scancel", [job])
        #expect(status == 0, "\(message)")
        // Within KillWait (10 s): the coordinator checkpoints and stops the workers itself.
        #expect(waitUntil(seconds: 9) { processes().isEmpty }, "\(processes())\n\(text(output))")
        #expect(waitUntil(seconds: 60) { jobEnded(job) && processes().isEmpty }, "\(processes())")
        let log = text(output)
        let interrupted = try #require(log.split(separator: "\n").first { $0.hasPrefix("interrupted at step ") }, "\(log)")
        let step = Int(interrupted.dropFirst("interrupted at step ".count).prefix { $0.isNumber })
        #expect(try CheckpointDirectory(runDirectory: run).latestValid().checkpoint.step == step, "\(log)")
    }
}
