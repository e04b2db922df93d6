import Foundation
import TensorCore
import Timing
import Training

/// Where a worker's time goes, summed over a window of steps: its own compute, waiting inside the
/// batch-norm statistics all-reduces (transfer plus waiting for the slower peer), the gradient
/// all-reduce, and the wait between sending a result and receiving the next step (coordinator and
/// the slowest worker). Printed as one JSON line per window, for `scripts/bench-distributed`.
struct PhaseProfile {
    var steps = 0
    var stepSeconds = 0.0
    var statisticsSeconds = 0.0
    var statisticsCalls = 0
    var gradientSeconds = 0.0
    var betweenStepsSeconds = 0.0

    /// One JSON object: per-step means in milliseconds.
    func json(rank: Int, worldSize: Int, lastStep: Int) -> String {
        let perStep = 1000 / Double(max(steps, 1))
        let fields: [(String, Double)] = [
            ("step_ms", stepSeconds * perStep),
            ("compute_ms", (stepSeconds - statisticsSeconds - gradientSeconds) * perStep),
            ("batchnorm_allreduce_ms", statisticsSeconds * perStep),
            ("gradient_allreduce_ms", gradientSeconds * perStep),
            ("between_steps_ms", betweenStepsSeconds * perStep),
        ]
        let timings = fields.map { "\"\($0.0)\": \(String(format: "%.3f", $0.1))" }.joined(separator: ", ")
        return "{\"rank\": \(rank), \"world_size\": \(worldSize), \"step\": \(lastStep), \"steps\": \(steps), "
            + "\"batchnorm_allreduces_per_step\": \(statisticsCalls / max(steps, 1)), \(timings)}"
    }
}

extension PhaseProfile {
    /// One JSON object: each operation's milliseconds per step over the window (batch-norm
    /// operations include their meetings, which run inside them).
    static func operationsJSON(_ report: [(name: String, entry: Profiler.Entry)], rank: Int, steps: Int, lastStep: Int) -> String {
        let perStep = 1000 / Double(max(steps, 1))
        let timings = report.map { "\"\($0.name)\": \(String(format: "%.3f", $0.entry.seconds * perStep))" }.joined(separator: ", ")
        return "{\"rank\": \(rank), \"step\": \(lastStep), \"steps\": \(steps), \"ms_per_step\": {\(timings)}}"
    }
}

/// Adds the time of each call to one of a profile's counters.
final class PhaseClock {
    var profile = PhaseProfile()

    func time<T>(_ counter: WritableKeyPath<PhaseProfile, Double>, _ body: () throws -> T) rethrows -> T {
        let start = monotonicSeconds()
        defer { profile[keyPath: counter] += monotonicSeconds() - start }
        return try body()
    }
}
