import Cluster
import Foundation

/// Worker processes started by `train --workers W` on this machine: the same executable run as
/// `resnet-ddp worker`, told this process's PID so that none outlives it.
final class LocalWorkers: @unchecked Sendable {
    private var processes: [Process] = []
    private let lock = NSLock()

    init(
        count: Int, coordinator: String, data: String, threads: Int, heartbeatTimeout: Double, helperPollMicroseconds: UInt64,
        waitSpinMicroseconds: UInt64, profileEvery: Int = 0, profileOperations: Bool = false, cpus: [[Int]]? = nil
    ) throws {
        precondition(cpus.map { $0.count == count } ?? true, "one CPU list per worker")
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        for index in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            var arguments = [
                "worker", "--coordinator", coordinator, "--data", data, "--threads", String(threads),
                "--ring-host", "127.0.0.1", "--parent-pid", String(getpid()),
                "--heartbeat-timeout", String(heartbeatTimeout), "--profile-every", String(profileEvery),
                "--helper-poll-microseconds", String(helperPollMicroseconds),
                "--wait-spin-microseconds", String(waitSpinMicroseconds),
            ]
            if profileOperations { arguments.append("--profile-operations") }
            if let cpus { arguments += ["--cpus", CPUAffinity.format(cpus[index])] }
            process.arguments = arguments
            try process.run()
            processes.append(process)
        }
    }

    /// The process ids of workers that have exited.
    func exitedPIDs() -> Set<Int32> {
        lock.withLock { Set(processes.filter { !$0.isRunning }.map(\.processIdentifier)) }
    }

    /// Waits up to `seconds` for every worker to exit, then ends the rest.
    func waitForExit(seconds: Double) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        terminate()
    }

    func terminate() {
        for process in processes where process.isRunning { process.terminate() }
        let deadline = Date(timeIntervalSinceNow: 3)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
