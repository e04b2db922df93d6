import ArgumentParser
import CIFAR
import Foundation
import Models
import Training

struct ExportWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's weights as safetensors with PyTorch's names and layouts (scripts/torch_resnet.py).",
        discussion: "The file holds the parameters, batch-norm running statistics, num_batches_tracked and input_mean "
            + "(the per-pixel training mean, [3][32][32], pixels in [0, 1]); its metadata names the architecture, the steps "
            + "and the test errors, measured here on --data.")

    @OptionGroup var engine: EngineOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: ArgumentHelp("Checkpoint file (RUN_DIR/checkpoints/step-*.ckpt).", valueName: "file"))
    var checkpoint: String
    @Option(help: ArgumentHelp("Output file.", valueName: "model.safetensors"))
    var out: String

    func run() throws {
        engine.apply()
        let loaded: Checkpoint
        do { loaded = try CheckpointDirectory.read(checkpoint) } catch { fail("\(error)") }
        do {
            let data = try CIFAR10.load(directory: dataOptions.data, validation: loaded.configuration.validation)
            let architecture = try loaded.configuration.architecture()
            let executor = try LocalExecutor(
                configuration: loaded.configuration, data: data, threads: engine.resolvedThreads,
                state: loaded.modelState)
            let test = try executor.evaluate(.test)
            let metadata = [
                "format": "resnet-ddp weights 1", "architecture": architecture.name, "depth": String(architecture.depth),
                "residual": String(architecture.residual), "steps": String(loaded.step),
                "test_error": String(format: "%.2f", test.error), "test_error_exact1000": String(format: "%.2f", test.errorFirst1000),
                "input": "NCHW RGB in [0, 1] minus input_mean",
            ]
            let tensors = WeightsFile.tensors(loaded.modelState, architecture: architecture, steps: loaded.step, meanImage: data.meanImage)
            try SafeTensors.encode(tensors, metadata: metadata).write(to: URL(fileURLWithPath: out), options: .atomic)
            print(
                "\(architecture.name) at step \(loaded.step) (test error \(metadata["test_error"]!) %, exact first 1000 "
                    + "\(metadata["test_error_exact1000"]!) %) -> \(out)")
        } catch { fail("\(error)") }
    }
}

struct ImportWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read safetensors weights (ours, or a PyTorch state_dict of scripts/torch_resnet.py) into a checkpoint.",
        discussion: "The depth comes from the tensors; plain or residual from the file's metadata, else --plain. The checkpoint "
            + "has zero momentum and the file's step count (0 without metadata); `evaluate --checkpoint` reads it.")

    @Argument(help: ArgumentHelp("The safetensors file.", valueName: "model.safetensors"))
    var file: String
    @Option(help: ArgumentHelp("Checkpoint to write.", valueName: "file"))
    var out: String
    @Flag(help: "The weights are of a plain net (when the file's metadata does not say).")
    var plain = false

    func run() throws {
        do {
            let checkpoint = try WeightsFile.checkpoint(fromSafeTensorsAt: file, plain: plain)
            try checkpoint.encoded().write(to: URL(fileURLWithPath: out), options: .atomic)
            print("\(try checkpoint.configuration.architecture().name) at step \(checkpoint.step) from \(file) -> \(out)")
        } catch { fail("\(error)") }
    }
}

extension WeightsFile {
    /// A safetensors file (ours, or a PyTorch state_dict of scripts/torch_resnet.py) as a checkpoint:
    /// the depth from the tensors, plain or residual from the metadata (else `plain`), zero momentum,
    /// the metadata's step count (0 without one).
    static func checkpoint(fromSafeTensorsAt file: String, plain: Bool) throws -> Checkpoint {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let (tensors, metadata) = try SafeTensors.decode(bytes, source: file)
        var configuration = TrainingConfiguration()
        configuration.depth = try WeightsFile.depth(of: tensors)
        configuration.residual = metadata["residual"].map { $0 == "true" } ?? !plain
        let steps = Int(metadata["steps"] ?? "0") ?? -1
        guard steps >= 0 && steps <= 100_000_000 else {
            throw WeightsFileCommandError("\(file): metadata steps '\(metadata["steps"] ?? "")' is not a step count")
        }
        configuration.iterations = max(configuration.iterations, steps)
        let state = try WeightsFile.state(tensors, architecture: configuration.architecture())
        return Checkpoint(configuration: configuration, step: steps, state: state)
    }
}

struct WeightsFileCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
