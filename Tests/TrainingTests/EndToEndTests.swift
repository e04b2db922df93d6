import CIFAR
import Foundation
import Testing
import Training

/// A short real training run: ResNet-8 on the first 10,000 real CIFAR-10 training images.
@Suite struct EndToEndTests {
    @Test(.enabled(if: realDataDirectory != nil, "real CIFAR-10 not found (run scripts/fetch-cifar10)"))
    func lossFallsOnRealImages() throws {
        let train = try LabeledImages.read(files: [realDataFile("data_batch_1.bin")])
        let test = try LabeledImages.read(files: [realDataFile("test_batch.bin")]).slice(0..<1000)
        let data = CIFAR10(train: train, validation: nil, test: test)
        var c = TrainingConfiguration()
        c.depth = 8
        c.batchSize = 64
        c.iterations = 300
        c.milestones = []
        c.logEvery = 25
        c.evalEvery = 300
        c.checkpointEvery = 300
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let summary = try Trainer(configuration: c, data: data, threads: 2, runDirectory: run).run()

        let records = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let losses = records.map { ($0["train_loss"] as! NSNumber).doubleValue }
        // Chance is ln 10 = 2.30 and 90% error; after 300 steps (2 epochs of 10k images) ResNet-8
        // is far below both.
        #expect(losses.first! > 1.9)
        #expect(losses.last! < 0.75 * losses.first!, "train loss went \(losses.first!) -> \(losses.last!)")
        let testError = try #require(summary.lastEvaluation).error
        #expect(testError < 62, "test error \(testError)%")
        #expect(records.last!["test_error_exact1000"] != nil)
        #expect(FileManager.default.fileExists(atPath: run + "/checkpoints/step-00000300.ckpt"))
    }
}
