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

        var x = images
        for layer in model.body.layers {
            guard let block = layer as? ResidualBlock else {
                x = try layer.forward(x, mode: .inference)
                continue
            }
            let h = try block.firstNorm.forward(try block.first.forward(x, mode: .inference), mode: .inference)
            let branch = try block.secondNorm.forward(try block.second.forward(h, mode: .inference), mode: .inference)
            guard block.residual else { x = branch; continue }
            let y = Tensor(shape: branch.shape)
            OptionAShortcut.addThenReLU(branch: branch, shortcut: x, into: y, pool: pool)
            x = y
        }
        #expect(fused == x.toArray())
        #expect(fused.allSatisfy { $0.isFinite })
    }
}
