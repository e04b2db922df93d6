import ArgumentParser
import Foundation

/// Options every subcommand that computes shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for the engine (default: the number of CPU cores, \(ProcessInfo.processInfo.activeProcessorCount) here).")
    var threads: Int?

    var resolvedThreads: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }
}

struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory with the CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin).",
                               valueName: "dir"))
    var data = "data/cifar-10-batches-bin"
}

/// Prints `message` to standard error and exits with `code`.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(code)
}
