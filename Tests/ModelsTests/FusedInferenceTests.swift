import Layers
import Models
import TensorCore
import Testing

/// Inference runs each convolution with its batch norm, identity shortcut and ReLU fused; the
/// logits must be bitwise those of the layers run one after another.
@Suite struct FusedInferenceTests {
    @Test(arguments: [true, false])
    func fusedLogitsEqualLayerByLayer(residual: Bool) throws {
        let pool = ComputePool(threads: 2)
        let model = ResNet(try Architecture(depth: 14, residual: residual), seed: 4, pool: pool)
        var rng = SplitMix64(seed: 21)
        let batch = 5
        let images = Tensor(shape: [batch, 32, 32, 3], values: (0..<(batch * 3072)).map { _ in rng.nextUnitFloat() * 2 - 1 })
        // Running statistics and affine parameters away from their initial 0 / 1.
        _ = try model.forward(images, mode: .training)
        for norm in model.batchNorms {
            for view in [norm.scale, norm.shift] {
                let values = model.store.pointer(view)
                for c in 0..<view.count { values[c] += rng.nextUnitFloat() - 0.5 }
            }
        }
        let fused = try model.forward(images, mode: .inference).toArray()

        // The same net layer by layer, each convolution and batch norm on its own.
        func unfused(_ unit: ConvolutionNorm, _ x: Tensor) throws -> Tensor {
            try unit.norm.forward(try unit.convolution.forward(x, mode: .inference), mode: .inference)
        }
        var x = try unfused(model.stem, images)
        for block in model.blocks {
            let h = try unfused(block.first, x)
            let branch = try unfused(block.second, h)
            guard block.residual else { x = branch; continue }
            let y = Tensor(shape: branch.shape)
            OptionAShortcut.addThenReLU(branch: branch, shortcut: x, into: y, pool: pool)
            x = y
        }
        x = try model.classifier.forward(try model.pool.forward(x, mode: .inference), mode: .inference)
        #expect(fused == x.toArray())
        #expect(fused.allSatisfy { $0.isFinite })
    }
}
