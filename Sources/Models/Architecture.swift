/// The paper's CIFAR-10 networks (section 4.2) as data: a 3x3 stem with 16 filters, three stages
/// of n blocks at 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (two 3x3 convolutions per
/// block, stride 2 at the start of stages 2 and 3), global average pooling, a 10-way linear layer.
/// 6n + 2 weighted layers. The plain nets are the same without shortcuts.
public struct Architecture: Sendable, Equatable, Codable, CustomStringConvertible {
    public static let paperDepths = [20, 32, 44, 56, 110]
    public static let stageChannels = [16, 32, 64]
    public static let imageSize = 32
    public static let classes = 10

    public let depth: Int
    public let residual: Bool

    public enum Error: Swift.Error, CustomStringConvertible {
        case invalidDepth(Int)
        public var description: String {
            switch self {
            case .invalidDepth(let d):
                "depth \(d) is not of the form 6n+2 with n >= 1 (the paper uses 20, 32, 44, 56, 110)"
            }
        }
    }

    public init(depth: Int, residual: Bool = true) throws {
        guard depth >= 8, (depth - 2) % 6 == 0 else { throw Error.invalidDepth(depth) }
        self.depth = depth
        self.residual = residual
    }

    /// Blocks per stage.
    public var blocksPerStage: Int { (depth - 2) / 6 }
    public var name: String { "\(residual ? "ResNet" : "Plain")-\(depth)" }
    public var description: String { name }

    /// One 3x3 convolution of the network, with the size of its input map.
    public struct ConvolutionSpec: Sendable, Equatable {
        public let inChannels: Int
        public let outChannels: Int
        public let stride: Int
        public let inputSize: Int
        public var outputSize: Int { (inputSize - 1) / stride + 1 }
        public var parameters: Int { 9 * inChannels * outChannels }
        public var macs: Int { outputSize * outputSize * outChannels * 9 * inChannels }
    }

    /// The stride of a block's first convolution: 2 where a stage after the first begins.
    public static func stride(stage: Int, block: Int) -> Int { (stage > 0 && block == 0) ? 2 : 1 }

    /// Every convolution in forward order: the stem, then two per block.
    public var convolutions: [ConvolutionSpec] {
        var specs = [ConvolutionSpec(inChannels: 3, outChannels: 16, stride: 1, inputSize: Self.imageSize)]
        var channels = 16, size = Self.imageSize
        for (stage, width) in Self.stageChannels.enumerated() {
            for block in 0..<blocksPerStage {
                let stride = Self.stride(stage: stage, block: block)
                specs.append(ConvolutionSpec(inChannels: channels, outChannels: width, stride: stride, inputSize: size))
                size = (size - 1) / stride + 1
                specs.append(ConvolutionSpec(inChannels: width, outChannels: width, stride: 1, inputSize: size))
                channels = width
            }
        }
        return specs
    }

    /// Trainable parameters: convolution weights, batch-norm scale and shift, linear weight and bias.
    public var parameterCount: Int {
        let convs = convolutions
        let batchNorm = convs.reduce(0) { $0 + 2 * $1.outChannels }
        let linear = Self.stageChannels.last! * Self.classes + Self.classes
        return convs.reduce(0) { $0 + $1.parameters } + batchNorm + linear
    }

    /// Batch-norm running statistics: a mean and a variance per output channel of every convolution.
    public var stateCount: Int { 2 * convolutions.reduce(0) { $0 + $1.outChannels } }

    /// Forward multiply-accumulates per image, counting convolutions and the linear layer.
    public var macsPerImage: Int {
        convolutions.reduce(0) { $0 + $1.macs } + Self.stageChannels.last! * Self.classes
    }

    /// Weighted layers (convolutions + the linear layer): equals `depth`.
    public var weightedLayers: Int { convolutions.count + 1 }
}
