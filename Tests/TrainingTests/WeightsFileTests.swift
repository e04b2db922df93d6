import Foundation
import Layers
import Models
import TensorCore
import Testing
import Training

/// safetensors interop: a file that PyTorch's safetensors wrote from a ResNet-8 state_dict imports,
/// and our engine's eval-mode logits on 16 real test images match PyTorch's within 1e-4 (fixture by
/// `scripts/make-weights-fixture.py`); export -> import -> export is byte-identical; damaged and
/// lying files are refused with an error, never a crash.
struct WeightsFileTests {
    static func fixture(_ name: String) throws -> (tensors: [SafeTensors.Tensor], metadata: [String: String]) {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        return try SafeTensors.decode(Data(contentsOf: url), source: name)
    }

    static func floats(_ tensor: SafeTensors.Tensor?) throws -> [Float] {
        guard case .float32(let values) = try #require(tensor).values else { throw SafeTensorsError.mismatch("not F32") }
        return values
    }

    @Test(arguments: [1, 2])
    func pyTorchWeightsGivePyTorchLogits(threads: Int) throws {
        let (tensors, _) = try Self.fixture("resnet8-pytorch")
        #expect(try WeightsFile.depth(of: tensors) == 8)
        let architecture = try Architecture(depth: 8)
        let state = try WeightsFile.state(tensors, architecture: architecture)
        let model = ResNet(architecture, seed: 0, pool: ComputePool(threads: threads))
        model.store.values.baseAddress!.update(from: state.parameters, count: state.parameters.count)
        model.store.state.baseAddress!.update(from: state.state, count: state.state.count)
        let (io, _) = try Self.fixture("resnet8-pytorch-logits")
        let input = try Self.floats(io.first { $0.name == "input" }), expected = try Self.floats(io.first { $0.name == "logits" })
        let logits = try model.forward(Tensor(shape: [16, 32, 32, 3], values: input), mode: .inference).toArray()
        try #require(logits.count == expected.count)
        let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4, "largest logit difference \(worst)")
        // The same argmax everywhere: PyTorch's predictions are ours.
        for image in 0..<16 {
            let ours = logits[(image * 10)..<(image * 10 + 10)], theirs = expected[(image * 10)..<(image * 10 + 10)]
            #expect(ours.firstIndex(of: ours.max()!) == theirs.firstIndex(of: theirs.max()!))
        }
    }

    @Test func exportImportExportIsByteIdentical() throws {
        let architecture = try Architecture(depth: 14, residual: false)
        var rng = SplitMix64(seed: 5)
        let state = ModelState(
            parameters: (0..<architecture.parameterCount).map { _ in Float.random(in: -1...1, using: &rng) },
            momentum: [Float](repeating: 0, count: architecture.parameterCount),
            state: (0..<architecture.stateCount).map { _ in Float.random(in: 0.5...2, using: &rng) })
        let mean = (0..<3072).map { Float($0) / 3072 }
        let metadata = ["architecture": architecture.name, "residual": "false", "steps": "12"]
        let first = SafeTensors.encode(WeightsFile.tensors(state, architecture: architecture, steps: 12, meanImage: mean), metadata: metadata)
        let (tensors, readMetadata) = try SafeTensors.decode(first, source: "first")
        #expect(readMetadata == metadata)
        #expect(try WeightsFile.depth(of: tensors) == 14)
        let back = try WeightsFile.state(tensors, architecture: architecture)
        #expect(back == state)
        let meanBack = try Self.floats(tensors.first { $0.name == WeightsFile.inputMeanName })
        let again = SafeTensors.encode(
            WeightsFile.tensors(
                back, architecture: architecture, steps: 12,
                meanImage: (0..<3072).map { meanBack[($0 % 3) * 1024 + $0 / 3] }),
            metadata: readMetadata)
        #expect(again == first)
        // The wrong architecture is refused naming the tensor.
        #expect(throws: SafeTensorsError.self) { try WeightsFile.state(tensors, architecture: try Architecture(depth: 8)) }
        var missing = tensors
        missing.removeAll { $0.name == "layer2.1.bn1.running_var" }
        #expect { try WeightsFile.state(missing, architecture: architecture) } throws: {
            "\($0)".contains("needs tensor 'layer2.1.bn1.running_var'")
        }
        var extra = tensors
        extra.append(.init(name: "head.weight", shape: [1], values: .float32([0])))
        #expect { try WeightsFile.state(extra, architecture: architecture) } throws: { "\($0)".contains("'head.weight' is not part") }
    }

    @Test func damagedAndLyingFilesAreRefused() throws {
        let good = SafeTensors.encode(
            [
                .init(name: "a", shape: [2, 3], values: .float32([1, 2, 3, 4, 5, 6])),
                .init(name: "n", shape: [], values: .int64([7])),
            ], metadata: ["k": "v"])
        #expect(try SafeTensors.decode(good, source: "good").tensors.count == 2)
        func header(_ json: String, data: Int = 24) -> Data {
            var bytes = Data()
            bytes.appendLittleEndianForTest(UInt64(json.utf8.count))
            bytes.append(contentsOf: Array(json.utf8))
            bytes.append(Data(count: data))
            return bytes
        }
        let lies: [(String, Data)] = [
            ("too short", Data([1, 2, 3])),
            ("exceeds the file", header("{}").prefix(8) + Data([0x7B])),
            ("not a JSON object", header("[1,2]")),
            ("dtype F16", header(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, data: 4)),
            ("needs 24 bytes", header(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#)),
            ("outside the 24 data bytes", header(#"{"a":{"dtype":"F32","shape":[6],"data_offsets":[4,28]}}"#)),
            (
                "overlap or hole",
                header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}"#, data: 20)
            ),
            ("belong to no tensor", header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#)),
            ("too many", header(#"{"a":{"dtype":"F32","shape":[1073741824,1073741824,16],"data_offsets":[0,24]}}"#)),
            ("must be integers", header(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,24]}}"#)),
            ("__metadata__ must map strings", header(#"{"__metadata__":{"k":1}}"#, data: 0)),
        ]
        for (expected, file) in lies {
            #expect { try SafeTensors.decode(file, source: "lie") } throws: { "\($0)".contains(expected) }
        }
        // Seeded random damage to a real file: decoded or refused, never a crash.
        let real = SafeTensors.encode(
            WeightsFile.tensors(
                ModelState(
                    parameters: [Float](repeating: 0.5, count: try Architecture(depth: 8).parameterCount),
                    momentum: [], state: [Float](repeating: 1, count: try Architecture(depth: 8).stateCount)),
                architecture: try Architecture(depth: 8), steps: 3, meanImage: [Float](repeating: 0.4, count: 3072)), metadata: ["steps": "3"])
        let headerLength = Int(real.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var rng = SplitMix64(seed: 20_261_203)
        var refused = 0
        for _ in 0..<300 {
            var bytes = [UInt8](real)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<(8 + headerLength), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do { _ = try SafeTensors.decode(Data(bytes), source: "fuzz") } catch is SafeTensorsError { refused += 1 }
        }
        #expect(refused > 150, "\(refused) of 300 damaged headers refused")
    }
}

extension Data {
    mutating func appendLittleEndianForTest(_ value: UInt64) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
}
