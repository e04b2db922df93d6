/// Geometry of a 3x3 convolution with padding 1 and no bias on NHWC tensors.
/// Weights are laid out `[ky][kx][inChannel][outChannel]`, so one tap's output channels are contiguous.
public struct Conv3x3Shape: Sendable, Equatable, CustomStringConvertible {
    public let batch: Int
    public let height: Int
    public let width: Int
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int

    public init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int, stride: Int) {
        precondition(stride == 1 || stride == 2, "only stride 1 and 2 are supported")
        precondition(outChannels % 16 == 0, "output channels must be a multiple of 16 (one SIMD16 vector)")
        precondition(inChannels <= zeroRow.count && outChannels <= zeroRow.count, "too many channels")
        self.batch = batch
        self.height = height
        self.width = width
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
    }

    public var outHeight: Int { (height - 1) / stride + 1 }
    public var outWidth: Int { (width - 1) / stride + 1 }
    public var weightCount: Int { 9 * inChannels * outChannels }
    public var inputShape: [Int] { [batch, height, width, inChannels] }
    public var outputShape: [Int] { [batch, outHeight, outWidth, outChannels] }
    /// Multiply-accumulates of one forward pass over the whole batch.
    public var macs: Int { batch * outHeight * outWidth * outChannels * 9 * inChannels }
    public var description: String {
        "\(batch)x\(height)x\(width)x\(inChannels) -> \(outChannels), stride \(stride)"
    }
}
