import ArgumentParser
import CIFAR
import Cluster
import Foundation
import Models
import TensorCore
import Training

extension ControlMessage.BatchNormMode: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a ResNet or plain net on CIFAR-10 with the paper's schedule, in one process or on local workers.",
        discussion: """
            Defaults are the paper's (section 4.2): batch 128, SGD with momentum 0.9, weight decay 1e-4, \
            lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations, 4-pixel pad + random crop + flip, \
            per-pixel mean subtraction. Writes RUN_DIR/metrics.jsonl, RUN_DIR/config.json and \
            RUN_DIR/checkpoints/. Ctrl-C stops after the current step and writes a checkpoint; \
            --resume RUN_DIR continues from the newest valid checkpoint with bitwise-identical results. \
            With --workers W, W local worker processes share each batch (coordinator and workers over \
            ZeroMQ on loopback); the result is bitwise the same as with --workers 0.
            """)

    @OptionGroup var engine: EngineOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Local worker processes sharing each batch; 0 trains in this process.")
    var workers = 0
    @Option(help: "Batch norm across workers: sync (statistics of the whole batch) or local (per worker).")
    var batchnorm: ControlMessage.BatchNormMode = .sync
    @Option(help: "Engine threads per worker. (default: cores / workers, at least 1)")
    var workerThreads: Int?
    @Option(
        help: ArgumentHelp(
            "Microseconds a worker's wait for another worker polls before it sleeps "
                + "(default 0: sleep at once; only worth trying when workers x threads fit the cores).", valueName: "us"))
    var workerWaitSpinMicroseconds: UInt64?
    @Flag(
        help: """
            Bind local worker i to its own CPUs (worker threads each, in the order this process may use \
            them; needs workers x worker threads <= those CPUs). Off by default: two runs at once would \
            share the same CPUs.
            """)
    var bindWorkers = false
    @Flag(help: "Workers print where their step time goes (JSON lines on stderr, every --log-every steps).")
    var profileWorkers = false
    @Flag(help: "With --profile-workers: workers also print each engine operation's time per step.")
    var profileWorkerOperations = false
    @OptionGroup(title: "Fault tolerance (with --workers)") var membership: MembershipOptions
    /// Set by `experiment`: stop with a checkpoint when that process ends.
    @Option(help: .hidden) var parentPid: Int32?

    /// How long `--workers` waits for its own local processes to join (they start at once).
    static let localRendezvousTimeout = 120.0

    func validate() throws {
        if workers < 0 || workers > 64 { throw ValidationError("--workers must be between 0 and 64") }
        if let workerThreads, workerThreads < 1 || workerThreads > 256 { throw ValidationError("--worker-threads must be between 1 and 256") }
        if workers == 0 && batchnorm != .sync { throw ValidationError("--batchnorm applies to --workers runs only") }
        if workers == 0 && profileWorkers { throw ValidationError("--profile-workers applies to --workers runs only") }
        if profileWorkerOperations && !profileWorkers { throw ValidationError("--profile-worker-operations needs --profile-workers") }
        if workers == 0 && workerWaitSpinMicroseconds != nil {
            throw ValidationError("--worker-wait-spin-microseconds applies to --workers runs only")
        }
        if let spin = workerWaitSpinMicroseconds, spin > Worker.Options.maximumWaitSpinMicroseconds {
            throw ValidationError("--worker-wait-spin-microseconds must be at most \(Worker.Options.maximumWaitSpinMicroseconds)")
        }
        if bindWorkers {
            guard workers > 0 else { throw ValidationError("--bind-workers applies to --workers runs only") }
            do { _ = try workerCPUs(threads: workerThreads ?? max(1, engine.resolvedThreads / workers)) } catch {
                throw ValidationError("--bind-workers: \(error)")
            }
        }
    }

    /// Worker i's CPUs under --bind-workers: the i-th run of `threads` CPUs this process may use.
    func workerCPUs(threads: Int) throws -> [[Int]] {
        let allowed = try CPUAffinity.allowedCPUs()
        guard workers * threads <= allowed.count else {
            throw ValidationError(
                "\(workers) workers x \(threads) threads need \(workers * threads) CPUs; this process may use "
                    + "\(allowed.count) (\(CPUAffinity.format(allowed)))")
        }
        return (0..<workers).map { Array(allowed[($0 * threads)..<(($0 + 1) * threads)]) }
    }

    func run() throws {
        engine.apply()
        let display = ProgressDisplay()
        let run: PreparedRun
        do { run = try training.prepareRun(display: display) } catch { fail("\(error)") }
        let architecture = try run.configuration.architecture()
        let stop = StopSignal()
        if let parentPid { stop.watchParent(parentPid) }
        if workers == 0 {
            let data: CIFAR10
            do { data = try CIFAR10.load(directory: dataOptions.data, validation: run.configuration.validation) } catch { fail("\(error)") }
            display.message(
                "\(architecture.name): \(architecture.parameterCount) parameters; \(data.train.count) training, "
                    + "\(data.validation?.count ?? 0) validation, \(data.test.count) test images; "
                    + "\(engine.resolvedThreads) threads, \(VectorUnit.summary); run directory \(run.directory)")
            do {
                let trainer = try Trainer(
                    configuration: run.configuration, data: data, threads: engine.resolvedThreads,
                    runDirectory: run.directory, resume: run.resume, display: display)
                if !(try finish(trainer, runDirectory: run.directory, display: display, stop: stop)).finished { throw ExitCode(130) }
            } catch let exit as ExitCode { throw exit } catch { fail("\(error)") }
            return
        }
        // Validate the data here too, so a bad --data fails before any process starts.
        if !FileManager.default.fileExists(atPath: URL(fileURLWithPath: dataOptions.data).appendingPathComponent("data_batch_1.bin").path) {
            fail("\(CIFARError.fileMissing(URL(fileURLWithPath: dataOptions.data).appendingPathComponent("data_batch_1.bin").path))")
        }
        let threads = workerThreads ?? max(1, engine.resolvedThreads / workers)
        let waitSpin = workerWaitSpinMicroseconds ?? Worker.Options.defaultWaitSpinMicroseconds
        let cpus = bindWorkers ? try workerCPUs(threads: threads) : nil
        display.message(
            "\(architecture.name): \(architecture.parameterCount) parameters; \(workers) local workers x "
                + "\(threads) threads\(cpus.map { ", bound to CPUs " + $0.map(CPUAffinity.format).joined(separator: " | ") } ?? ""), "
                + "batch norm \(batchnorm.rawValue), wait spin \(waitSpin) us; run directory \(run.directory)")
        let options = Coordinator.Options(
            listen: "tcp://127.0.0.1:*", workers: workers, minWorkers: membership.minWorkers,
            maxWorkers: membership.maxWorkers, batchNorm: batchnorm, rendezvousTimeout: Self.localRendezvousTimeout,
            stepTimeout: membership.stepTimeout, heartbeatTimeout: membership.heartbeatTimeout,
            checkEvery: run.configuration.logEvery, injectFaults: membership.injectFaults)
        var local: LocalWorkers?
        try runCoordinated(options, run: run, display: display, stop: stop) { coordinator in
            let started = try LocalWorkers(
                count: workers, coordinator: coordinator.endpoint, data: dataOptions.data, threads: threads,
                heartbeatTimeout: membership.heartbeatTimeout, helperPollMicroseconds: engine.helperPollMicroseconds,
                waitSpinMicroseconds: waitSpin, profileEvery: profileWorkers ? run.configuration.logEvery : 0,
                profileOperations: profileWorkerOperations, cpus: cpus)
            local = started
            coordinator.liveness = { started.exitedPIDs() }
        } finished: { succeeded in
            if succeeded { local?.waitForExit(seconds: 10) } else { local?.terminate() }
        }
    }
}

