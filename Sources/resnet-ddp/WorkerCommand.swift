import ArgumentParser
import Cluster
import Foundation
import Training

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join a coordinator and compute a share of every training step.",
        discussion: """
            The worker reads CIFAR-10 from its own --data copy (the coordinator checks that every worker's \
            copy is identical), receives its rank, the configuration and the model from the coordinator, \
            and exchanges gradients with the other workers over a ring of direct connections.
            """)

    @Option(help: ArgumentHelp("The coordinator's address.", valueName: "tcp://host:port"))
    var coordinator: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var engine: EngineOptions
    @Option(help: "Address the other workers use to reach this one (its ring socket binds there, on a free port).")
    var ringHost = "127.0.0.1"
    @Option(help: "Seconds to wait for the coordinator or a ring neighbour before giving up.")
    var timeout: Double = 600
    @Option(help: .hidden)
    var parentPid: Int32?

    func validate() throws {
        guard coordinator.hasPrefix("tcp://") || coordinator.hasPrefix("ipc://") else {
            throw ValidationError("--coordinator must be tcp://host:port or ipc://path, got '\(coordinator)'")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        // Started by `train --workers`: Ctrl-C goes to the launcher, which stops the run cleanly.
        if parentPid != nil { signal(SIGINT, SIG_IGN) }
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let worker = Worker(options: .init(coordinator: coordinator, dataDirectory: dataOptions.data, threads: engine.resolvedThreads,
                                           ringHost: ringHost, timeout: timeout, parentPID: parentPid), log: log)
        do { try worker.run() } catch { fail("worker: \(error)") }
    }
}

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinate a distributed run: workers started elsewhere join with `resnet-ddp worker`.",
        discussion: """
            Binds --listen, waits for --workers workers, and then trains exactly like `train` (same flags, \
            metrics, progress, checkpoints and --resume). The coordinator needs no dataset; each worker reads \
            its own copy. Without CURVE keys nothing on the wire is authenticated or encrypted: listen on \
            loopback or a trusted network only.
            """)

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "tcp://host:port"))
    var listen = "tcp://127.0.0.1:5555"
    @Option(help: "Workers to wait for.")
    var workers: Int
    @Option(help: "Batch norm across workers: sync (statistics of the whole batch) or local (per worker).")
    var batchnorm: ControlMessage.BatchNormMode = .sync
    @Option(help: "Seconds to wait for all workers to join.")
    var rendezvousTimeout: Double = 600
    @Option(help: "Seconds to wait for one step (or evaluation) of every worker.")
    var stepTimeout: Double = 300
    @OptionGroup var training: TrainingOptions

    func validate() throws {
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be between 1 and 64") }
        guard listen.hasPrefix("tcp://") || listen.hasPrefix("ipc://") else {
            throw ValidationError("--listen must be tcp://host:port or ipc://path, got '\(listen)'")
        }
    }

    func run() throws {
        let display = ProgressDisplay()
        let run: (directory: String, configuration: TrainingConfiguration, resume: Checkpoint?)
        do { run = try training.prepareRun(display: display) } catch { fail("\(error)") }
        let stop = StopSignal()
        let options = Coordinator.Options(listen: listen, workers: workers, batchNorm: batchnorm,
                                          rendezvousTimeout: rendezvousTimeout, stepTimeout: stepTimeout,
                                          checkEvery: run.configuration.logEvery)
        var coordinator: Coordinator?
        do {
            let coord = try Coordinator(options: options, configuration: run.configuration, log: display.message)
            coordinator = coord
            try coord.rendezvous(state: try initialState(run.configuration, resume: run.resume))
            let trainer = try Trainer(configuration: run.configuration, executor: coord, trainImages: coord.trainImages,
                                      hasValidation: run.configuration.validation > 0, startStep: run.resume?.step ?? 0,
                                      runDirectory: run.directory, display: display)
            let summary = try finish(trainer, runDirectory: run.directory, display: display, stop: stop)
            coord.stop(reason: summary.finished ? "training finished" : "interrupted")
            if !summary.finished { throw ExitCode(130) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            coordinator?.stop(reason: "coordinator failed: \(error)")
            fail("\(error)")
        }
    }
}
