import ArgumentParser
import Foundation
import TensorCore

/// Options every subcommand that computes shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for the engine (default: the number of CPU cores, \(ProcessInfo.processInfo.activeProcessorCount) here).")
    var threads: Int?
    @Option(
        help: ArgumentHelp(
            "Microseconds an idle engine thread polls for the next parallel loop before it sleeps "
                + "(0: sleep at once, for machines shared with other work).", valueName: "us"))
    var helperPollMicroseconds: UInt64 = 1000

    var resolvedThreads: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        if helperPollMicroseconds > EngineSettings.maximumHelperPollMicroseconds {
            throw ValidationError("--helper-poll-microseconds must be at most \(EngineSettings.maximumHelperPollMicroseconds)")
        }
    }

    /// Applies the process-wide settings; call first in `run()`.
    func apply() { EngineSettings.setHelperPoll(microseconds: helperPollMicroseconds) }
}

struct DataOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Directory with the CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin).",
            valueName: "dir"))
    var data = "data/cifar-10-batches-bin"
}

/// Prints `message` to standard error and exits with `code`.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(code)
}
