import ArgumentParser
import Foundation
import Training

struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a named set of trainings into one results folder, resuming unfinished runs and skipping finished ones.",
        discussion: """
            figure6: plain and residual nets of depth 20, 32, 44, 56 (the paper's Figure 6; --with-110 adds \
            ResNet-110 with the paper's 400-step warm-up at lr 0.01; --nets plain or resnet keeps one kind). \
            table: ResNet-20, 32, 44, 56, 110. \
            Schedules: paper (64k steps, lr divided by 10 at 32k and 48k) or short (--iterations N, divided \
            at N/2 and 3N/4). Each run is `resnet-ddp train` in OUT/<model>; Ctrl-C stops the current run \
            with a checkpoint, and running the same command again continues where it stopped. A run that fails \
            (a lost worker, a killed process) is resumed from its newest checkpoint, up to --max-restarts \
            times in a row without a new checkpoint in between; resuming is exact, so it costs only the \
            steps since that checkpoint. Plot with \
            scripts/plot-results figure6 OUT and tabulate with scripts/plot-results table OUT.
            """)

    enum Name: String, ExpressibleByArgument, CaseIterable { case figure6, table }
    enum Schedule: String, ExpressibleByArgument, CaseIterable { case paper, short }
    enum Net: String, CaseIterable { case plain, resnet }

    @Argument(help: "figure6 or table.")
    var name: Name
    @Option(help: ArgumentHelp("Results folder.", valueName: "dir"))
    var out: String
    @Option(help: "paper or short.")
    var schedule: Schedule = .paper
    @Option(help: "Steps of the short schedule.")
    var iterations = 8000
    @Flag(name: .customLong("with-110"), help: "figure6 also trains ResNet-110.")
    var with110 = false
    @Option(help: "Engine threads of each run (default: all cores); a resumed run may use another count.")
    var threads: Int?
    @Option(help: "Local worker processes per run (0: one process).")
    var workers = 0
    @Option(help: "Depths to run, comma-separated (figure6 default: 20,32,44,56; table: 20,32,44,56,110).")
    var depths: String?
    @Option(help: "Nets to run, comma-separated: plain, resnet (figure6 default: both; table: resnet only).")
    var nets: String?
    @Option(help: "Seed of every run.")
    var seed: UInt64 = 1
    @Option(help: "Training images held out for validation (the paper's curves use 5000).")
    var validation = 0
    @Option(help: "Steps between checkpoints of every run: what a stop or a restart can lose.")
    var checkpointEvery = 500
    @Option(help: "Times a failed run is resumed from its newest checkpoint before the experiment gives up (reset by each new checkpoint).")
    var maxRestarts = 3
    @OptionGroup var dataOptions: DataOptions

    func validate() throws {
        if schedule == .short && iterations < 4 { throw ValidationError("--iterations must be at least 4") }
        if let depths, depths.split(separator: ",").contains(where: { Int($0).map { $0 < 8 || ($0 - 2) % 6 != 0 } ?? true }) {
            throw ValidationError("--depths must be comma-separated depths of the form 6n+2, e.g. 20,56")
        }
        if nets != nil && chosenNets.isEmpty {
            throw ValidationError("--nets must be comma-separated names from: plain, resnet (got '\(nets!)')")
        }
        if name == .table && chosenNets.contains(.plain) { throw ValidationError("--nets: table trains residual nets only") }
        if runs.isEmpty { throw ValidationError("--depths and --nets leave no run (ResNet-110 has no plain twin)") }
        if workers < 0 { throw ValidationError("--workers must be non-negative") }
        if checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if maxRestarts < 0 || maxRestarts > 1000 { throw ValidationError("--max-restarts must be between 0 and 1000") }
    }

    /// The nets of --nets; empty when the list names anything else (or nothing).
    var chosenNets: Set<Net> {
        guard let nets else { return name == .table ? [.resnet] : Set(Net.allCases) }
        let names = nets.split(separator: ",", omittingEmptySubsequences: false).map { Net(rawValue: String($0)) }
        return names.contains(nil) ? [] : Set(names.compactMap { $0 })
    }

    /// (run name, depth, residual, warm-up steps)
    var runs: [(String, Int, Bool, Int)] {
        let chosen = depths?.split(separator: ",").compactMap { Int($0) }
        switch name {
        case .figure6:
            let list = chosen ?? ([20, 32, 44, 56] + (with110 ? [110] : []))
            let plain = chosenNets.contains(.plain) ? list.filter { $0 != 110 }.map { ("plain-\($0)", $0, false, 0) } : []
            let residual = chosenNets.contains(.resnet) ? list.map { ("resnet-\($0)", $0, true, $0 == 110 ? 400 : 0) } : []
            return plain + residual
        case .table:
            return (chosen ?? [20, 32, 44, 56, 110]).map { ("resnet-\($0)", $0, true, $0 == 110 ? 400 : 0) }
        }
    }

    func run() throws {
        let total = schedule == .paper ? 64_000 : iterations
        let milestones = schedule == .paper ? [32_000, 48_000] : [total / 2, total * 3 / 4]
        var executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // A rebuild during a long experiment replaces the file under us: the next run uses the new one.
        if executable.hasSuffix(" (deleted)") { executable.removeLast(" (deleted)".count) }
        // Each `train` runs in its own process group (Foundation's Process), so neither a terminal's
        // Ctrl-C nor a batch system's SIGTERM reaches it: forward them; it checkpoints and exits 130.
        let forwarder = SignalForwarder()
        for (index, (runName, depth, residual, warmup)) in runs.enumerated() {
            let directory = URL(fileURLWithPath: out).appendingPathComponent(runName).path
            let label = "[\(index + 1)/\(runs.count)] \(runName)"
            var restarts = 0
            while true {
                let latest = (try? CheckpointDirectory(runDirectory: directory).latestValid())?.checkpoint.step
                if let latest, latest >= total {
                    print("\(label): finished (\(latest) steps), skipped")
                    break
                }
                var arguments = ["train", "--data", dataOptions.data, "--iterations", String(total)]
                if let latest {
                    if restarts == 0 { print("\(label): resuming at step \(latest) of \(total)") }
                    arguments += ["--resume", directory]
                } else {
                    print("\(label): starting (\(total) steps, lr / 10 at \(milestones))")
                    arguments += [
                        "--out", directory, "--depth", String(depth), "--milestones", milestones.map(String.init).joined(separator: ","),
                        "--seed", String(seed), "--validation", String(validation), "--warmup", String(warmup),
                    ]
                    if !residual { arguments.append("--plain") }
                }
                let status = try train(arguments: arguments, forwarder: forwarder, executable: executable)
                if forwarder.interrupted {
                    fail("interrupted during \(runName); run the same command again to continue", code: 130)
                }
                if status == 0 { break }
                let reached = (try? CheckpointDirectory(runDirectory: directory).latestValid())?.checkpoint.step
                // Only a run with a checkpoint is resumed: one that fails before its first is not started again.
                if let reached, status != 130 {
                    if reached > latest ?? -1 { restarts = 0 }  // this attempt made progress
                    if restarts < maxRestarts {
                        restarts += 1
                        print("\(label): stopped (exit status \(status)); restart \(restarts) of \(maxRestarts) from step \(reached)")
                        continue
                    }
                }
                fail("\(runName) stopped (exit status \(status)); run the same command again to continue", code: status == 130 ? 130 : 1)
            }
        }
        print("experiment \(name.rawValue) complete in \(out)")
    }

    /// Runs one `train` with the flags every run of the experiment shares; its exit status.
    private func train(arguments: [String], forwarder: SignalForwarder, executable: String) throws -> Int32 {
        var arguments = arguments
        if workers > 0 { arguments += ["--workers", String(workers)] }
        // Frequent checkpoints: a long experiment is stopped and resumed across sittings.
        arguments += ["--checkpoint-every", String(checkpointEvery)]
        if let threads { arguments += [workers > 0 ? "--worker-threads" : "--threads", String(threads)] }
        arguments += ["--parent-pid", String(getpid())]  // it stops with a checkpoint if we die
        fflush(nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try forwarder.run(process)
        return process.terminationStatus
    }
}
