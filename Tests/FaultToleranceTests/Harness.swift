import Foundation
import TestSupport
import Testing
import Training

let canRunFaultSuite = realDataDirectory != nil && resnetDDPExecutable != nil

/// The model and schedule every scenario trains: ResNet-8, so that a scenario takes seconds (the
/// chaos soak trains deeper nets).
func trainingFlags(iterations: Int, checkpointEvery: Int = 1000, depth: Int = 8) -> [String] {
    [
        "--depth", String(depth), "--iterations", String(iterations), "--eval-every", String(iterations), "--log-every", "5",
        "--checkpoint-every", String(checkpointEvery), "--seed", "3",
    ]
}

/// The unfaulted single-process result for `iterations` steps (computed once per length).
func referenceState(iterations: Int, depth: Int = 8) throws -> ModelState {
    try ReferenceRuns.shared.state(iterations: iterations, depth: depth)
}

final class ReferenceRuns: @unchecked Sendable {
    static let shared = ReferenceRuns()
    private var states: [[Int]: ModelState] = [:]
    private let lock = NSLock()

    func state(iterations: Int, depth: Int) throws -> ModelState {
        lock.lock()
        defer { lock.unlock() }
        if let state = states[[iterations, depth]] { return state }
        let run = temporaryDirectory() + "/reference"
        // Bits do not depend on the thread count (PinnedBitsTests): deeper references use both cores.
        let threads = depth == 8 ? "1" : "2"
        let (status, output) = try ToolProcess.run(
            ["train", "--data", realDataDirectory!, "--threads", threads, "--out", run]
                + trainingFlags(iterations: iterations, depth: depth),
            seconds: 7200)
        try #require(status == 0, "reference run failed:\n\(output)")
        let state = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint.modelState
        states[[iterations, depth]] = state
        return state
    }
}

/// One scenario's run: a coordinator on an ipc endpoint in its own directory, and workers that
/// the scenario starts, kills, freezes and restarts as real processes.
final class FaultRun {
    let directory = temporaryDirectory()
    var runDirectory: String { directory + "/run" }
    /// Changed when a scenario restarts the coordinator (a SIGKILLed one leaves its socket file).
    var endpoint: String

    let iterations: Int
    let depth: Int
    private(set) var coordinator: ToolProcess?
    private(set) var workers: [ToolProcess] = []
    let started = Date()

    init(iterations: Int, depth: Int = 8) {
        self.iterations = iterations
        self.depth = depth
        endpoint = "ipc://\(directory)/coordinator.sock"
    }

    deinit {
        for process in workers + (coordinator.map { [$0] } ?? []) where process.process.isRunning {
            kill(process.process.processIdentifier, SIGCONT)
            kill(process.process.processIdentifier, SIGKILL)
        }
    }

    @discardableResult
    func startCoordinator(
        workers: Int, extra: [String] = [], resume: Bool = false, checkpointEvery: Int = 1000,
        shell: String? = nil
    ) throws -> ToolProcess {
        var arguments =
            [
                "coordinator", "--listen", endpoint, "--workers", String(workers), "--step-timeout", "20",
                "--rendezvous-timeout", "60",
            ] + extra
        arguments +=
            resume
            ? ["--resume", runDirectory, "--iterations", String(iterations)]
            : ["--out", runDirectory] + trainingFlags(iterations: iterations, checkpointEvery: checkpointEvery, depth: depth)
        let process: ToolProcess
        if let shell {
            // e.g. "ulimit -f 200": limits that apply to the coordinator only.
            let quoted = ([resnetDDPExecutable!] + arguments).map { "'\($0)'" }.joined(separator: " ")
            process = try ToolProcess(["-c", "\(shell); exec \(quoted)"], executable: "/bin/bash")
        } else {
            process = try ToolProcess(arguments)
        }
        coordinator = process
        return process
    }

