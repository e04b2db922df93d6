import ArgumentParser

@main
struct ResNetDDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resnet-ddp",
        abstract: "Deep residual networks for CIFAR-10 (He et al., CVPR 2016), trained on the CPU.",
        subcommands: [Train.self, CoordinatorCommand.self, WorkerCommand.self, Evaluate.self, Experiment.self, Bench.self, Info.self]
    )
}