/// Runs a coordinated training: binds, `start`s the workers if it launches them, waits for them,
/// trains, and stops every worker on the way out; `finished(success)` runs last. Exits the
/// process with a message on failure and with status 130 when interrupted.
func runCoordinated(
    _ options: Coordinator.Options, run: PreparedRun,
    display: ProgressDisplay, stop: StopSignal, start: (Coordinator) throws -> Void = { _ in },
    finished: (Bool) -> Void = { _ in }
) throws {
    var coordinator: Coordinator?
    do {
        let coord = try Coordinator(options: options, configuration: run.configuration, log: display.message)
        coordinator = coord
        coord.shouldStop = { stop.isSet }
        let events = EventLog(runDirectory: run.directory)
        coord.onEvent = { events.write($0) }
        try start(coord)
        try coord.rendezvous(state: try initialState(run.configuration, resume: run.resume), startStep: run.resume?.step ?? 0)
        let trainer = try Trainer(
            configuration: run.configuration, executor: coord, trainImages: coord.trainImages,
            hasValidation: run.configuration.validation > 0, startStep: run.resume?.step ?? 0,
            runDirectory: run.directory, display: display)
        let summary = try finish(trainer, runDirectory: run.directory, display: display, stop: stop)
        coord.stop(reason: summary.finished ? "training finished" : "interrupted")
        finished(true)
        if !summary.finished { throw ExitCode(130) }
    } catch let exit as ExitCode {
        throw exit
    } catch ClusterError.interrupted(let when) {
        coordinator?.stop(reason: "interrupted")
        finished(false)
        display.message("interrupted \(when); --resume \(run.directory) continues from its latest checkpoint")
        throw ExitCode(130)
    } catch {
        coordinator?.stop(reason: "coordinator failed: \(error)")
        finished(false)
        fail("\(error)")
    }
}

/// Parameters from the seed (or the checkpoint), zero momentum, initial running statistics.
func initialState(_ configuration: TrainingConfiguration, resume: Checkpoint?) throws -> ModelState {
    if let resume { return resume.modelState }
    let model = ResNet(try configuration.architecture(), seed: configuration.seed, pool: .init(threads: 1))
    return ModelState(
        parameters: Array(model.store.values), momentum: [Float](repeating: 0, count: model.store.parameterCount),
        state: Array(model.store.state))
}
