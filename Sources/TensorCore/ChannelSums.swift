/// Two per-channel sums of every image of an NHWC batch, `sum f` and `sum g`, in Double, written
/// by `Conv3x3.addRowStatistics` or `Conv3x3GradientSums.addRow` (each row in Float, the rows in
/// Double); the per-image results are then combined exactly in fixed point, so nothing depends
/// on how images are split over threads or workers.
public struct ChannelSums {
    public let channels: Int
    public private(set) var perImage: UnsafeMutablePointer<Double>  // [image][2][channels]
    private var capacity = 0

    public init(channels: Int) {
        precondition(channels % 16 == 0, "channels must be a multiple of 16")
        self.channels = channels
        perImage = .allocate(capacity: 1)
    }

    public func deallocate() { perImage.deallocate() }

    /// `first(image) [c]` and `second(image) [c]` once written.
    public func first(_ image: Int) -> UnsafeMutablePointer<Double> { perImage + image * 2 * channels }
    public func second(_ image: Int) -> UnsafeMutablePointer<Double> { perImage + (image * 2 + 1) * channels }

    /// The per-image buffer for `batch` images.
    public mutating func reserve(batch: Int) -> UnsafeMutablePointer<Double> {
        if capacity < batch {
            perImage.deallocate()
            perImage = .allocate(capacity: batch * 2 * channels)
            capacity = batch
        }
        return perImage
    }

    /// Batch totals as wide fixed point at `scale` (see `FixedPoint.encodeWide`):
    /// `[hi, lo]` for each channel of f, then of g, then the image count. Decode with `decodeTotals`.
    public func totals(batch: Int, scale: Double) -> [Int64] {
        var totals = [Int64](repeating: 0, count: 4 * channels + 1)
        for n in 0..<batch {
            let s = first(n), q = second(n)
            for c in 0..<channels {
                let f = FixedPoint.encodeWide(s[c], scale: scale), g = FixedPoint.encodeWide(q[c], scale: scale)
                totals[2 * c] &+= f.hi
                totals[2 * c + 1] &+= f.lo
                totals[2 * (channels + c)] &+= g.hi
                totals[2 * (channels + c) + 1] &+= g.lo
            }
        }
        totals[4 * channels] = Int64(batch)
        return totals
    }

    /// (sum f per channel, sum g per channel, images) from (possibly all-reduced) `totals`.
    public func decodeTotals(_ totals: [Int64], scale: Double) -> (first: [Double], second: [Double], images: Int) {
        let value = { (v: Int) in FixedPoint.decodeWide(hi: totals[2 * v], lo: totals[2 * v + 1], scale: scale) }
        return ((0..<channels).map(value), (channels..<(2 * channels)).map(value), Int(totals[4 * channels]))
    }
}
