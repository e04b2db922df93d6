import Layers
import TensorCore

/// A network of `Architecture` built from the engine's layers, with its parameter store.
/// Input: images [N, 32, 32, 3] (NHWC); output: logits [N, 10].
public final class ResNet {
    public let architecture: Architecture
    public let store: ParameterStore
    public let body: Sequential

    public init(_ architecture: Architecture, seed: UInt64, pool: ComputePool) {
        self.architecture = architecture
        let store = ParameterStore()
        var layers: [any Layer] = [
            Convolution("conv1", inChannels: 3, outChannels: 16, stride: 1, computesInputGradient: false, store: store, pool: pool),
            BatchNorm("bn1", channels: 16, fusedReLU: true, store: store, pool: pool),
        ]
        var channels = 16
        for (stage, width) in Architecture.stageChannels.enumerated() {
            for block in 0..<architecture.blocksPerStage {
                let stride = Architecture.stride(stage: stage, block: block)
                layers.append(
                    ResidualBlock(
                        "layer\(stage + 1).\(block)", inChannels: channels, outChannels: width,
                        stride: stride, residual: architecture.residual, store: store, pool: pool))
                channels = width
            }
        }
        layers.append(GlobalAveragePool())
        layers.append(Linear("fc", inFeatures: channels, outFeatures: Architecture.classes, store: store))
        store.finalize(seed: seed)
        self.store = store
        body = Sequential(layers, gradientBuffers: store.gradientBuffers)
    }

    public func forward(_ images: Tensor, mode: Mode) throws -> Tensor { try body.forward(images, mode: mode) }

    /// Adds the parameter gradients for d(loss)/d(logits) to `store.gradientAccumulators`.
    public func backward(_ logitsGradient: Tensor) throws {
        store.gradientBuffers.give(try body.backward(logitsGradient))
    }

    /// Every batch-norm layer, in forward order.
    public var batchNorms: [BatchNorm] {
        body.layers.flatMap { layer -> [BatchNorm] in
            if let norm = layer as? BatchNorm { return [norm] }
            if let block = layer as? ResidualBlock { return block.batchNorms }
            return []
        }
    }

    /// Synchronized batch norm: every batch-norm layer reduces its statistics with `reducer`.
    public func synchronizeBatchNorm(with reducer: (any StatisticsReducer)?) {
        for norm in batchNorms { norm.reducer = reducer }
    }
}
