import CIFAR
import Cluster
import Foundation
import TensorCore
import Testing
import Training
import Transport

/// Control payloads with random damage must decode to a message or throw `TransportError`:
/// never crash. Also the test-hook parser for fault plans.
struct ProtocolFuzzTests {
    @Test func mutatedControlPayloadsNeverCrash() throws {
        func payload(_ json: String) -> [UInt8] {
            withUnsafeBytes(of: UInt32(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8)
        }
        let sample = #"{"index":3,"augmentation":{"cropX":1,"cropY":6,"flip":true}}"#
        let payloads = [
            payload(#"{"step":4,"learningRate":0.1,"globalBatch":128,"samples":[\#(sample),\#(sample)],"reportHash":true}"#),
            payload(#"{"workerID":"w","token":"0123456789abcdef0123456789abcdef","waiting":true}"#),
            payload(#"{"completedSteps":9,"parameterHash":"abc"}"#),
            payload(#"{"split":"test","start":0,"end":10}"#),
        ]
        // The unmutated payloads are valid messages.
        _ = try ControlPayload.decode(ControlMessage.Step.self, from: payloads[0], source: "sample")
        _ = try ControlPayload.decode(ControlMessage.Evaluate.self, from: payloads[3], source: "sample")
        // Seeded, so a failure is reproducible: RESNET_DDP_FUZZ_SEED=N repeats run N.
        let seed = UInt64(ProcessInfo.processInfo.environment["RESNET_DDP_FUZZ_SEED"] ?? "") ?? 20_261_202
        var rng = SplitMix64(seed: seed)
        var decoded = 0, rejected = 0
        let count = Int(ProcessInfo.processInfo.environment["RESNET_DDP_FUZZ_FRAMES"] ?? "") ?? 4000
        for i in 0..<count {
            var bytes = payloads[i % payloads.count]
            for _ in 0..<Int.random(in: 1...3, using: &rng) where !bytes.isEmpty {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            do {
                switch i % payloads.count {
                case 0: _ = try ControlPayload.decode(ControlMessage.Step.self, from: bytes, source: "fuzz")
                case 1: _ = try ControlPayload.decode(ControlMessage.Heartbeat.self, from: bytes, source: "fuzz")
                case 2: _ = try ControlPayload.decode(ControlMessage.Ready.self, from: bytes, source: "fuzz")
                default: _ = try ControlPayload.decode(ControlMessage.Evaluate.self, from: bytes, source: "fuzz")
                }
                decoded += 1
            } catch is TransportError {
                rejected += 1
            }
        }
        // Mostly rejected: a decoder that accepted damaged payloads would not reach this.
        #expect(rejected > count / 2, "seed \(seed): \(rejected) of \(count) rejected")
        #expect(decoded > 0, "seed \(seed): no damaged payload decoded (mutations too strong to test acceptance)")
    }

    @Test func faultPlans() throws {
        let plan = try FaultPlan(parsing: "kill@12:ring:3")
        #expect(plan.action == .kill && plan.step == 12 && plan.point == .ringSend && plan.ringSend == 3)
        #expect(try FaultPlan(parsing: "stop@2").point == .compute)
        #expect(try FaultPlan(parsing: "hang@5:result").point == .afterResult)
        for bad in ["kill", "boom@3", "kill@0", "kill@3:ring", "kill@3:ring:0", "kill@3:later"] {
            #expect(throws: TransportError.self, "\(bad)") { try FaultPlan(parsing: bad) }
        }
    }
}
