import Cluster
import Foundation
import TestSupport
import Testing
import Training
import Transport

/// What a worker accepts from its coordinator: well-formed setups and steps with hostile fields
/// are refused naming the field (they used to trap: world size 0, a missing ring endpoint,
/// absurd state counts, an empty shard, a crop outside the padded image).
struct CommandValidationTests {
    static let configuration: TrainingConfiguration = {
        var configuration = TrainingConfiguration()
        configuration.depth = 8
        configuration.iterations = 12
        return configuration
    }()

    /// A valid setup of ResNet-8 for rank 0 of 1, with `change` applied to its JSON fields.
    static func setupJSON(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        let architecture = try configuration.architecture()
        let encodedConfiguration = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration))
        var fields: [String: Any] = [
            "nextStep": 0, "rank": 0, "worldSize": 1, "configuration": encodedConfiguration, "batchNorm": "sync",
            "ringEndpoints": ["tcp://127.0.0.1:5000"], "parameterCount": architecture.parameterCount,
            "stateCount": architecture.stateCount, "checkEvery": 50,
        ]
        change(&fields)
        return fields
    }

    static func setup(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> ControlMessage.Setup {
        try JSONDecoder().decode(ControlMessage.Setup.self, from: JSONSerialization.data(withJSONObject: setupJSON(change)))
    }

    static func stepJSON(_ change: (inout [String: Any]) -> Void = { _ in }) -> [String: Any] {
        let sample: [String: Any] = ["index": 3, "augmentation": ["cropX": 1, "cropY": 8, "flip": true]]
        var fields: [String: Any] = ["step": 0, "learningRate": 0.1, "globalBatch": 128, "samples": [sample, sample], "reportHash": false]
        change(&fields)
        return fields
    }

    static func step(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> ControlMessage.Step {
        try JSONDecoder().decode(ControlMessage.Step.self, from: JSONSerialization.data(withJSONObject: stepJSON(change)))
    }

    @Test func setupFieldsAreChecked() throws {
        #expect(try Self.setup().problem(current: nil) == nil)
        #expect(try Self.setup().problem(current: Self.configuration) == nil)
        // Every step done: a new ring for the final evaluation starts "at" the step after the last.
        #expect(try Self.setup { $0["nextStep"] = 12 }.problem(current: nil) == nil)
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("worldSize 0", { $0["worldSize"] = 0 }),
            ("worldSize -2", { $0["worldSize"] = -2 }),
            ("worldSize 5000", { $0["worldSize"] = 5000 }),
            // More ranks than the collectives' tag space, though no more than the images of a batch.
            (
                "worldSize 200 must be 1-128",
                { fields in
                    var configuration = fields["configuration"] as! [String: Any]
                    configuration["batchSize"] = 512
                    fields["configuration"] = configuration
                    fields["worldSize"] = 200
                }
            ),
            ("rank 1 must be 0-0", { $0["rank"] = 1 }),
            ("rank -1", { $0["rank"] = -1 }),
            (
                "ringEndpoints has 1 entries for worldSize 3",
                {
                    $0["worldSize"] = 3; $0["rank"] = 2
                }
            ),
            ("ringEndpoints entry 'http://x'", { $0["ringEndpoints"] = ["http://x"] }),
            ("ringKeys has 2 entries", { $0["ringKeys"] = ["a", "b"] }),
            ("nextStep -1", { $0["nextStep"] = -1 }),
            ("nextStep 13 must be 0-12", { $0["nextStep"] = 13 }),
            ("parameterCount 2305843009213693951", { $0["parameterCount"] = Int.max / 4 }),
            ("stateCount -1", { $0["stateCount"] = -1 }),
            ("checkEvery 0", { $0["checkEvery"] = 0 }),
            (
                "configuration: --batch-size",
                { fields in
                    var configuration = fields["configuration"] as! [String: Any]
                    configuration["batchSize"] = 0
                    fields["configuration"] = configuration
                }
            ),
            (
                "the evaluation batch size must be 1-10000",
                { fields in
                    var configuration = fields["configuration"] as! [String: Any]
                    configuration["evalBatchSize"] = 0
                    fields["configuration"] = configuration
                }
            ),
            (
                "configuration: --depth 9",
                { fields in
                    var configuration = fields["configuration"] as! [String: Any]
                    configuration["depth"] = 9
                    fields["configuration"] = configuration
                }
            ),
        ]
        for (expected, change) in cases {
            let problem = try Self.setup(change).problem(current: nil)
            #expect(problem?.contains(expected) == true, "\(expected): \(problem ?? "accepted")")
        }
        var other = Self.configuration
        other.seed = 2
        #expect(try Self.setup().problem(current: other)?.contains("configuration differs") == true)
    }

    @Test func stepFieldsAreChecked() throws {
        let configuration = Self.configuration
        #expect(try Self.step().problem(configuration: configuration, trainImages: 50_000) == nil)
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("samples has 0 entries", { $0["samples"] = [Any]() }),
            ("globalBatch 0", { $0["globalBatch"] = 0 }),
            ("globalBatch 129", { $0["globalBatch"] = 129 }),
            ("samples has 2 entries, must be 1-1", { $0["globalBatch"] = 1 }),
            ("learningRate -1", { $0["learningRate"] = -1.0 }),
            ("samples names image 50000", { $0["samples"] = [["index": 50_000, "augmentation": ["cropX": 0, "cropY": 0, "flip": false]]] }),
            ("samples names image -7", { $0["samples"] = [["index": -7, "augmentation": ["cropX": 0, "cropY": 0, "flip": false]]] }),
            ("crop origin (9, 0)", { $0["samples"] = [["index": 1, "augmentation": ["cropX": 9, "cropY": 0, "flip": false]]] }),
            ("crop origin (0, -1)", { $0["samples"] = [["index": 1, "augmentation": ["cropX": 0, "cropY": -1, "flip": false]]] }),
        ]
        for (expected, change) in cases {
            let problem = try Self.step(change).problem(configuration: configuration, trainImages: 50_000)
            #expect(problem?.contains(expected) == true, "\(expected): \(problem ?? "accepted")")
        }
    }
}

