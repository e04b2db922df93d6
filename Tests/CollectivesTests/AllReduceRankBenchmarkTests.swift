import Cluster
import Collectives
import Foundation
import Testing

/// The one-rank-per-process all-reduce benchmark (`bench --allreduce --allreduce-rank`), its
/// ranks on threads here: every rank gets every measurement, and the sums it checks hold.
@Suite struct AllReduceRankBenchmarkTests {
    @Test(arguments: [2, 3, 5])
    func everyRankMeasuresEverySizeAndAlgorithm(workers: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rank-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let endpoints = (0..<workers).map { "ipc://\(directory)/rank\($0)" }
        // Back-to-back measurements of different sizes: a rank that finishes one early sends the
        // next one's messages to a rank still in the last, which must keep them, not drop them.
        let results = try onThreads(workers) { rank in
            var measured: [AllReduceRankBenchmark.Measurement] = []
            try AllReduceRankBenchmark.run(
                rank: rank, endpoints: endpoints, elements: [129, 1000, 3], algorithms: [.ring, .recursiveDoubling],
                iterations: 4, timeout: 20
            ) { measured.append($0) }
            return measured.map { "\($0.elements) \($0.algorithm.rawValue) \($0.seconds.count) \($0.seconds.allSatisfy { $0 > 0 })" }
        }
        let expected = [129, 1000, 3].flatMap { n in ["ring", "doubling"].map { "\(n) \($0) 4 true" } }
        for result in results { #expect(result == expected) }
    }
}
