import Foundation
import TestSupport
import Testing
import Training

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Runs a shell command line with extra environment; returns (status, output).
private func shell(_ command: String, environment: [String: String] = [:]) throws -> (Int32, String) {
    try ToolProcess.run(["-c", command], executable: "/bin/bash", environment: environment, seconds: 240)
}

@Suite(.serialized) struct ClusterScriptsTests {
    @Test func slurmTaskTurnsSlurmEnvironmentIntoFlags() throws {
        let base = ["SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "gpu7,gpu8,gpu9,gpu10", "RESNET_DDP_DRY_RUN": "1",
                    "RESNET_DDP_PORT": "6000", "RESNET_DDP_DATA": "/scratch/cifar"]
        let (s0, coordinator) = try shell("\(repository)/cluster/slurm-task --depth 56 --out runs/r56",
                                          environment: base.merging(["SLURM_PROCID": "0"]) { $1 })
        #expect(s0 == 0)
        #expect(coordinator.contains("coordinator --listen tcp://gpu7:6000 --workers 3 --depth 56 --out runs/r56"), "\(coordinator)")
        let (s2, worker) = try shell("\(repository)/cluster/slurm-task",
                                     environment: base.merging(["SLURM_PROCID": "2", "SLURMD_NODENAME": "gpu9",
                                                                "SLURM_CPUS_PER_TASK": "8"]) { $1 })
        #expect(s2 == 0)
        #expect(worker.contains("worker --coordinator tcp://gpu7:6000 --data /scratch/cifar --threads 8 --ring-host gpu9"), "\(worker)")
        let (s3, _) = try shell("\(repository)/cluster/slurm-task", environment: ["SLURM_PROCID": "0"])
        #expect(s3 != 0)
        let (syntax, message) = try shell("bash -n \(repository)/cluster/slurm.sbatch && bash -n \(repository)/cluster/launch")
        #expect(syntax == 0, "\(message)")
    }

    /// The ssh launcher against this machine, with a stand-in for ssh that runs the command here,
    /// with CURVE keys made by the launcher.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func sshLauncherRunsATrainingAndRecordsPIDs() throws {
        let dir = temporaryDirectory()
        let fakeSSH = dir + "/fake-ssh"
        try "#!/usr/bin/env bash\nshift\nexec bash -c \"$*\"\n".write(toFile: fakeSSH, atomically: true, encoding: .utf8)
        chmod(fakeSSH, 0o755)
        try "# test hosts\nlocalhost 127.0.0.1\nlocalhost 127.0.0.1\n".write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        let port = Int.random(in: 20_000..<60_000)
        let (status, output) = try shell("\(repository)/cluster/launch --hosts \(dir)/hosts --listen-host 127.0.0.1 --port \(port) "
            + "--ssh \(fakeSSH) --state \(dir)/state --keys \(dir)/keys --data \(realDataDirectory!) -- --depth 8 --iterations 6 --eval-every 6 "
            + "--log-every 3 --out \(dir)/run")
        try #require(status == 0, "\(output)")
        let pids = try String(contentsOfFile: dir + "/state/pids", encoding: .utf8).split(separator: "\n")
        #expect(pids.count == 3 && pids[0].hasSuffix("coordinator") && pids[1].hasSuffix("worker"))
        #expect(try CheckpointDirectory(runDirectory: dir + "/run").latestValid().checkpoint.step == 6)
        let authorized = try String(contentsOfFile: dir + "/keys/authorized", encoding: .utf8)
        #expect(authorized.split(separator: "\n").count == 2 && authorized.contains("worker-1"))
        let worker = try String(contentsOfFile: dir + "/state/worker-0.log", encoding: .utf8)
        #expect(!worker.contains("error"), "\(worker)")
    }
}
