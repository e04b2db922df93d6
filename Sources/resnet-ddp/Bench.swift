import ArgumentParser
import Cluster
import Collectives
import Foundation
import Models
import TensorCore
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and inference throughput on synthetic data (build with -c release).",
        discussion: """
            Training = forward + loss + backward + SGD step. Reports the median of the timed steps and the \
            achieved GFLOP/s (2 FLOP per multiply-accumulate; training counts 3x the forward MACs).
            """)

    @Option(help: "Depths to measure, comma-separated.")
    var depths = "20,56"

    @Option(help: "Thread counts to measure, comma-separated.")
    var threads = "1,2"

    @Option(help: "Modes, comma-separated: train, inference.")
    var modes = "train,inference"

    @Option(help: "Images per step.")
    var batchSize = 128

    @Option(help: "Timed steps per measurement (the median is reported).")
    var steps = 20

    @Option(help: "Untimed steps before timing.")
    var warmup = 3

    @Flag(help: "One JSON object per line (keys: model, mode, threads, batch, images_per_second, gflops, median_ms).")
    var json = false

    @Flag(help: "Also print where the time of a step goes: time, share, GFLOP/s or GB/s per operation (first thread count and model of the list).")
    var profile = false

    @Flag(help: "Measure the vector unit's FP32 peak instead: a loop of independent FMAs that never touches memory, at each thread count.")
    var peak = false

    @Flag(
        help:
            "Measure the all-reduce instead: the sizes of --allreduce-elements (129: one batch-norm layer's statistics; 269,722 and 1,727,962: ResNet-20's and -110's gradients), all ranks in this process over tcp loopback and ipc, or one rank per process with --allreduce-rank."
    )
    var allreduce = false

    @Option(help: "With --allreduce: the worker counts, comma-separated.")
    var allreduceWorkers = "2,4,8"

    @Option(help: "With --allreduce: the algorithms, comma-separated (ring, doubling, automatic).")
    var allreduceAlgorithms = "ring,doubling"

    @Option(help: "With --allreduce: the vector sizes (Int64 elements), comma-separated.")
    var allreduceElements = "129,269722,1727962"

    @Option(
        help:
            "With --allreduce: be rank R of the group --allreduce-endpoints lists, one process per rank (e.g. one per simulated host); prints one JSON line per size and algorithm with this rank's times."
    )
    var allreduceRank: Int?

    @Option(help: "With --allreduce-rank: every rank's receiving address (tcp://IPV4:PORT), comma-separated, the same list on every rank.")
    var allreduceEndpoints: String?

    func validate() throws {
        guard batchSize >= 1, steps >= 1, warmup >= 0 else { throw ValidationError("--batch-size and --steps must be >= 1, --warmup >= 0") }
        _ = try parsedDepths()
        _ = try parsedThreads()
        _ = try parsedModes()
        _ = try parsedAllReduce()
        _ = try parsedAllReduceElements()
        _ = try parsedAllReduceGroup()
    }

    func parsedAllReduce() throws -> (workers: [Int], algorithms: [AllReduce.Algorithm]) {
        let workers = try allreduceWorkers.split(separator: ",").map {
            guard let w = Int($0), (2...64).contains(w) else { throw ValidationError("--allreduce-workers: '\($0)' is not 2...64") }
            return w
        }
        let algorithms = try allreduceAlgorithms.split(separator: ",").map {
            guard let a = AllReduce.Algorithm(rawValue: String($0)) else {
                throw ValidationError("--allreduce-algorithms: '\($0)' is not one of ring, doubling, automatic")
            }
            return a
        }
        guard !workers.isEmpty, !algorithms.isEmpty else { throw ValidationError("--allreduce-workers and --allreduce-algorithms need a value") }
        return (workers, algorithms)
    }

    func parsedDepths() throws -> [Architecture] {
        try depths.split(separator: ",").map {
            guard let d = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--depths: '\($0)' is not a number") }
            guard d <= TrainingConfiguration.maximumDepth else {
                throw ValidationError("--depths: \(d) is deeper than \(TrainingConfiguration.maximumDepth) (the paper's deepest net)")
            }
            do { return try Architecture(depth: d) } catch { throw ValidationError("--depths: \(error)") }
        }
    }

    func parsedThreads() throws -> [Int] {
        try threads.split(separator: ",").map {
            guard let t = Int($0.trimmingCharacters(in: .whitespaces)), (1...256).contains(t) else {
                throw ValidationError("--threads: '\($0)' is not a number from 1 to 256")
            }
            return t
        }
    }

    func parsedModes() throws -> [Benchmark.Kind] {
        try modes.split(separator: ",").map {
            guard let kind = Benchmark.Kind(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--modes: '\($0)' is not train or inference")
            }
            return kind
        }
    }

    func run() throws {
        if allreduce { return try allreduceRank == nil ? runAllReduce() : runAllReduceRank() }
        if peak { return try runPeak() }
        if profile { return try runProfile() }
        FileHandle.standardError.write(Data("engine: \(VectorUnit.summary)\n".utf8))
        if !json {
            print("model       mode       threads  batch   median ms   images/s   GFLOP/s")
        }
        for architecture in try parsedDepths() {
            for mode in try parsedModes() {
                for threadCount in try parsedThreads() {
                    let r = try Benchmark.run(
                        architecture, kind: mode, threads: threadCount, batch: batchSize,
                        warmup: warmup, steps: steps)
                    if json {
                        print(
                            String(
                                format: "{\"model\":\"%@\",\"mode\":\"%@\",\"threads\":%d,\"batch\":%d,"
                                    + "\"images_per_second\":%.1f,\"gflops\":%.1f,\"median_ms\":%.2f}",
                                r.model, r.kind.rawValue, r.threads, r.batch, r.imagesPerSecond, r.gflops,
                                r.medianSeconds * 1000))
                    } else {
                        print(
                            r.model.padding(toLength: 11, withPad: " ", startingAt: 0)
                                + " " + r.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                                + String(
                                    format: " %7d  %5d  %10.2f  %9.1f  %8.1f", r.threads, r.batch,
                                    r.medianSeconds * 1000, r.imagesPerSecond, r.gflops))
                    }
                    fflush(nil)  // show each figure as it is measured
                }
            }
        }
    }

    /// Median of `steps` measurements of the FMA loop per thread count.
    func runPeak() throws {
        FileHandle.standardError.write(Data("engine: \(VectorUnit.summary)\n".utf8))
        if !json { print("threads   peak GFLOP/s (median)   per thread") }
        for threadCount in try parsedThreads() {
            _ = PeakThroughput.gigaflops(threads: threadCount, iterations: 1_000_000)  // wakes the threads
            let samples = (0..<steps).map { _ in PeakThroughput.gigaflops(threads: threadCount) }.sorted()
            let median = samples[samples.count / 2]
            if json {
                print(String(format: "{\"threads\":%d,\"peak_gflops\":%.1f}", threadCount, median))
            } else {
                print(String(format: "%7d   %20.1f   %10.1f", threadCount, median, median / Double(threadCount)))
            }
            fflush(nil)
        }
    }

    func runAllReduce() throws {
        let (workerCounts, algorithms) = try parsedAllReduce()
        if !json { print("elements   bytes      workers  transport  algorithm  median ms   best ms   bus GB/s") }
        for elements in try parsedAllReduceElements() {
            for workers in workerCounts {
                for transport in ["tcp", "ipc"] {
                    for algorithm in algorithms {
                        let r = try AllReduceBenchmark.run(
                            elements: elements, workers: workers, transport: transport,
                            algorithm: algorithm, iterations: steps)
                        if json {
                            print(
                                String(
                                    format: "{\"elements\":%d,\"bytes\":%d,\"workers\":%d,\"transport\":\"%@\",\"algorithm\":\"%@\","
                                        + "\"median_ms\":%.3f,\"best_ms\":%.3f,\"bus_gbps\":%.2f}", r.elements, r.bytes, r.workers,
                                    r.transport, algorithm.rawValue, r.medianSeconds * 1000, r.bestSeconds * 1000, r.busGigabytesPerSecond))
                        } else {
                            // (%@ ignores field widths in swift-corelibs-foundation: pad the strings here.)
                            let names =
                                r.transport.padding(toLength: 9, withPad: " ", startingAt: 0) + "  "
                                + algorithm.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                            print(
                                String(format: "%-9d  %-9d  %7d  ", r.elements, r.bytes, r.workers) + names
                                    + String(format: "  %9.3f  %8.3f  %8.2f", r.medianSeconds * 1000, r.bestSeconds * 1000, r.busGigabytesPerSecond))
                        }
                        fflush(nil)
                    }
                }
            }
        }
    }

    /// One table per mode: each operation's milliseconds per step, share of the step and rate.
    func runProfile() throws {
        let architecture = try parsedDepths()[0], threadCount = try parsedThreads()[0]
        for mode in try parsedModes() {
            let r = try Benchmark.run(
                architecture, kind: mode, threads: threadCount, batch: batchSize, warmup: warmup,
                steps: steps, profile: true)
            let stepMs = r.medianSeconds * 1000
            print(
                "\n\(r.model) \(mode.rawValue), batch \(batchSize), \(threadCount) thread(s): median step \(String(format: "%.1f", stepMs)) ms, "
                    + "\(String(format: "%.1f", r.imagesPerSecond)) images/s")
            print("operation                                              calls  ms/step  share   GFLOP/s   GB/s")
            var accounted = 0.0
            for (name, entry) in r.profile.sorted(by: { $0.entry.seconds > $1.entry.seconds }) {
                let ms = entry.seconds * 1000 / Double(r.timedSteps)
                accounted += ms
                let gflops = entry.flops > 0 ? String(format: "%9.1f", entry.flops / entry.seconds / 1e9) : "        -"
                let gbps = entry.bytes > 0 ? String(format: "%6.1f", entry.bytes / entry.seconds / 1e9) : "     -"
                print(
                    name.padding(toLength: 53, withPad: " ", startingAt: 0)
                        + String(format: " %6d  %7.2f  %4.1f%%", entry.calls / r.timedSteps, ms, 100 * ms / stepMs) + " \(gflops) \(gbps)")
            }
            print(
                "other (input, pooling, linear, loss; mean vs median)".padding(toLength: 53, withPad: " ", startingAt: 0)
                    + String(format: "         %7.2f  %4.1f%%", stepMs - accounted, 100 * (stepMs - accounted) / stepMs))
        }
    }
}
