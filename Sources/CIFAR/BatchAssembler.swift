import TensorCore

/// Turns images into the network's input: NHWC floats, pixel / 255 minus the per-pixel training
/// mean, with the augmentation applied (the padding is zero after mean subtraction).
public struct BatchAssembler: Sendable {
    public let meanImage: [Float]

    public init(meanImage: [Float]) {
        precondition(meanImage.count == CIFARFormat.pixelsPerImage, "mean image must have 3072 values")
        self.meanImage = meanImage
    }

    /// Writes `indices.count` images into `output` ([N, 32, 32, 3]).
    public func fill(
        _ output: Tensor, from images: LabeledImages, indices: [Int], augmentations: [Augmentation]?,
        pool: ComputePool
    ) {
        precondition(output.shape == [indices.count, 32, 32, 3], "batch tensor shape \(output.shape)")
        let side = CIFARFormat.side, pad = Augmentation.padding
        let scale: Float = 1 / 255
        let target = UncheckedSendable(output.pointer)
        images.pixels.withUnsafeBufferPointer { pixels in
            meanImage.withUnsafeBufferPointer { mean in
                let source = UncheckedSendable((pixels.baseAddress!, mean.baseAddress!))
                pool.forEach(indices.count) { slot in
                    let (pixels, mean) = source.value
                    let image = pixels + indices[slot] * CIFARFormat.pixelsPerImage
                    let a = augmentations?[slot] ?? .none
                    let out = target.value + slot * CIFARFormat.pixelsPerImage
                    for y in 0..<side {
                        let sy = y + a.cropY - pad
                        for x in 0..<side {
                            let sx = (a.flip ? side - 1 - x : x) + a.cropX - pad
                            let o = out + (y * side + x) * 3
                            if sy < 0 || sy >= side || sx < 0 || sx >= side {
                                o[0] = 0; o[1] = 0; o[2] = 0
                            } else {
                                let s = (sy * side + sx) * 3
                                o[0] = Float(image[s]) * scale - mean[s]
                                o[1] = Float(image[s + 1]) * scale - mean[s + 1]
                                o[2] = Float(image[s + 2]) * scale - mean[s + 2]
                            }
                        }
                    }
                }
            }
        }
    }
}
