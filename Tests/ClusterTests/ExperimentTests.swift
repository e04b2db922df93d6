import Foundation
import TestSupport
import Testing
import Training

@Suite(.serialized) struct ExperimentTests {
    /// A short `figure6` trains all eight nets; running it again skips every finished run.
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func figure6RunsEveryNetAndResumesBySkipping() throws {
        let out = temporaryDirectory() + "/figure6"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let arguments = ["experiment", "figure6", "--out", out, "--schedule", "short", "--iterations", "4", "--data", realDataDirectory!]
        let first = try ToolProcess.run(arguments, seconds: 600)
        try #require(first.status == 0, "\(first.output)")
        for name in ["plain-20", "plain-32", "plain-44", "plain-56", "resnet-20", "resnet-32", "resnet-44", "resnet-56"] {
            let checkpoint = try CheckpointDirectory(runDirectory: "\(out)/\(name)").latestValid().checkpoint
            #expect(checkpoint.step == 4, "\(name)")
            #expect(checkpoint.configuration.milestones == [2, 3] && checkpoint.configuration.residual == name.hasPrefix("resnet"))
        }
        let second = try ToolProcess.run(arguments, seconds: 120)
        #expect(second.status == 0)
        #expect(second.output.components(separatedBy: "skipped").count - 1 == 8, "\(second.output)")
    }
}
