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
        let base = [
            "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "gpu7,gpu8,gpu9,gpu10", "RESNET_DDP_DRY_RUN": "1",
            "RESNET_DDP_PORT": "6000", "RESNET_DDP_DATA": "/scratch/cifar",
        ]
        let (s0, coordinator) = try shell(
            "\(repository)/cluster/slurm-task --depth 56 --out runs/r56",
            environment: base.merging(["SLURM_PROCID": "0"]) { $1 })
        #expect(s0 == 0)
        #expect(coordinator.contains("coordinator --listen tcp://gpu7:6000 --workers 3 --depth 56 --out runs/r56"), "\(coordinator)")
        let (s2, worker) = try shell(
            "\(repository)/cluster/slurm-task",
            environment: base.merging([
                "SLURM_PROCID": "2", "SLURMD_NODENAME": "gpu9",
                "SLURM_CPUS_PER_TASK": "8",
            ]) { $1 })
        #expect(s2 == 0)
        #expect(worker.contains("worker --coordinator tcp://gpu7:6000 --data /scratch/cifar --threads 8 --ring-host gpu9"), "\(worker)")
        let (s3, _) = try shell("\(repository)/cluster/slurm-task", environment: ["SLURM_PROCID": "0"])
        #expect(s3 != 0)
        let (syntax, message) = try shell("bash -n \(repository)/cluster/slurm.sbatch && bash -n \(repository)/cluster/launch")
        #expect(syntax == 0, "\(message)")
    }
}
