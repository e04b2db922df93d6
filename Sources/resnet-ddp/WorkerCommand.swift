import ArgumentParser
import Cluster
import Foundation
import Training
import Transport

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
    @Option(help: "Seconds to wait for the coordinator's first answer, or for one ring message, before giving up.")
    var timeout: Double = 600
    @Option(help: "Seconds without an answer from the coordinator after which this worker exits (status 3).")
    var heartbeatTimeout: Double = 2
    @Option(help: ArgumentHelp("Testing: inject message faults into this worker's sends (see coordinator --help).", valueName: "spec"))
    var injectFaults: String?
    @Option(
        help: ArgumentHelp(
            "Print where this worker's step time goes (compute, batch-norm and gradient all-reduces, "
                + "waiting for the next step) as a JSON line on stderr every this many steps; 0: never."))
    var profileEvery = 0
    @Flag(help: "With --profile-every: also print each engine operation's time per step (an \"operations\" JSON line).")
    var profileOperations = false
    @Option(
        help: ArgumentHelp(
            "Microseconds a wait for another worker's message polls before it sleeps (0: sleep at once, "
                + "for hosts with more workers than cores).", valueName: "us"))
    var waitSpinMicroseconds: UInt64 = Worker.Options.defaultWaitSpinMicroseconds
    @Option(
        help: ArgumentHelp(
            "Bind all of this worker's threads (engine, ZeroMQ I/O, heartbeat) to these CPUs, e.g. 0 or 2-3 "
                + "(default: unbound; see train --bind-workers).", valueName: "list"))
    var cpus: String?
    @OptionGroup(title: "Security") var security: WorkerSecurityOptions
    @Option(help: .hidden)
    var faultPlan: String?
    @Option(help: .hidden)
    var parentPid: Int32?

    func validate() throws {
        guard coordinator.hasPrefix("tcp://") || coordinator.hasPrefix("ipc://") else {
            throw ValidationError("--coordinator must be tcp://host:port or ipc://path, got '\(coordinator)'")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard profileEvery >= 0 else { throw ValidationError("--profile-every must be 0 or more") }
        if profileOperations && profileEvery == 0 { throw ValidationError("--profile-operations needs --profile-every") }
        guard waitSpinMicroseconds <= Worker.Options.maximumWaitSpinMicroseconds else {
            throw ValidationError("--wait-spin-microseconds must be at most \(Worker.Options.maximumWaitSpinMicroseconds)")
        }
        if let cpus {
            do { _ = try CPUAffinity.parse(cpus) } catch { throw ValidationError("--cpus: \(error)") }
        }
        guard heartbeatTimeout >= HeartbeatTiming.minimumTimeout else { throw ValidationError(heartbeatTimeoutProblem) }
        if let injectFaults {
            do { _ = try FaultInjector(spec: injectFaults) } catch { throw ValidationError("--inject-faults: \(error)") }
        }
        if let faultPlan {
            do { _ = try FaultPlan(parsing: faultPlan) } catch { throw ValidationError("--fault-plan: \(error)") }
        }
    }

    func run() throws {
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        // First, so that every thread started from here on inherits the binding.
        if let cpus {
            do {
                let requested = try CPUAffinity.parse(cpus)
                let bound = try CPUAffinity.bindProcess(to: requested)
                guard bound == requested else {
                    fail("worker: --cpus \(cpus): bound to \(CPUAffinity.format(bound)) instead")
                }
                log("worker: threads bound to CPU \(CPUAffinity.format(bound)) (pid \(getpid()))")
            } catch { fail("worker: --cpus \(cpus): \(error)") }
        }
        engine.apply()
        // Started by `train --workers`: Ctrl-C goes to the launcher, which stops the run cleanly.
        if parentPid != nil { signal(SIGINT, SIG_IGN) }
        var options = Worker.Options(
            coordinator: coordinator, dataDirectory: dataOptions.data, threads: engine.resolvedThreads,
            ringHost: ringHost, timeout: timeout, parentPID: parentPid)
        options.heartbeatTimeout = heartbeatTimeout
        options.injectFaults = injectFaults
        options.profileEvery = profileEvery
        options.profileOperations = profileOperations
        options.waitSpinMicroseconds = waitSpinMicroseconds
        options.faultPlan = try faultPlan.map { try FaultPlan(parsing: $0) }
        do { options.curve = try security.load() } catch { fail("worker: \(error)") }
        do { try Worker(options: options, log: log).run() } catch { fail("worker: \(error)") }
    }
}