    /// Starts a worker; in network namespace `namespace` when given (via `ip netns exec`).
    @discardableResult
    func startWorker(_ extra: [String] = [], namespace: String? = nil) throws -> ToolProcess {
        let arguments = ["worker", "--coordinator", endpoint, "--data", realDataDirectory!, "--threads", "1", "--timeout", "60"] + extra
        let worker =
            try namespace.map { try ToolProcess(["netns", "exec", $0, resnetDDPExecutable!] + arguments, executable: ipTool!) }
            ?? ToolProcess(arguments)
        workers.append(worker)
        return worker
    }

    /// The coordinator's membership events so far.
    var events: [[String: Any]] {
        guard let text = try? String(contentsOfFile: runDirectory + "/events.jsonl", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func events(_ kind: String) -> [[String: Any]] { events.filter { $0["event"] as? String == kind } }

    /// The coordinator's `lost` event for `worker`'s process, if any.
    func lostEvent(of worker: ToolProcess) -> [String: Any]? {
        events("lost").first { $0["pid"] as? Int == Int(worker.process.processIdentifier) }
    }

    /// Polls (a condition, not a fixed sleep) until `condition` holds; false at the deadline.
    func waitUntil(seconds: Double = 60, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !condition() {
            if Date() > deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// SIGKILLs the coordinator and expects `workers` to notice its silence and exit (status 3);
    /// returns the seconds they took.
    func killCoordinatorExpectingWorkersToExit(_ workers: [ToolProcess]) -> Double {
        kill(coordinator!.process.processIdentifier, SIGKILL)
        coordinator!.process.waitUntilExit()
        let killedAt = Date()
        for worker in workers {
            #expect(worker.wait(seconds: 30) == 3, "\(worker.output)")
            #expect(worker.output.contains("has not answered"), "\(worker.output)")
        }
        return -killedAt.timeIntervalSinceNow
    }

    /// The worker's own record of when its fault plan fired (seconds since 1970).
    func faultTime(of worker: ToolProcess) -> Double? {
        guard let line = worker.output.split(separator: "\n").first(where: { $0.contains("fault plan:") }),
            let range = line.range(of: "unix time ")
        else { return nil }
        return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }

    /// Waits for the coordinator to finish and checks the common promises: exit status 0, the
    /// exact number of steps, parameters equal to the unfaulted single-process run, and every
    /// checkpoint on disk valid. Returns the coordinator's output.
    @discardableResult
    func expectCompletesLikeReference(seconds: Double = 240) throws -> String {
        let status = coordinator!.wait(seconds: seconds)
        let output = coordinator!.output
        try #require(status == 0, "coordinator exit \(status):\n\(output)\nworkers:\n\(workers.map(\.output).joined(separator: "\n---\n"))")
        let checkpoints = CheckpointDirectory(runDirectory: runDirectory)
        let latest = try checkpoints.latestValid()
        #expect(latest.warnings.isEmpty, "\(latest.warnings)")
        #expect(latest.checkpoint.step == iterations)
        for file in checkpoints.files() { #expect(throws: Never.self, "damaged checkpoint \(file)") { _ = try CheckpointDirectory.read(file) } }
        let reference = try referenceState(iterations: iterations, depth: depth)
        #expect(latest.checkpoint.modelState == reference, "final parameters differ from the unfaulted run")
        return output
    }
}

/// One row of the fault-tolerance table (docs/fault-tolerance.md), written by the scenario that measured it.
struct ScenarioReport: Codable {
    var scenario: String
    var injected: String
    var outcome: String
    /// nil where the scenario trains nothing to compare.
    var bitwiseEqual: Bool?
    var detectionSeconds: Double?
    var recoverySeconds: Double?
    var wallSeconds: Double

    /// Writes the row to $RESNET_DDP_FAULT_REPORT (a directory), when set (see scripts/fault-suite).
    func save() {
        guard let directory = ProcessInfo.processInfo.environment["RESNET_DDP_FAULT_REPORT"] else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let name = scenario.filter { $0.isLetter || $0.isNumber }
        try? encoder.encode(self).write(to: URL(fileURLWithPath: directory).appendingPathComponent("\(name).json"))
    }
}
