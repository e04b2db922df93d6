import Cluster
import Foundation
import TestSupport
import Testing
import Training

private let canRun = realDataDirectory != nil && resnetDDPExecutable != nil

/// Trains ResNet-8 for 20 steps of 128 real images and returns the final parameters' hash.
private func trainedHash(_ extra: [String]) throws -> UInt64 {
    let run = temporaryDirectory() + "/run"
    defer { try? FileManager.default.removeItem(atPath: run) }
    let (status, output) = try ToolProcess.run(["train", "--data", realDataDirectory!, "--out", run, "--depth", "8",
                                                "--iterations", "20", "--eval-every", "20", "--log-every", "10",
                                                "--threads", "2"] + extra)
    try #require(status == 0, "train \(extra) failed:\n\(output)")
    return try CheckpointDirectory(runDirectory: run).latestValid().checkpoint.modelState.parameterHash
}

@Suite(.serialized) struct DistributedEquivalenceTests {
    @Test func shardsAreContiguousAndEven() {
        #expect(Coordinator.shards(count: 128, workers: 3).map(\.count) == [43, 43, 42])
        #expect(Coordinator.shards(count: 128, workers: 3).map(\.lowerBound) == [0, 43, 86])
        #expect(Coordinator.shards(count: 5, workers: 8).map(\.count) == [1, 1, 1, 1, 1, 0, 0, 0])
        #expect(Coordinator.shards(count: 10_000, workers: 4).allSatisfy { $0.count == 2500 })
    }

    /// Synchronized batch norm and exact (fixed-point) reductions: any number of workers gives
    /// bitwise the same weights as one process.
    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func syncBatchNormMatchesSingleProcessBitwise() throws {
        let single = try trainedHash(["--workers", "0"])
        for workers in 1...4 {
            #expect(try trainedHash(["--workers", "\(workers)", "--worker-threads", "1"]) == single, "\(workers) workers")
        }
    }

    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func localBatchNormWithOneWorkerMatchesSingleProcess() throws {
        let single = try trainedHash(["--workers", "0"])
        #expect(try trainedHash(["--workers", "1", "--batchnorm", "local"]) == single)
        // With two workers, local statistics differ from the batch's: the weights must differ.
        #expect(try trainedHash(["--workers", "2", "--worker-threads", "1", "--batchnorm", "local"]) != single)
    }
}
