import ArgumentParser
import CIFAR
import Foundation
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a ResNet or plain net on CIFAR-10 with the paper's schedule.",
        discussion: """
            Defaults are the paper's (section 4.2): batch 128, SGD with momentum 0.9, weight decay 1e-4, \
            lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations, 4-pixel pad + random crop + flip, \
            per-pixel mean subtraction. Writes RUN_DIR/metrics.jsonl, RUN_DIR/config.json and \
            RUN_DIR/checkpoints/. Ctrl-C stops after the current step and writes a checkpoint; \
            --resume RUN_DIR continues from the newest valid checkpoint with bitwise-identical results.
            """)

    @OptionGroup var engine: EngineOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Network depth, 6n+2: 20, 32, 44, 56, 110 in the paper. (default: 20)")
    var depth: Int?
    @Flag(help: "Train the plain net of the same depth (no shortcuts).")
    var plain = false
    @Option(name: .customLong("out"), help: ArgumentHelp("Run directory. (default: runs/<model>-seed<seed>)", valueName: "run-dir"))
    var out: String?
    @Option(help: "Training steps. (default: 64000)")
    var iterations: Int?
    @Option(help: "Images per step. (default: 128)")
    var batchSize: Int?
    @Option(name: .customLong("lr"), help: "Initial learning rate. (default: 0.1)")
    var learningRate: Float?
    @Option(help: "Steps at which the learning rate is divided by 10, comma-separated. (default: 32000,48000)")
    var milestones: String?
    @Option(help: "SGD momentum. (default: 0.9)")
    var momentum: Float?
    @Option(help: "L2 weight decay. (default: 0.0001)")
    var weightDecay: Float?
    @Option(help: "Seed for initialization, shuffling and augmentation. (default: 1)")
    var seed: UInt64?
    @Option(help: "Evaluate the test set every this many steps. (default: once per epoch)")
    var evalEvery: Int?
    @Option(help: "Write a checkpoint every this many steps (and at the end). (default: 2000)")
    var checkpointEvery: Int?
    @Option(help: "Checkpoints kept in RUN_DIR/checkpoints. (default: 3)")
    var keepCheckpoints: Int?
    @Option(help: "Print a progress line and a metrics record every this many steps. (default: 50)")
    var logEvery: Int?
    @Option(help: "Training images held out for validation, from the end of the set; the paper uses 5000. (default: 0)")
    var validation: Int?
    @Option(help: "Steps at lr 0.01 before the initial rate; the paper uses about 400 for ResNet-110. (default: 0)")
    var warmup: Int?
    @Option(help: ArgumentHelp("Continue the run in this directory from its newest valid checkpoint.", valueName: "run-dir"))
    var resume: String?

    /// Flags that define the run; a resumed run keeps the stored values (only --iterations may extend it).
    private var definingFlagsGiven: [String] {
        var given = [String]()
        if depth != nil { given.append("--depth") }
        if plain { given.append("--plain") }
        if batchSize != nil { given.append("--batch-size") }
        if learningRate != nil { given.append("--lr") }
        if milestones != nil { given.append("--milestones") }
        if momentum != nil { given.append("--momentum") }
        if weightDecay != nil { given.append("--weight-decay") }
        if seed != nil { given.append("--seed") }
        if validation != nil { given.append("--validation") }
        if warmup != nil { given.append("--warmup") }
        if out != nil { given.append("--out") }
        return given
    }

    func configurationFromFlags() throws -> TrainingConfiguration {
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
        c.evalEvery = evalEvery
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let keepCheckpoints { c.keepCheckpoints = keepCheckpoints }
        if let logEvery { c.logEvery = logEvery }
        if let validation { c.validation = validation }
        if let warmup { c.warmupIterations = warmup }
        return c
    }

    func validate() throws {
        if resume != nil, !definingFlagsGiven.isEmpty {
            throw ValidationError("\(definingFlagsGiven.joined(separator: ", ")) cannot change a resumed run: "
                + "--resume keeps the stored configuration (only --iterations, --eval-every, --checkpoint-every, "
                + "--keep-checkpoints, --log-every, --threads and --data may be given)")
        }
        let errors = try configurationFromFlags().validationErrors()
        if !errors.isEmpty { throw ValidationError(errors.joined(separator: "\n")) }
    }

    func run() throws {
        var configuration = try configurationFromFlags()
        let runDirectory: String
        var checkpoint: Checkpoint?
        let display = ProgressDisplay()
        if let resume {
            runDirectory = resume
            let found: (checkpoint: Checkpoint, path: String, warnings: [String])
            do { found = try CheckpointDirectory(runDirectory: resume).latestValid() } catch { fail("cannot resume: \(error)") }
            for warning in found.warnings { display.message("warning: \(warning)") }
            var stored = found.checkpoint.configuration
            if let iterations { stored.iterations = iterations }
            if evalEvery != nil { stored.evalEvery = evalEvery }
            if let checkpointEvery { stored.checkpointEvery = checkpointEvery }
            if let keepCheckpoints { stored.keepCheckpoints = keepCheckpoints }
            if let logEvery { stored.logEvery = logEvery }
            configuration = stored
            var resumed = found.checkpoint
            resumed.configuration = stored
            checkpoint = resumed
            display.message("resuming \(resume) from \(found.path) (step \(found.checkpoint.step) of \(stored.iterations))")
        } else {
            let architecture = try configuration.architecture()
            runDirectory = out ?? "runs/\(architecture.name.lowercased())-seed\(configuration.seed)"
            if !CheckpointDirectory(runDirectory: runDirectory).files().isEmpty {
                fail("\(runDirectory) already holds checkpoints of a run; continue it with --resume \(runDirectory) "
                     + "or choose another --out")
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(configuration).write(to: URL(fileURLWithPath: runDirectory).appendingPathComponent("config.json"))
        } catch {
            fail("cannot write to run directory \(runDirectory): \(error.localizedDescription)")
        }

        let data: CIFAR10
        do { data = try CIFAR10.load(directory: dataOptions.data, validation: configuration.validation) } catch { fail("\(error)") }
        let architecture = try configuration.architecture()
        display.message("\(architecture.name): \(architecture.parameterCount) parameters; \(data.train.count) training, "
                        + "\(data.validation?.count ?? 0) validation, \(data.test.count) test images; "
                        + "\(engine.resolvedThreads) threads; run directory \(runDirectory)")

        let stop = StopSignal()
        let trainer: Trainer
        do {
            trainer = try Trainer(configuration: configuration, data: data, threads: engine.resolvedThreads,
                                  runDirectory: runDirectory, resume: checkpoint, display: display)
        } catch { fail("\(error)") }
        let summary: TrainingSummary
        do { summary = try trainer.run(shouldStop: { stop.isSet }) } catch { fail("\(error)") }
        if !summary.finished {
            display.message("interrupted at step \(summary.step); continue with: resnet-ddp train --resume \(runDirectory)")
            throw ExitCode(130)
        }
        var line = "finished \(summary.step) steps"
        if let last = summary.lastEvaluation {
            line += String(format: "; test error %.2f%% (first 1000 exact images: %.2f%%), best %.2f%%",
                           last.error, last.errorFirst1000, summary.bestTestError ?? last.error)
        }
        display.message(line)
    }
}
