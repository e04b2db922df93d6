import Foundation
import Testing
import Training

@Suite struct ResumeTests {
    @Test func resumedRunEndsWithBitwiseIdenticalWeights() throws {
        let data = syntheticData()
        let configuration = smallConfiguration(iterations: 12)

        let reference = try Trainer(configuration: configuration, data: data, threads: 2, runDirectory: temporaryDirectory())
        let expected = try reference.run()
        #expect(expected.finished && expected.step == 12)

        // Interrupted after 7 steps (a checkpoint is written on stop), then resumed.
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var steps = 0
        let first = try Trainer(configuration: configuration, data: data, threads: 2, runDirectory: run)
        let partial = try first.run(shouldStop: {
            defer { steps += 1 }; return steps == 7
        })
        #expect(!partial.finished && partial.step == 7)
        let latest = try CheckpointDirectory(runDirectory: run).latestValid()
        #expect(latest.checkpoint.step == 7)
        let resumed = try Trainer(configuration: configuration, data: data, threads: 2, runDirectory: run, resume: latest.checkpoint)
        let final = try resumed.run()
        #expect(final.step == 12)
        #expect(final.parameterHash == expected.parameterHash)
        #expect(try resumed.checkpoint().momentum == reference.checkpoint().momentum)
        #expect(try resumed.checkpoint().state == reference.checkpoint().state)

        // The metrics file logs every step once, in order.
        let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let loggedSteps = try lines.map { line -> Int in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (object["step"] as! NSNumber).intValue
        }
        #expect(loggedSteps == [2, 4, 6, 8, 10, 12])
    }

    @Test func resumingFromAnOlderPeriodicCheckpointAlsoMatches() throws {
        let data = syntheticData()
        let configuration = smallConfiguration(iterations: 12)
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let full = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: run).run()
        let step5 = try CheckpointDirectory.read(run + "/checkpoints/step-00000005.ckpt")
        let resumed = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: temporaryDirectory(), resume: step5)
        #expect(try resumed.run().parameterHash == full.parameterHash)
    }

    /// The progress line's and summary's best test error covers the whole run: a resumed run takes
    /// the evaluations logged before its checkpoint into account, so even a run resumed from its
    /// final checkpoint (no step left, no new evaluation) reports the uninterrupted run's best.
    @Test func resumedRunReportsTheBestTestErrorOfTheWholeRun() throws {
        let data = syntheticData()
        let configuration = smallConfiguration(iterations: 12)
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let full = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: run).run()
        let best = try #require(full.bestTestError)

        let checkpoints = CheckpointDirectory(runDirectory: run)
        let final = try checkpoints.latestValid().checkpoint
        #expect(final.step == 12)
        let finished = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: run, resume: final)
        #expect(try finished.run().bestTestError == best)

        // Resumed after the evaluations at steps 4 and 8: only step 12's is new.
        let step10 = try CheckpointDirectory.read(run + "/checkpoints/step-00000010.ckpt")
        let resumed = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: run, resume: step10)
        #expect(try resumed.run().bestTestError == best)
    }

    @Test func threadCountDoesNotChangeTheResult() throws {
        let data = syntheticData()
        let configuration = smallConfiguration(iterations: 6)
        let one = try Trainer(configuration: configuration, data: data, threads: 1, runDirectory: nil).run()
        let two = try Trainer(configuration: configuration, data: data, threads: 2, runDirectory: nil).run()
        #expect(one.parameterHash == two.parameterHash)
    }

    @Test func checkpointOfAnotherModelIsRefused() throws {
        let data = syntheticData()
        let small = try Trainer(configuration: smallConfiguration(iterations: 1), data: data, threads: 1, runDirectory: nil)
        var other = smallConfiguration(iterations: 1)
        other.depth = 14
        #expect(throws: CheckpointError.self) {
            try Trainer(configuration: other, data: data, threads: 1, runDirectory: nil, resume: try small.checkpoint())
        }
    }
}
