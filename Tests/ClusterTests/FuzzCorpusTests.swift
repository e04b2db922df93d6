import Foundation
import FuzzTargets
import Models
import TensorCore
import Testing
import Training

/// The libFuzzer targets (scripts/fuzz) without the sanitizer build: their seeds are accepted,
/// the committed corpus in Fuzz/Corpus replays without a finding, and seeded mutations of it do
/// too. A crash found by scripts/fuzz goes into the corpus with its fix, and stays tested here.
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus")

    @Test(arguments: FuzzTarget.allCases)
    func corpusReplaysWithoutFindings(target: FuzzTarget) throws {
        let seeds = try target.seeds()
        // A valid safetensors input is a whole model (300 KB): the test below runs one.
        if target != .safetensors { #expect(try target.run(seeds[0]), "\(target): its first seed must be a valid input") }
        let directory = Self.corpus.appendingPathComponent(target.rawValue)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files.count >= seeds.count, "\(target): Fuzz/Corpus/\(target) is missing its seeds (scripts/fuzz --seeds)")
        var inputs = try files.map { [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))) }
        // A stale corpus (e.g. frames of an older protocol version) would only exercise the rejections.
        if target != .safetensors, let first = files.firstIndex(of: "seed-0") {
            #expect(try target.run(inputs[first]), "\(target): the committed seed-0 is no longer valid (scripts/fuzz --seeds)")
        }
        // Seeded mutations (RESNET_DDP_FUZZ_SEED repeats a run): flips, cuts and insertions.
        let seed = UInt64(ProcessInfo.processInfo.environment["RESNET_DDP_FUZZ_SEED"] ?? "") ?? 20_261_203
        var rng = SplitMix64(seed: seed)
        for index in 0..<2000 {
            var bytes = inputs[index % files.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case 1: bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            inputs.append(bytes)
        }
        var accepted = 0
        for (index, input) in inputs.enumerated() {
            do {
                if try target.run(input) { accepted += 1 }
            } catch {
                Issue.record("\(target), input \(index) (seed \(seed)): \(error)")
            }
        }
        #expect(accepted < inputs.count, "\(target): no mutation was refused")
    }

    /// A whole exported model goes through the safetensors target's import path.
    @Test func exportedModelIsAcceptedBySafeTensorsTarget() throws {
        let architecture = try Architecture(depth: 8)
        let state = ModelState(
            parameters: (0..<architecture.parameterCount).map { Float($0 % 13) / 13 },
            momentum: [Float](repeating: 0, count: architecture.parameterCount),
            state: [Float](repeating: 1, count: architecture.stateCount))
        let tensors = WeightsFile.tensors(
            state, architecture: architecture, steps: 5,
            meanImage: [Float](repeating: 0.5, count: Architecture.imageSize * Architecture.imageSize * 3))
        let file = [UInt8](SafeTensors.encode(tensors, metadata: [:]))
        #expect(try FuzzTarget.safetensors.run(file))
        #expect(try !FuzzTarget.safetensors.run(Array(file.dropLast(4))))
    }
}
