import Foundation
import TestSupport
import Testing
import Training

/// Flags with absurd values end with a usage error naming the flag and its limit, before any
/// allocation (`bench --threads 100000` used to start 100,000 threads).
@Suite(.enabled(if: resnetDDPExecutable != nil, "needs the release build"))
struct FlagValidationTests {
    @Test(arguments: [
        (["bench", "--threads", "100000"], "--threads: '100000' is not a number from 1 to 256"),
        (["bench", "--threads", "0"], "--threads: '0' is not a number from 1 to 256"),
        (["bench", "--depths", "60002"], "--depths: 60002 is deeper than 1202"),
        (["train", "--helper-poll-microseconds", "10000001"], "--helper-poll-microseconds must be at most 10000000"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--helper-poll-microseconds", "-1"], "--helper-poll-microseconds"),
        (["train", "--profile-workers"], "--profile-workers applies to --workers runs only"),
        (["experiment", "figure6", "--out", "/nonexistent/x", "--max-restarts", "1001"], "--max-restarts must be between 0 and 1000"),
        (["experiment", "figure6", "--out", "/nonexistent/x", "--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
        (["experiment", "figure6", "--out", "/nonexistent/x", "--nets", "plain,"], "--nets must be comma-separated names from"),
        (["experiment", "figure6", "--out", "/nonexistent/x", "--nets", "vgg"], "--nets must be comma-separated names from"),
        (["experiment", "table", "--out", "/nonexistent/x", "--nets", "plain"], "--nets: table trains residual nets only"),
        (["experiment", "figure6", "--out", "/nonexistent/x", "--depths", "110", "--nets", "plain"], "--depths and --nets leave no run"),
        (["train", "--workers", "2", "--profile-worker-operations"], "--profile-worker-operations needs --profile-workers"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--profile-operations"], "--profile-operations needs --profile-every"),
        (["train", "--worker-wait-spin-microseconds", "300"], "--worker-wait-spin-microseconds applies to --workers runs only"),
        (
            ["train", "--workers", "2", "--worker-wait-spin-microseconds", "1000001"],
            "--worker-wait-spin-microseconds must be at most 1000000"
        ),
        (
            ["worker", "--coordinator", "tcp://127.0.0.1:1", "--wait-spin-microseconds", "1000001"],
            "--wait-spin-microseconds must be at most 1000000"
        ),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--wait-spin-microseconds", "-1"], "--wait-spin-microseconds"),
        (["train", "--bind-workers"], "--bind-workers applies to --workers runs only"),
        (["train", "--workers", "2", "--worker-threads", "256", "--bind-workers"], "2 workers x 256 threads need 512 CPUs"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--cpus", "3-1"], "--cpus: CPU range 3-1 in '3-1' runs backwards"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--cpus", "0,x"], "--cpus: '0,x' is not a CPU list"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--cpus", "0,0"], "--cpus: '0,0' names a CPU twice"),
        (["worker", "--coordinator", "tcp://127.0.0.1:1", "--cpus", "99999"], "--cpus: CPU 99999 in '99999' is above the largest index"),
        (["bench", "--allreduce", "--allreduce-workers", "1"], "--allreduce-workers: '1' is not 2...64"),
        (["bench", "--allreduce", "--allreduce-algorithms", "tree"], "--allreduce-algorithms: 'tree' is not one of"),
        (["bench", "--allreduce", "--allreduce-elements", "0"], "--allreduce-elements: '0' is not a size"),
        (
            ["bench", "--allreduce", "--allreduce-rank", "2", "--allreduce-endpoints", "tcp://127.0.0.1:1,tcp://127.0.0.1:2"],
            "--allreduce-rank: 2 is not a rank of 2"
        ),
        (
            ["bench", "--allreduce", "--allreduce-rank", "0", "--allreduce-endpoints", "tcp://127.0.0.1:1,127.0.0.1:2"],
            "--allreduce-endpoints: '127.0.0.1:2' is not tcp://HOST:PORT"
        ),
        (
            ["bench", "--allreduce", "--allreduce-rank", "0", "--allreduce-endpoints", "tcp://127.0.0.1:1,tcp://127.0.0.1:1"],
            "--allreduce-endpoints: an address appears twice"
        ),
        (["bench", "--allreduce", "--allreduce-rank", "0"], "--allreduce-rank needs --allreduce-endpoints"),
        (["bench", "--allreduce-rank", "0", "--allreduce-endpoints", "tcp://127.0.0.1:1,tcp://127.0.0.1:2"], "--allreduce-rank needs --allreduce"),
    ])
    func absurdBenchFlagsAreRefused(arguments: [String], expected: String) throws {
        let (status, output) = try ToolProcess.run(arguments, seconds: 60)
        #expect(status == 64, "\(arguments): status \(status)\n\(output)")
        #expect(output.contains(expected), "\(output)")
    }

    /// `train --help` states, for each flag that defines a run, the default `TrainingConfiguration`
    /// has: the help text reads them from there, so they cannot drift apart.
    @Test func helpStatesTheConfigurationDefaults() throws {
        let (status, output) = try ToolProcess.run(["train", "--help"], seconds: 60)
        #expect(status == 0, "\(output)")
        // argument-parser wraps and indents long help: compare with whitespace collapsed.
        let help = output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let defaults = TrainingConfiguration()
        let expected: [(String, String)] = [
            ("--depth", "\(defaults.depth)"), ("--iterations", "\(defaults.iterations)"), ("--batch-size", "\(defaults.batchSize)"),
            ("--lr", "\(defaults.learningRate)"), ("--milestones", defaults.milestones.map(String.init).joined(separator: ",")),
            ("--momentum", "\(defaults.momentum)"), ("--weight-decay", "\(defaults.weightDecay)"), ("--seed", "\(defaults.seed)"),
            ("--checkpoint-every", "\(defaults.checkpointEvery)"), ("--keep-checkpoints", "\(defaults.keepCheckpoints)"),
            ("--log-every", "\(defaults.logEvery)"), ("--validation", "\(defaults.validation)"), ("--warmup", "\(defaults.warmupIterations)"),
        ]
        for (flag, value) in expected {
            guard let start = help.range(of: " \(flag) <") else {
                Issue.record("\(flag) is not in train --help")
                continue
            }
            let rest = help[start.upperBound...]
            let entry = rest[..<(rest.range(of: " --")?.lowerBound ?? rest.endIndex)]
            #expect(entry.contains("(default: \(value))"), "\(flag): \(entry)")
        }
    }
}
