import Foundation
import TestSupport
import Testing

/// The exact bits of short fixed runs on real CIFAR-10. The paper-schedule runs span many
/// sittings and engine versions, and a resumed run is only the same run if every binary gives
/// the same bits, so every change must keep these hashes.
///
/// To update (only when a change is meant to alter the bits): run the commands in `arguments`
/// with the new build, paste the printed `parameters` hashes here, and do it in a commit of its
/// own whose message says why the bits changed and that no long run resumes across it.
@Suite(.serialized) struct PinnedBitsTests {
    static let pinned: [(name: String, flags: [String], hash: String)] = [
        ("ResNet-8, 1 thread", ["--depth", "8", "--threads", "1"], "33b5a670f074fb04"),
        ("ResNet-8, 2 threads", ["--depth", "8", "--threads", "2"], "33b5a670f074fb04"),
        ("ResNet-8, 2 workers", ["--depth", "8", "--workers", "2", "--worker-threads", "1"], "33b5a670f074fb04"),
        // Local batch norm: the gradient buckets overlap the backward pass (pinned from 2cc792a,
        // before the overlap existed).
        (
            "ResNet-8, 2 workers, local batch norm",
            ["--depth", "8", "--workers", "2", "--worker-threads", "1", "--batchnorm", "local"], "3f3c88e1eb599c40"
        ),
        (
            "ResNet-8, 3 workers, local batch norm",
            ["--depth", "8", "--workers", "3", "--worker-threads", "1", "--batchnorm", "local"], "c6c6af8655f5b984"
        ),
        ("plain-8, 1 thread", ["--depth", "8", "--plain", "--threads", "1"], "2b629a640a258912"),
        ("plain-8, 2 threads", ["--depth", "8", "--plain", "--threads", "2"], "2b629a640a258912"),
        ("plain-8, 2 workers", ["--depth", "8", "--plain", "--workers", "2", "--worker-threads", "1"], "2b629a640a258912"),
    ]

    /// `resnet-ddp train` arguments of a pinned run: 12 steps of the paper's recipe, seed 1.
    static func arguments(_ flags: [String], out: String) -> [String] {
        ["train", "--data", realDataDirectory!, "--out", out, "--iterations", "12"] + flags
    }

    @Test(
        .enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"),
        arguments: pinned.indices)
    func twelveStepsGiveThePinnedParameters(index: Int) throws {
        let run = Self.pinned[index]
        let out = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try ToolProcess.run(Self.arguments(run.flags, out: out), seconds: 300)
        try #require(status == 0, "\(run.name): \(output)")
        let finished = output.split(separator: "\n").last { $0.hasPrefix("finished 12 steps") }
        let hash = finished?.split(separator: " ").last.map(String.init)
        #expect(hash == run.hash, "\(run.name): parameters \(hash ?? "not printed"), pinned \(run.hash)")
    }
}
