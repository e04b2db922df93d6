import Layers
import Models
import TensorCore
import Testing

@Suite struct ArchitectureTests {
    /// The paper's Table 6 networks: 0.27M, 0.46M, 0.66M, 0.85M and 1.7M parameters.
    static let expectedParameters = [20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962]

    @Test(arguments: Architecture.paperDepths, [true, false])
    func parameterCountsMatchThePaper(depth: Int, residual: Bool) throws {
        let architecture = try Architecture(depth: depth, residual: residual)
        #expect(architecture.parameterCount == Self.expectedParameters[depth])
        #expect(architecture.weightedLayers == depth)
        // The built network reserves exactly what the architecture counts.
        let model = ResNet(architecture, seed: 0, pool: .serial)
        #expect(model.store.parameterCount == architecture.parameterCount)
    }

    @Test func resNet20MultiplyAccumulates() throws {
        #expect(try Architecture(depth: 20).macsPerImage == 40_551_040)
    }

    @Test(arguments: Architecture.paperDepths)
    func macsGrowByTwoBlocksOfEachStage(depth: Int) throws {
        // Each extra block per stage adds two 3x3 convolutions at each of the three resolutions,
        // all with the same cost: 2 * 3 * (32*32*16*16*9) = 14,155,776 MACs.
        let n = (depth - 2) / 6
        #expect(try Architecture(depth: depth).macsPerImage == 40_551_040 + (n - 3) * 14_155_776)
    }

    @Test(arguments: [0, 7, 21, 19])
    func rejectsDepthsNotOfTheForm6nPlus2(depth: Int) {
        #expect(throws: Architecture.Error.self) { try Architecture(depth: depth) }
    }

    @Test func batchNormStateIsSeparateFromParameters() throws {
        let model = ResNet(try Architecture(depth: 20), seed: 0, pool: .serial)
        // 19 batch-norm layers with running mean and variance over 688 channels in total.
        #expect(model.store.stateCount == 2 * 688)
    }

    @Test func initializationDependsOnlyOnTheSeed() throws {
        let a = ResNet(try Architecture(depth: 8), seed: 5, pool: .serial)
        let b = ResNet(try Architecture(depth: 8), seed: 5, pool: ComputePool(threads: 2))
        let c = ResNet(try Architecture(depth: 8), seed: 6, pool: .serial)
        #expect(Array(a.store.values) == Array(b.store.values))
        #expect(Array(a.store.values) != Array(c.store.values))
    }
}

/// Backward takes its gradients from the model's arena and gives them back: a few tensors per
/// shape whatever the depth, and no growth from one step to the next.
struct GradientArenaTests {
    @Test func gradientBuffersAreSharedAndReturned() throws {
        for depth in [8, 20] {
            let model = ResNet(try Architecture(depth: depth, residual: true), seed: 1, pool: ComputePool(threads: 2))
            let images = Tensor(shape: [4, 32, 32, 3], values: (0..<(4 * 32 * 32 * 3)).map { Float($0 % 7) / 7 - 0.5 })
            let logitsGradient = Tensor(shape: [4, 10], values: (0..<40).map { Float($0 % 5) / 10 - 0.2 })
            var counts: [Int] = []
            for _ in 0..<3 {
                _ = try model.forward(images, mode: .training)
                try model.backward(logitsGradient)
                counts.append(model.store.gradientBuffers.allocatedCount)
            }
            #expect(counts[1] == counts[0] && counts[2] == counts[0], "depth \(depth): \(counts)")
            // Three activation shapes, at most four live gradients of one shape in a block.
            #expect(counts[0] <= 12, "depth \(depth): \(counts[0]) gradient tensors")
        }
    }
}
