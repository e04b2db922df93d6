import Models
import Testing
import Training

@Suite struct BenchmarkTests {
    /// The profile accounts for every convolution pass and batch-norm layer of a step, and its
    /// operations together take no more than the measured steps.
    @Test func profileCoversTheStep() throws {
        let result = try Benchmark.run(
            try Architecture(depth: 8), kind: .training, threads: 2, batch: 16, warmup: 1, steps: 3,
            profile: true)
        let names = result.profile.map(\.name)
        for pass in ["forward", "backward-data + bn sums", "backward-weights"] {
            #expect(names.contains("conv 16->16/1 32x32 \(pass)"), "\(names)")
        }
        #expect(names.contains("conv 3->16/1 32x32 forward") && !names.contains("conv 3->16/1 32x32 backward-data"))
        // ResNet-8: 7 batch-norm layers, 4 fused with ReLU (stem + first of each block), and the
        // identity block's second one fused with its shortcut add and ReLU, whose gradient the
        // block's first convolution adds as it stores. Every stride-1 backward-data writes the sums
        // of the batch norm before it (the identity block's conv2 for its bn1, its conv1 for the
        // stem's); the stride-2 ones do not.
        let calls = Dictionary(uniqueKeysWithValues: result.profile.map { ($0.name, $0.entry.calls / result.timedSteps) })
        #expect(calls["batch norm + relu forward"] == 4 && calls["batch norm forward"] == 2)
        #expect(calls["batch norm + shortcut add + relu forward"] == 1 && calls["batch norm + shortcut add + relu backward"] == 1)
        #expect(calls["conv 16->16/1 32x32 backward-data + add + bn sums"] == 1 && calls["conv 16->16/1 32x32 backward-data + bn sums"] == 1)
        #expect(calls["conv 16->32/2 16x16 backward-data"] == 1 && calls["conv 32->32/1 16x16 backward-data + bn sums"] == 1)
        #expect(calls["shortcut add + relu forward"] == 2 && calls["shortcut add backward"] == 2)
        let profiled = result.profile.reduce(0) { $0 + $1.entry.seconds }
        #expect(profiled > 0 && profiled <= result.medianSeconds * Double(result.timedSteps) * 1.5)
    }
}
