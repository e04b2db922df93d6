import ArgumentParser
import Cluster
import Foundation
import Training

/// A run about to start or continue: its directory, configuration and (when resuming) checkpoint.
struct PreparedRun {
    let directory: String
    let configuration: TrainingConfiguration
    let resume: Checkpoint?
    /// Held while the run lives: a second trainer on the same directory is refused.
    let lock: RunDirectoryLock
}

/// The defaults `--help` prints: those of `TrainingConfiguration`, the one place they are defined.
private let defaults = TrainingConfiguration()

/// The flags that define a run, shared by `train` and `coordinator`. Optional so that a resumed
/// run can tell which were given; the help text states each default, read from `defaults`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Network depth, 6n+2: 20, 32, 44, 56, 110 in the paper. (default: \(defaults.depth))")
    var depth: Int?
    @Flag(help: "Train the plain net of the same depth (no shortcuts).")
    var plain = false
    @Option(name: .customLong("out"), help: ArgumentHelp("Run directory. (default: runs/<model>-seed<seed>)", valueName: "run-dir"))
    var out: String?
    @Option(help: "Training steps. (default: \(defaults.iterations))")
    var iterations: Int?
    @Option(help: "Images per step. (default: \(defaults.batchSize))")
    var batchSize: Int?
    @Option(name: .customLong("lr"), help: "Initial learning rate. (default: \(defaults.learningRate))")
    var learningRate: Float?
    @Option(
        help:
            "Steps at which the learning rate is divided by 10, comma-separated. (default: \(defaults.milestones.map(String.init).joined(separator: ",")))"
    )
    var milestones: String?
    @Option(help: "SGD momentum. (default: \(defaults.momentum))")
    var momentum: Float?
    @Option(help: "L2 weight decay. (default: \(defaults.weightDecay))")
    var weightDecay: Float?
    @Option(help: "Seed for initialization, shuffling and augmentation. (default: \(defaults.seed))")
    var seed: UInt64?
    @Option(help: "Evaluate the test set every this many steps. (default: once per epoch)")
    var evalEvery: Int?
    @Option(help: "Write a checkpoint every this many steps (and at the end). (default: \(defaults.checkpointEvery))")
    var checkpointEvery: Int?
    @Option(help: "Checkpoints kept in RUN_DIR/checkpoints. (default: \(defaults.keepCheckpoints))")
    var keepCheckpoints: Int?
    @Option(help: "Print a progress line and a metrics record every this many steps. (default: \(defaults.logEvery))")
    var logEvery: Int?
    @Option(help: "Training images held out for validation, from the end of the set; the paper uses 5000. (default: \(defaults.validation))")
    var validation: Int?
    @Option(
        help:
            "Steps at lr \(defaults.warmupLearningRate) before the initial rate; the paper uses about 400 for ResNet-110. (default: \(defaults.warmupIterations))"
    )
    var warmup: Int?
    @Option(help: ArgumentHelp("Continue the run in this directory from its newest valid checkpoint.", valueName: "run-dir"))
    var resume: String?

    /// Flags that define the run; a resumed run keeps the stored values.
    private var definingFlagsGiven: [String] {
        [
            ("--depth", depth != nil), ("--plain", plain), ("--batch-size", batchSize != nil), ("--lr", learningRate != nil),
            ("--milestones", milestones != nil), ("--momentum", momentum != nil), ("--weight-decay", weightDecay != nil),
            ("--seed", seed != nil), ("--validation", validation != nil), ("--warmup", warmup != nil), ("--out", out != nil),
        ]
        .filter(\.1).map(\.0)
    }

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        if let depth { c.depth = depth }
        c.residual = !plain
        if let iterations { c.iterations = iterations }
        if let batchSize { c.batchSize = batchSize }
        if let learningRate { c.learningRate = learningRate }
        if let milestones {
            c.milestones = try milestones.split(separator: ",").map {
                guard let value = Int($0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--milestones: '\($0)' is not a step number")
                }
                return value
            }
        }
        if let momentum { c.momentum = momentum }
        if let weightDecay { c.weightDecay = weightDecay }
        if let seed { c.seed = seed }
        applyAdjustable(to: &c)
        if let validation { c.validation = validation }
        if let warmup { c.warmupIterations = warmup }
        return c
    }

    /// Flags that may change between sittings of one run.
    private func applyAdjustable(to c: inout TrainingConfiguration) {
        if let iterations { c.iterations = iterations }
        if evalEvery != nil { c.evalEvery = evalEvery }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let keepCheckpoints { c.keepCheckpoints = keepCheckpoints }
        if let logEvery { c.logEvery = logEvery }
    }

    func validate() throws {
        if resume != nil, !definingFlagsGiven.isEmpty {
            throw ValidationError(
                "\(definingFlagsGiven.joined(separator: ", ")) cannot change a resumed run: "
                    + "--resume keeps the stored configuration (only --iterations, --eval-every, --checkpoint-every, "
                    + "--keep-checkpoints, --log-every, --threads and --data may be given)")
        }
        let errors = try configuration().validationErrors()
        if !errors.isEmpty { throw ValidationError(errors.joined(separator: "\n")) }
    }

    /// The run to execute: its directory, configuration and (when resuming) the checkpoint.
    func prepareRun(display: ProgressDisplay) throws -> PreparedRun {
        var configuration = try configuration()
        let directory: String
        var checkpoint: Checkpoint?
        let lock: RunDirectoryLock
        if let resume {
            directory = resume
            guard FileManager.default.fileExists(atPath: resume) else {
                throw ValidationError("--resume \(resume): no such run directory")
            }
            lock = try RunDirectoryLock(runDirectory: resume)
            let found = try CheckpointDirectory(runDirectory: resume).latestValid()
            for warning in found.warnings { display.message("warning: \(warning)") }
            if let iterations, iterations < found.checkpoint.step {
                throw ValidationError(
                    "--iterations \(iterations) is below the step the run has reached (\(found.checkpoint.step) "
                        + "in \(found.path)); a resumed run can only be extended")
            }
            configuration = found.checkpoint.configuration
            applyAdjustable(to: &configuration)
            checkpoint = found.checkpoint
            checkpoint?.configuration = configuration
            display.message("resuming \(resume) from \(found.path) (step \(found.checkpoint.step) of \(configuration.iterations))")
        } else {
            let name = try configuration.architecture().name.lowercased()
            directory = out ?? "runs/\(name)-seed\(configuration.seed)"
            lock = try RunDirectoryLock(runDirectory: directory)
            if !CheckpointDirectory(runDirectory: directory).files().isEmpty {
                throw ValidationError(
                    "\(directory) already holds checkpoints of a run; continue it with --resume \(directory) "
                        + "or choose another --out")
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(configuration).write(to: URL(fileURLWithPath: directory).appendingPathComponent("config.json"))
        } catch {
            throw ValidationError("cannot write to run directory \(directory): \(error.localizedDescription)")
        }
        return PreparedRun(directory: directory, configuration: configuration, resume: checkpoint, lock: lock)
    }
}

/// Runs `trainer` to the end or to Ctrl-C and reports; an interrupted summary (not `finished`)
/// is for the caller to turn into exit status 130.
func finish(_ trainer: Trainer, runDirectory: String, display: ProgressDisplay, stop: StopSignal) throws -> TrainingSummary {
    let summary = try trainer.run(shouldStop: { stop.isSet })
    if !summary.finished {
        display.message("interrupted at step \(summary.step); continue with --resume \(runDirectory) (on any number of workers: same bits)")
        return summary
    }
    var line = "finished \(summary.step) steps"
    if let last = summary.lastEvaluation {
        line += String(
            format: "; test error %.2f%% (first 1000 exact images: %.2f%%), best %.2f%%",
            last.error, last.errorFirst1000, summary.bestTestError ?? last.error)
    }
    display.message(line + "; parameters \(String(summary.parameterHash, radix: 16))")
    return summary
}