extension CommandValidationTests {
    @Test func evaluateFieldsAreChecked() throws {
        func evaluate(_ start: Int, _ end: Int) throws -> ControlMessage.Evaluate {
            try JSONDecoder().decode(ControlMessage.Evaluate.self, from: Data(#"{"split":"test","start":\#(start),"end":\#(end)}"#.utf8))
        }
        #expect(try evaluate(0, 10_000).problem(setSize: 10_000) == nil)
        #expect(try evaluate(5, 5).problem(setSize: 10_000) == nil)
        for (start, end) in [(-1, 10), (11, 10), (0, 10_001)] {
            #expect(try evaluate(start, end).problem(setSize: 10_000)?.contains("evaluation range \(start)..<\(end)") == true)
        }
        #expect(try evaluate(0, 1).problem(setSize: nil)?.contains("does not exist") == true)
    }
}

/// What the coordinator accepts from a member: counts that do not fit the request are refused
/// naming the field (they went into the metrics, or trapped in the sums).
struct ReplyValidationTests {
    static func decode<T: Decodable>(_: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    @Test func resultFieldsAreChecked() throws {
        func result(_ correct: Int, _ images: Int, _ nonFinite: Int, _ hash: String) throws -> ControlMessage.Result {
            try Self.decode(
                ControlMessage.Result.self,
                #"{"statistics":{"lossSumFixed":-5,"correct":\#(correct),"images":\#(images),"#
                    + #""nonFinite":\#(nonFinite)},"parameterHash":\#(hash)}"#)
        }
        #expect(try result(3, 64, 0, "null").problem(images: 64, hashRequested: false) == nil)
        #expect(try result(64, 64, 64, #""0123456789abcdef""#).problem(images: 64, hashRequested: true) == nil)
        let cases: [(ControlMessage.Result, Bool, String)] = [
            (try result(3, 65, 0, "null"), false, "statistics.images 65 for a shard of 64"),
            (try result(-1, 64, 0, "null"), false, "statistics.correct -1"),
            (try result(Int.max, 64, 0, "null"), false, "statistics.correct 9223372036854775807"),
            (try result(0, 64, 65, "null"), false, "statistics.nonFinite 65"),
            (try result(0, 64, 0, "null"), true, "parameterHash is missing"),
            (try result(0, 64, 0, #""ab""#), false, "parameterHash was not asked for"),
            (try result(0, 64, 0, #""xyz""#), true, "parameterHash must be 1-16 hex digits"),
            (try result(0, 64, 0, #""0123456789abcdef0""#), true, "parameterHash must be 1-16 hex digits"),
        ]
        for (result, requested, expected) in cases {
            let problem = result.problem(images: 64, hashRequested: requested)
            #expect(problem?.contains(expected) == true, "\(expected): \(problem ?? "accepted")")
        }
        #expect(try Self.decode(ControlMessage.Ready.self, #"{"completedSteps":-1,"parameterHash":"ab"}"#).problem() != nil)
        #expect(try Self.decode(ControlMessage.Ready.self, #"{"completedSteps":7,"parameterHash":"ab"}"#).problem() == nil)
    }

    @Test func evaluationFieldsAreChecked() throws {
        // Images 990..<1010 of a set: 10 of them among the first 1,000; 3 wrong, 1 of those early.
        var valid = Evaluation()
        valid.images = 20
        valid.wrong = 3
        valid.imagesFirst1000 = 10
        valid.wrongFirst1000 = 1
        valid.confusion[2][2] = 17
        valid.confusion[2][5] = 3
        #expect(valid.problem(range: 990..<1010) == nil)
        let cases: [(String, (inout Evaluation) -> Void)] = [
            ("images 21 for a range of 20", { $0.images = 21 }),
            ("wrong -1", { $0.wrong = -1 }),
            ("imagesFirst1000 20 for a range holding 10", { $0.imagesFirst1000 = 20 }),
            ("wrongFirst1000 4 must be 0-3", { $0.wrongFirst1000 = 4 }),
            ("confusion must be 10 x 10", { $0.confusion = [] }),
            ("confusion must be 10 x 10", { $0.confusion[9] = [1] }),
            (
                "confusion entries must be 0-20",
                {
                    $0.confusion[0][0] = -1; $0.confusion[2][2] = 18
                }
            ),
            ("confusion sums to 21 images", { $0.confusion[1][1] = 1 }),
            (
                "confusion sums to 20 images and 2 wrong",
                {
                    $0.confusion[2][5] = 2; $0.confusion[2][2] = 18
                }
            ),
        ]
        for (expected, change) in cases {
            var evaluation = valid
            change(&evaluation)
            let problem = evaluation.problem(range: 990..<1010)
            #expect(problem?.contains(expected) == true, "\(expected): \(problem ?? "accepted")")
        }
    }
}

/// A spoofed coordinator (a ROUTER in this process) sends real worker processes well-formed,
/// correctly checksummed setups and steps with hostile fields: each worker exits with status 1
/// and an error naming the field, never by a signal.
@Suite(.serialized, .enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
struct SpoofedCoordinatorTests {
    /// Starts a worker against a ROUTER of this process, waits for its hello and sends `setup`
    /// (and, after its ready, `step`). Returns the worker's exit status, how it ended and its output.
    func run(setup: [String: Any], step: [String: Any]? = nil) throws -> (Int32, Process.TerminationReason, String) {
        let context = try ZMQContext()
        let router = try ZMQSocket(context, kind: .router, lingerMilliseconds: 0)
        defer { router.close() }
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let worker = try ToolProcess([
            "worker", "--coordinator", endpoint, "--data", realDataDirectory!, "--threads", "1",
            "--timeout", "60",
        ])
        defer { if worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) } }
        let runID: UInt64 = 0x5EED
        func receive(_ kind: MessageKind) throws -> [UInt8] {
            let deadline = Date(timeIntervalSinceNow: 60)
            while Date() < deadline {
                guard let frames = try router.receive(timeout: 0.5), frames.count == 2 else { continue }
                if let message = try? WireMessage.decode(frames[1], from: "worker"), message.header.kind == kind { return frames[0] }
            }
            throw TransportError.timeout("the worker's \(kind)", seconds: 60)
        }
        func send(_ kind: MessageKind, _ fields: [String: Any], to identity: [UInt8], sequence: UInt32) throws {
            let json = try JSONSerialization.data(withJSONObject: fields)
            let payload = withUnsafeBytes(of: UInt32(json.count).littleEndian) { Array($0) } + Array(json)
            let header = WireHeader(kind: kind, runID: runID, epoch: 1, sequence: sequence, sender: -1)
            try router.send([identity, WireMessage(header, payload: payload).encoded()], timeout: 10, to: "worker")
        }
        let identity = try receive(.hello)
        try send(.setup, setup, to: identity, sequence: 1)
        if let step {
            _ = try receive(.ready)
            try send(.step, step, to: identity, sequence: 2)
        }
        let status = worker.wait(seconds: 60)
        return (status, worker.process.terminationReason, worker.output)
    }

    @Test func hostileSetupsAndStepsEndTheWorkerWithAnError() throws {
        let setups: [(String, (inout [String: Any]) -> Void)] = [
            ("worldSize 0", { $0["worldSize"] = 0 }),
            (
                "ringEndpoints has 1 entries for worldSize 2",
                {
                    $0["worldSize"] = 2; $0["rank"] = 1
                }
            ),
            ("parameterCount 2305843009213693951", { $0["parameterCount"] = Int.max / 4 }),
        ]
        for (expected, change) in setups {
            let (status, reason, output) = try run(setup: CommandValidationTests.setupJSON(change))
            #expect(reason == .exit && status == 1, "\(expected): status \(status) \(reason):\n\(output)")
            #expect(output.contains(expected), "\(output)")
        }
        let steps: [(String, (inout [String: Any]) -> Void)] = [
            ("samples has 0 entries", { $0["samples"] = [Any]() }),
            ("crop origin (4000, 0)", { $0["samples"] = [["index": 1, "augmentation": ["cropX": 4000, "cropY": 0, "flip": false]]] }),
        ]
        for (expected, change) in steps {
            let (status, reason, output) = try run(setup: CommandValidationTests.setupJSON(), step: CommandValidationTests.stepJSON(change))
            #expect(reason == .exit && status == 1, "\(expected): status \(status) \(reason):\n\(output)")
            #expect(output.contains(expected), "\(output)")
        }
    }
}
