import ArgumentParser
import Cluster
import Training
import Transport

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinate a distributed run: workers started elsewhere join with `resnet-ddp worker`.",
        discussion: """
            Binds --listen, waits for --workers workers, and then trains exactly like `train` (same flags, \
            metrics, progress, checkpoints and --resume). The coordinator needs no dataset; each worker reads \
            its own copy. Workers may die, freeze or join at any time: see the fault-tolerance options. \
            With --curve-secret-key and --authorized-keys (see `resnet-ddp keygen`) only listed workers can join \
            and all traffic, control and ring, is encrypted; without them nothing on the wire is authenticated \
            or encrypted: listen on loopback or a trusted network only.
            """)

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "tcp://host:port"))
    var listen = "tcp://127.0.0.1:5555"
    @Option(help: "Workers to wait for before the first step.")
    var workers: Int
    @Option(help: "Batch norm across workers: sync (statistics of the whole batch) or local (per worker).")
    var batchnorm: ControlMessage.BatchNormMode = .sync
    @Option(
        help: ArgumentHelp(
            "Seconds to wait for all workers to join (and, when paused, for --min-workers); workers started by hand, "
                + "ssh or a scheduler may take long. (`train --workers` waits \(Int(Train.localRendezvousTimeout)) s for its local processes.)"))
    var rendezvousTimeout: Double = 600
    @OptionGroup(title: "Fault tolerance") var membership: MembershipOptions
    @OptionGroup(title: "Security") var security: CoordinatorSecurityOptions
    @OptionGroup var training: TrainingOptions

    func validate() throws {
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be between 1 and 64") }
        guard listen.hasPrefix("tcp://") || listen.hasPrefix("ipc://") else {
            throw ValidationError("--listen must be tcp://host:port or ipc://path, got '\(listen)'")
        }
    }

    func run() throws {
        let display = ProgressDisplay()
        let run: PreparedRun
        do { run = try training.prepareRun(display: display) } catch { fail("\(error)") }
        let stop = StopSignal()
        var curve: (keys: CurveKeyPair, authorized: Set<String>)?
        do { curve = try security.load() } catch { fail("\(error)") }
        if curve == nil && !isLoopback(listen) {
            display.message(
                "warning: listening on \(listen) without CURVE: anyone who reaches it can join the run, "
                    + "send it data and read its traffic (see resnet-ddp keygen)")
        }
        var options = Coordinator.Options(
            listen: listen, workers: workers, minWorkers: membership.minWorkers,
            maxWorkers: membership.maxWorkers, batchNorm: batchnorm,
            rendezvousTimeout: rendezvousTimeout, stepTimeout: membership.stepTimeout,
            heartbeatTimeout: membership.heartbeatTimeout, checkEvery: run.configuration.logEvery,
            injectFaults: membership.injectFaults)
        options.curve = curve
        try runCoordinated(options, run: run, display: display, stop: stop)
    }
}
