import ArgumentParser
import Foundation
import TensorCore

@main
struct ResNetDDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resnet-ddp",
        abstract: "Deep residual networks for CIFAR-10 (He et al., CVPR 2016), trained on the CPU.",
        subcommands: [
            Train.self, CoordinatorCommand.self, WorkerCommand.self, Evaluate.self, ExportWeights.self, ImportWeights.self,
            Experiment.self, Bench.self, Info.self, Keygen.self,
        ]
    )

    static func main() {
        // A file-size limit (or a full quota) must fail the write with EFBIG, which is reported,
        // instead of killing the process with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        if let reason = VectorUnit.unsupportedReason() { fail(reason) }
        main(nil)
    }
}
