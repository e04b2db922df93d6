import Foundation
import TestSupport
import Testing

/// `evaluate --weights` reads a safetensors file (the released models' form) and gives exactly
/// what `evaluate --checkpoint` gives for the checkpoint it was exported from.
@Suite(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
struct EvaluateWeightsTests {
    @Test func weightsEvaluateAsTheirCheckpoint() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = directory + "/run", model = directory + "/model.safetensors"
        let data = ["--data", realDataDirectory!]
        let trained = try ToolProcess.run(
            ["train", "--depth", "8", "--iterations", "3", "--checkpoint-every", "3", "--eval-every", "1000", "--threads", "1", "--out", run]
                + data, seconds: 300)
        #expect(trained.status == 0, "\(trained.output)")
        let checkpoint = run + "/checkpoints/step-00000003.ckpt"
        let exported = try ToolProcess.run(["export", "--checkpoint", checkpoint, "--out", model, "--threads", "1"] + data, seconds: 300)
        #expect(exported.status == 0, "\(exported.output)")

        let fromCheckpoint = try ToolProcess.run(["evaluate", "--checkpoint", checkpoint, "--json", "--threads", "1"] + data, seconds: 300)
        let fromWeights = try ToolProcess.run(["evaluate", "--weights", model, "--json", "--threads", "1"] + data, seconds: 300)
        #expect(fromCheckpoint.status == 0 && fromWeights.status == 0, "\(fromCheckpoint.output)\n\(fromWeights.output)")
        #expect(fromCheckpoint.output.contains("\"model\":\"ResNet-8\",\"step\":3,"), "\(fromCheckpoint.output)")
        #expect(fromWeights.output == fromCheckpoint.output)

        // Both sources, or neither, is a usage error; a damaged file is named, not a crash.
        let both = try ToolProcess.run(["evaluate", "--checkpoint", checkpoint, "--weights", model] + data, seconds: 60)
        #expect(both.status == 64 && both.output.contains("either --checkpoint or --weights"), "\(both.output)")
        let neither = try ToolProcess.run(["evaluate"] + data, seconds: 60)
        #expect(neither.status == 64, "\(neither.output)")
        let truncated = directory + "/truncated.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        let damaged = try ToolProcess.run(["evaluate", "--weights", truncated] + data, seconds: 60)
        #expect(damaged.status == 1 && damaged.output.contains("truncated.safetensors"), "\(damaged.output)")
    }
}
