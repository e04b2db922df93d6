import Cluster
import Foundation
import TestSupport
import Testing
import Training

private let canRun = realDataDirectory != nil && resnetDDPExecutable != nil

/// Trains ResNet-8 for 20 steps of 128 real images and returns the final parameters' hash and
/// the logged training and test losses.
private func trained(_ extra: [String]) throws -> (hash: UInt64, losses: [Double]) {
    let run = temporaryDirectory() + "/run"
    defer { try? FileManager.default.removeItem(atPath: run) }
    let (status, output) = try ToolProcess.run(
        [
            "train", "--data", realDataDirectory!, "--out", run, "--depth", "8",
            "--iterations", "20", "--eval-every", "20", "--log-every", "10",
            "--threads", "2",
        ] + extra)
    try #require(status == 0, "train \(extra) failed:\n\(output)")
    let losses = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").flatMap { line in
        let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        return ["train_loss", "test_loss"].compactMap { (record[$0] as? NSNumber)?.doubleValue }
    }
    return (try CheckpointDirectory(runDirectory: run).latestValid().checkpoint.modelState.parameterHash, losses)
}

@Suite(.serialized) struct DistributedEquivalenceTests {
    @Test func shardsAreContiguousAndEven() {
        #expect(Coordinator.shards(count: 128, workers: 3).map(\.count) == [43, 43, 42])
        #expect(Coordinator.shards(count: 128, workers: 3).map(\.lowerBound) == [0, 43, 86])
        #expect(Coordinator.shards(count: 5, workers: 8).map(\.count) == [1, 1, 1, 1, 1, 0, 0, 0])
        #expect(Coordinator.shards(count: 10_000, workers: 4).allSatisfy { $0.count == 2500 })
    }

    /// Synchronized batch norm and exact (fixed-point) reductions: any number of workers gives
    /// bitwise the same weights, and the same logged losses, as one process.
    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func syncBatchNormMatchesSingleProcessBitwise() throws {
        let single = try trained(["--workers", "0"])
        #expect(single.losses.count == 3)  // train loss at steps 10 and 20, test loss at 20
        for workers in 1...4 {
            let distributed = try trained(["--workers", "\(workers)", "--worker-threads", "1"])
            #expect(distributed.hash == single.hash, "\(workers) workers")
            #expect(distributed.losses == single.losses, "\(workers) workers")
        }
        // Spinning before a wait changes when a message is noticed, never what is summed: a
        // short spin, and one that outlasts every wait, give the same bits.
        for spin in ["300", "1000000"] {
            let distributed = try trained(["--workers", "2", "--worker-threads", "1", "--worker-wait-spin-microseconds", spin])
            #expect(distributed.hash == single.hash, "wait spin \(spin) us")
            #expect(distributed.losses == single.losses, "wait spin \(spin) us")
        }
    }

    @Test(.enabled(if: canRun, "needs real CIFAR-10 and the release build"))
    func localBatchNormWithOneWorkerMatchesSingleProcess() throws {
        let single = try trained(["--workers", "0"]).hash
        #expect(try trained(["--workers", "1", "--batchnorm", "local"]).hash == single)
        // With two workers, local statistics differ from the batch's: the weights must differ.
        #expect(try trained(["--workers", "2", "--worker-threads", "1", "--batchnorm", "local"]).hash != single)
    }
}
