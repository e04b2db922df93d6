import TensorCore

/// The paper's augmentation: pad 4 zero pixels on each side, take a random 32x32 crop, and flip
/// horizontally with probability 1/2. The choice for image `index` in epoch `epoch` depends only
/// on (seed, epoch, index): not on batch layout, sharding or thread count.
public struct Augmentation: Sendable, Equatable, Codable {
    public static let padding = 4
    /// Crop origin in the padded 40x40 image, 0...8 each.
    public let cropX: Int
    public let cropY: Int
    public let flip: Bool

    public init(cropX: Int, cropY: Int, flip: Bool) {
        self.cropX = cropX
        self.cropY = cropY
        self.flip = flip
    }

    public static let none = Augmentation(cropX: padding, cropY: padding, flip: false)

    public static func draw(seed: UInt64, epoch: Int, index: Int) -> Augmentation {
        var rng = SplitMix64.stream(seed, 0xA06, UInt64(epoch), UInt64(index))
        let r = rng.next()
        let span = UInt64(2 * padding + 1)
        return Augmentation(cropX: Int(r % span), cropY: Int((r / span) % span), flip: (r >> 32) & 1 == 1)
    }
}
