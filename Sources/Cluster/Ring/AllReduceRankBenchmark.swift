import Collectives
import Foundation
import Timing
import Transport

/// One rank of an all-reduce benchmark whose ranks are separate processes, e.g. one per
/// simulated host (network namespace), so that the all-reduce crosses a modelled network.
/// Every rank runs the same sequence of (size, algorithm) measurements and returns its own
/// per-iteration times; the collective's time of an iteration is the slowest rank's, which the
/// caller takes over all ranks' results. Each iteration's sum is checked, so a benchmark that
/// measured a wrong collective fails instead of printing a figure.
public enum AllReduceRankBenchmark {
    public struct Measurement: Sendable {
        public let elements: Int
        public let algorithm: AllReduce.Algorithm
        public let seconds: [Double]
    }

    /// Untimed iterations before each measurement (connections, first allocations).
    public static let warmup = 3

    public static func run(
        rank: Int, endpoints: [String], elements: [Int], algorithms: [AllReduce.Algorithm],
        iterations: Int, timeout: Double = 60, measured: (Measurement) -> Void
    ) throws {
        let context = try ZMQContext()
        let incoming = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        _ = try incoming.bind(endpoints[rank])
        let ring = try ZMQCommunicator(
            context: context, rank: rank, endpoints: endpoints, runID: 1, incoming: incoming,
            timeout: timeout, log: { FileHandle.standardError.write(Data("\($0)\n".utf8)) })
        defer { ring.close() }
        let workers = endpoints.count
        // Every rank adds rank + 1: the sum is W (W + 1) / 2 in every element.
        let expected = Int64(workers * (workers + 1) / 2)
        // One step number per collective over the whole run: a fast rank may start the next
        // measurement while a slow one still finishes the last, and a message of an older step
        // would be discarded as stale.
        var step: UInt64 = 0
        for count in elements {
            var values = [Int64](repeating: 0, count: count)
            for algorithm in algorithms {
                let allReduce = AllReduce(ring, algorithm: algorithm)
                var seconds: [Double] = []
                for iteration in 0..<(warmup + iterations) {
                    for i in values.indices { values[i] = Int64(rank + 1) }
                    ring.step = step
                    step += 1
                    let start = monotonicSeconds()
                    try allReduce.sum(&values, sequence: 1)
                    let elapsed = monotonicSeconds() - start
                    if let wrong = values.firstIndex(where: { $0 != expected }) {
                        throw ClusterError.workerFailed(
                            "all-reduce benchmark",
                            "rank \(rank): element \(wrong) of \(count) is \(values[wrong]), not \(expected) (\(algorithm.rawValue))")
                    }
                    if iteration >= warmup { seconds.append(elapsed) }
                }
                measured(Measurement(elements: count, algorithm: algorithm, seconds: seconds))
            }
        }
    }
}
