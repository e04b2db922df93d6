import Collectives
import Foundation
import TensorCore
import Timing
import Training
import Transport

/// Latency and bus bandwidth of an all-reduce algorithm over real ZeroMQ sockets, one thread per
/// rank in this process (tcp loopback or ipc). Bus bandwidth is NCCL's ring figure, 2 (W-1)/W x
/// bytes / time, for every algorithm (so the figures compare times at one size).
public enum AllReduceBenchmark {
    public struct Result: Sendable {
        public let elements: Int
        public let workers: Int
        public let transport: String
        public let algorithm: AllReduce.Algorithm
        public let medianSeconds: Double
        public let bestSeconds: Double
        public var bytes: Int { elements * 8 }
        public var busGigabytesPerSecond: Double {
            2 * Double(workers - 1) / Double(workers) * Double(bytes) / medianSeconds / 1e9
        }
    }

    public static func run(
        elements: Int, workers: Int, transport: String, algorithm: AllReduce.Algorithm,
        iterations: Int
    ) throws -> Result {
        // One context (and so one I/O thread) per rank, as with one process per worker.
        let contexts = try (0..<workers).map { _ in try ZMQContext() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resnet-ddp-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sockets = try contexts.map { try ZMQSocket($0, kind: .pull, lingerMilliseconds: 0) }
        let endpoints = try sockets.enumerated().map { rank, socket in
            try socket.bind(transport == "ipc" ? "ipc://\(directory)/rank\(rank)" : "tcp://127.0.0.1:*")
        }
        let shared = UncheckedSendable((contexts, sockets))
        let times = Locked([[Double]](repeating: [], count: workers))
        let failure = Locked<String?>(nil)
        let group = DispatchGroup()
        for rank in 0..<workers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let (contexts, sockets) = shared.value
                    let ring = try ZMQCommunicator(
                        context: contexts[rank], rank: rank, endpoints: endpoints, runID: 1,
                        incoming: sockets[rank], timeout: 30, log: { _ in })
                    defer { ring.close() }
                    let allReduce = AllReduce(ring, algorithm: algorithm)
                    var values = [Int64](repeating: Int64(rank), count: elements)
                    for iteration in 0..<(iterations + 3) {
                        ring.step = UInt64(iteration)
                        let start = monotonicSeconds()
                        try allReduce.sum(&values, sequence: 1)
                        if iteration >= 3 { times.mutate { $0[rank].append(monotonicSeconds() - start) } }
                    }
                } catch {
                    failure.mutate { $0 = "rank \(rank): \(error)" }
                }
            }
        }
        group.wait()
        if let message = failure.value { throw ClusterError.workerFailed("all-reduce benchmark", message) }
        // A collective ends when its slowest rank ends.
        let perIteration = (0..<iterations).map { i in times.value.map { $0[i] }.max()! }
        return Result(
            elements: elements, workers: workers, transport: transport, algorithm: algorithm, medianSeconds: median(perIteration),
            bestSeconds: perIteration.min()!)
    }
}

/// A value behind a lock, for results gathered from threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout Value) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
