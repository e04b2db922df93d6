import Foundation

/// True under CI (`CI` set and not "0"/"false"): tests that need the real dataset or the release
/// binary then run, and fail, when those are missing, instead of being skipped unseen.
public let requiredByCI: Bool = {
    guard let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() else { return false }
    return !["", "0", "false", "no"].contains(value)
}()

/// The real CIFAR-10 directory for tests: $CIFAR10_DIR, else the repository's
/// data/cifar-10-batches-bin (put there by scripts/fetch-cifar10); nil when neither has the files,
/// except under CI, where it is the expected path whether or not the files are there.
public let realDataDirectory: String? = {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let candidates: [String] = [
        ProcessInfo.processInfo.environment["CIFAR10_DIR"],
        repository.appendingPathComponent("data/cifar-10-batches-bin").path,
    ].compactMap { $0 }
    let found = candidates.first {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: $0).appendingPathComponent("data_batch_1.bin").path)
    }
    return found ?? (requiredByCI ? candidates.first : nil)
}()

/// `name` inside the real CIFAR-10 directory (only when `realDataDirectory` is set).
public func realDataFile(_ name: String) -> String {
    URL(fileURLWithPath: realDataDirectory!).appendingPathComponent(name).path
}

/// A new empty directory under the system's temporary directory.
public func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("resnet-ddp-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The release build of the command-line tool, next to the test bundle.
public let resnetDDPExecutable: String? = {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let path = repository.appendingPathComponent(".build/release/resnet-ddp").path
    return FileManager.default.isExecutableFile(atPath: path) || requiredByCI ? path : nil
}()

/// The release build of the simulated network (`netwire`), next to `resnet-ddp`.
public let netwireExecutable: String? = resnetDDPExecutable.map {
    URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("netwire").path
}

/// A started `resnet-ddp` process whose output goes to a file (no pipe to fill up).
public final class ToolProcess: @unchecked Sendable {
    public let process = Process()
    public let outputPath: String

    /// Starts `executable` (default: the release `resnet-ddp`) with extra `environment`.
    public init(_ arguments: [String], executable: String? = nil, environment: [String: String] = [:]) throws {
        outputPath = temporaryDirectory() + "/output.txt"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = FileHandle(forWritingAtPath: outputPath)!
        process.executableURL = URL(fileURLWithPath: executable ?? resnetDDPExecutable!)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        // The child inherits this thread's signal mask, and the threads tests run on may block
        // signals: a script started from such a thread could not trap SIGINT or SIGTERM.
        var all = sigset_t(), previous = sigset_t()
        sigemptyset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    /// Waits at most `seconds`, killing the process when it takes longer; returns its exit status.
    @discardableResult
    public func wait(seconds: Double) -> Int32 {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            // Foundation sees an exit when a descriptor the child holds closes; a grandchild that
            // kept it (a script's background job) would make an unbounded wait hang the test.
            let killed = Date(timeIntervalSinceNow: 10)
            while process.isRunning && Date() < killed { usleep(20_000) }
            return -1
        }
        return process.terminationStatus
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Runs to completion and returns (status, output).
    public static func run(
        _ arguments: [String], executable: String? = nil, environment: [String: String] = [:],
        seconds: Double = 300
    ) throws -> (status: Int32, output: String) {
        let tool = try ToolProcess(arguments, executable: executable, environment: environment)
        let status = tool.wait(seconds: seconds)
        return (status, tool.output)
    }
}

/// `arguments` (a program and its arguments) run with no open file inherited but standard input,
/// output and error. For daemons: Foundation sees a child exit when a descriptor the child holds
/// closes, so a daemon that kept it would leave its parent unreaped and `wait` waiting.
public func withoutInheritedFiles(_ arguments: [String]) -> [String] {
    [
        "/bin/bash", "-c", #"for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done; exec "$@""#,
        "bash",
    ] + arguments
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
public func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}

/// The central difference (loss(x + step) - loss(x - step)) / (2 step) in the value x at
/// `pointer`, which is restored: the finite-difference side of every gradient check.
public func centralDifference(at pointer: UnsafeMutablePointer<Float>, step: Float, _ loss: () -> Double) -> Double {
    let saved = pointer.pointee
    pointer.pointee = saved + step
    let plus = loss()
    pointer.pointee = saved - step
    let minus = loss()
    pointer.pointee = saved
    return (plus - minus) / (2 * Double(step))
}
