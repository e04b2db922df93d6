import CIFAR
import TensorCore
import Testing

@Suite struct AugmentationTests {
    @Test func drawDependsOnlyOnSeedEpochAndIndex() {
        #expect(Augmentation.draw(seed: 3, epoch: 2, index: 77) == Augmentation.draw(seed: 3, epoch: 2, index: 77))
        let draws = (0..<2000).map { Augmentation.draw(seed: 3, epoch: 0, index: $0) }
        #expect(Set(draws.map(\.cropX)) == Set(0...8))
        #expect(Set(draws.map(\.cropY)) == Set(0...8))
        let flips = draws.filter(\.flip).count
        #expect(flips > 900 && flips < 1100)
        #expect(draws != (0..<2000).map { Augmentation.draw(seed: 3, epoch: 1, index: $0) })
        #expect(draws != (0..<2000).map { Augmentation.draw(seed: 4, epoch: 0, index: $0) })
    }

    private func image() -> LabeledImages {
        LabeledImages(pixels: (0..<3072).map { UInt8($0 % 251) }, labels: [1])
    }

    private func assemble(_ augmentation: Augmentation?, mean: [Float]) -> Tensor {
        let output = Tensor(shape: [1, 32, 32, 3])
        BatchAssembler(meanImage: mean).fill(
            output, from: image(), indices: [0],
            augmentations: augmentation.map { [$0] }, pool: .serial)
        return output
    }

    @Test func identitySubtractsThePerPixelMean() {
        let mean = (0..<3072).map { Float($0) / 10_000 }
        let out = assemble(nil, mean: mean)
        for i in [0, 1, 2, 1000, 3071] {
            #expect(abs(out.pointer[i] - (Float(i % 251) / 255 - mean[i])) < 1e-6)
        }
    }

    @Test func flipMirrorsColumns() {
        let zero = [Float](repeating: 0, count: 3072)
        let plain = assemble(Augmentation.none, mean: zero), flipped = assemble(Augmentation(cropX: 4, cropY: 4, flip: true), mean: zero)
        for (y, x, c) in [(0, 0, 0), (5, 3, 1), (31, 31, 2)] {
            #expect(flipped.pointer[(y * 32 + x) * 3 + c] == plain.pointer[(y * 32 + 31 - x) * 3 + c])
        }
    }

    @Test func cropShiftsAndPadsWithZeros() {
        let zero = [Float](repeating: 0, count: 3072)
        let plain = assemble(Augmentation.none, mean: zero), shifted = assemble(Augmentation(cropX: 0, cropY: 8, flip: false), mean: zero)
        // Origin (0, 8) in the padded image: output (y, x) shows input (y + 4, x - 4).
        #expect(shifted.pointer[(0 * 32 + 10) * 3] == plain.pointer[(4 * 32 + 6) * 3])
        #expect(shifted.pointer[(3 * 32 + 2) * 3 + 1] == 0)  // x - 4 < 0: padding
        #expect(shifted.pointer[(30 * 32 + 10) * 3 + 2] == 0)  // y + 4 > 31: padding
    }

    @Test func samplerCoversEveryImageOncePerEpochAndCutsEqualBatches() {
        var sampler = EpochSampler(seed: 9, imageCount: 100, batchSize: 32)
        let steps = (0..<7).map { sampler.batch(step: $0) }  // 224 samples: epochs 0, 1 and part of 2
        #expect(steps.allSatisfy { $0.count == 32 })
        let all = steps.flatMap { $0 }
        #expect(Set(all.prefix(100).map(\.index)) == Set(0..<100) && all.prefix(100).allSatisfy { $0.epoch == 0 })
        #expect(Set(all[100..<200].map(\.index)) == Set(0..<100) && all[100..<200].allSatisfy { $0.epoch == 1 })
        #expect(all.prefix(100).map(\.index) != all[100..<200].map(\.index))
        // A batch depends only on (seed, step), not on what was asked before.
        var fresh = EpochSampler(seed: 9, imageCount: 100, batchSize: 32)
        #expect(fresh.batch(step: 5) == steps[5])
        #expect(sampler.epochs(afterSteps: 25) == 8)
    }
}
