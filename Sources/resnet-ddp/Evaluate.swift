import ArgumentParser
import CIFAR
import Foundation
import Training

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint or a safetensors file on the CIFAR-10 test set: error, per-class accuracy, confusion matrix.")

    @OptionGroup var engine: EngineOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: ArgumentHelp("Checkpoint file (RUN_DIR/checkpoints/step-*.ckpt).", valueName: "file"))
    var checkpoint: String?

    @Option(
        help: ArgumentHelp(
            "Or a safetensors file (`resnet-ddp export`, or a PyTorch state_dict of scripts/torch_resnet.py).", valueName: "model.safetensors"))
    var weights: String?

    @Flag(help: "With --weights: the weights are of a plain net (when the file's metadata does not say).")
    var plain = false

    @Option(help: "Images per forward pass.")
    var batchSize = 1000

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        if (checkpoint == nil) == (weights == nil) { throw ValidationError("give either --checkpoint or --weights") }
        if batchSize < 1 || batchSize > TrainingConfiguration.maximumEvalBatchSize {
            throw ValidationError("--batch-size must be 1-\(TrainingConfiguration.maximumEvalBatchSize) (the test set's size)")
        }
    }

    func run() throws {
        engine.apply()
        let loaded: Checkpoint
        do {
            if let weights {
                loaded = try WeightsFile.checkpoint(fromSafeTensorsAt: weights, plain: plain)
            } else {
                loaded = try CheckpointDirectory.read(checkpoint ?? "")
            }
        } catch { fail("\(error)") }
        let data: CIFAR10
        do { data = try CIFAR10.load(directory: dataOptions.data, validation: loaded.configuration.validation) } catch { fail("\(error)") }
        var configuration = loaded.configuration
        configuration.evalBatchSize = batchSize
        let result: Evaluation
        do {
            let executor = try LocalExecutor(
                configuration: configuration, data: data, threads: engine.resolvedThreads,
                state: loaded.modelState)
            result = try executor.evaluate(.test)
        } catch { fail("\(error)") }
        let name = try configuration.architecture().name
        if json {
            let perClass = result.perClassAccuracy.map { String(format: "%.2f", $0) }.joined(separator: ",")
            print(
                "{\"model\":\"\(name)\",\"step\":\(loaded.step),\"images\":\(result.images),"
                    + String(
                        format: "\"test_loss\":%.5f,\"test_error\":%.2f,\"test_error_exact1000\":%.2f,", result.loss,
                        result.error, result.errorFirst1000)
                    + "\"per_class_accuracy\":[\(perClass)],\"confusion\":\(result.confusion)}")
            return
        }
        print(
            "\(name) at step \(loaded.step): test error \(String(format: "%.2f", result.error))% on \(result.images) images "
                + "(loss \(String(format: "%.4f", result.loss)); first 1000 exact images: \(String(format: "%.2f", result.errorFirst1000))%)")
        print("\nclass        accuracy")
        for (c, accuracy) in result.perClassAccuracy.enumerated() {
            print(CIFARFormat.classNames[c].padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %6.2f%%", accuracy))
        }
        print("\nconfusion (rows: true class, columns: predicted)")
        print("            " + (0..<10).map { String(format: "%5d", $0) }.joined())
        for (c, row) in result.confusion.enumerated() {
            print(
                CIFARFormat.classNames[c].padding(toLength: 12, withPad: " ", startingAt: 0)
                    + row.map { String(format: "%5d", $0) }.joined())
        }
    }
}
