import ArgumentParser
import Cluster
import Foundation
import Training
import Transport

let heartbeatTimeoutProblem =
    "--heartbeat-timeout must be at least \(HeartbeatTiming.minimumTimeout) s: workers beat "
    + "every \(HeartbeatTiming.interval) s, and a shorter timeout would count healthy peers as lost"

/// Fault-tolerance flags of the coordinator (`coordinator` and `train --workers`).
struct MembershipOptions: ParsableArguments {
    @Option(help: "Pause (and wait for workers to join) while fewer than this many workers remain.")
    var minWorkers = 1
    @Option(
        help: ArgumentHelp(
            "Most workers taking part; more wait until a place is free. (default: the larger of --workers and 64, "
                + "and never more than the images of a batch or 128)"))
    var maxWorkers: Int?
    @Option(help: "Seconds without a heartbeat after which a worker (or, for workers, the coordinator) counts as lost.")
    var heartbeatTimeout: Double = 2
    @Option(help: "Seconds to wait for one step (or evaluation) of every worker before the hung ones are removed.")
    var stepTimeout: Double = 120
    @Option(
        help: ArgumentHelp(
            "Testing: inject message faults, e.g. seed=1,drop=0.01,duplicate=0.01,delay=0.01,truncate=0.01,corrupt=0.01.",
            valueName: "spec"))
    var injectFaults: String?

    func validate() throws {
        if minWorkers < 1 { throw ValidationError("--min-workers must be at least 1") }
        if let maxWorkers, maxWorkers < minWorkers { throw ValidationError("--max-workers must be at least --min-workers") }
        if !(heartbeatTimeout >= HeartbeatTiming.minimumTimeout) { throw ValidationError(heartbeatTimeoutProblem) }
        if !(stepTimeout > 0) { throw ValidationError("--step-timeout must be positive") }
        if let injectFaults {
            do { _ = try FaultInjector(spec: injectFaults) } catch { throw ValidationError("--inject-faults: \(error)") }
        }
    }
}

/// Appends the coordinator's membership events to RUN_DIR/events.jsonl, one JSON object a line.
final class EventLog {
    private let handle: FileHandle?

    init(runDirectory: String) {
        let path = URL(fileURLWithPath: runDirectory).appendingPathComponent("events.jsonl").path
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        handle = FileHandle(forWritingAtPath: path)
        _ = try? handle?.seekToEnd()
    }

    func write(_ event: Coordinator.Event) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let data = try? encoder.encode(event) else { return }
        try? handle?.write(contentsOf: data + Data("\n".utf8))
    }
}
