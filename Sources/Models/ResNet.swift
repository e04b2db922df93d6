import Layers
import TensorCore

/// A network of `Architecture` built from the engine's layers, with its parameter store.
/// Input: images [N, 32, 32, 3] (NHWC); output: logits [N, 10].
public final class ResNet {
    public let architecture: Architecture
    public let store: ParameterStore
    /// conv1 + bn1 (and ReLU) on the image.
    public let stem: ConvolutionNorm
    public let blocks: [ResidualBlock]
    public let pool = GlobalAveragePool()
    public let classifier: Linear
    /// The first parameter of each block, and of the classifier: below them, gradients are final
    /// once the backward pass has gone through that block (see `backward`).
    public let blockParameterOffsets: [Int]
    public let classifierParameterOffset: Int

    public init(_ architecture: Architecture, seed: UInt64, pool: ComputePool) {
        self.architecture = architecture
        let store = ParameterStore()
        // Reserved in forward order (conv1, bn1, the blocks, fc): the parameter layout and the
        // initialization follow it.
        stem = ConvolutionNorm(
            convolution: "conv1", norm: "bn1", inChannels: 3, outChannels: 16, stride: 1, fusedReLU: true,
            computesInputGradient: false, store: store, pool: pool)
        var blocks: [ResidualBlock] = []
        var offsets: [Int] = []
        var channels = 16
        for (stage, width) in Architecture.stageChannels.enumerated() {
            for block in 0..<architecture.blocksPerStage {
                offsets.append(store.parameterCount)
                blocks.append(
                    ResidualBlock(
                        "layer\(stage + 1).\(block)", inChannels: channels, outChannels: width,
                        stride: Architecture.stride(stage: stage, block: block), residual: architecture.residual,
                        store: store, pool: pool))
                channels = width
            }
        }
        self.blocks = blocks
        blockParameterOffsets = offsets
        classifierParameterOffset = store.parameterCount
        classifier = Linear("fc", inFeatures: channels, outFeatures: Architecture.classes, store: store)
        store.finalize(seed: seed)
        self.store = store
    }

    public func forward(_ images: Tensor, mode: Mode) throws -> Tensor {
        var x = try stem.forward(images, mode: mode)
        for block in blocks { x = try block.forward(x, mode: mode) }
        return try classifier.forward(try pool.forward(x, mode: mode), mode: mode)
    }

    /// Adds the parameter gradients for d(loss)/d(logits) to `store.gradientAccumulators`.
    /// A block whose first convolution produces the gradient of the batch norm before it (the
    /// stem's, or the previous block's output norm) writes that batch norm's sums too. Each
    /// gradient goes back to the arena once the next one exists.
    ///
    /// `finished(offset)` is called whenever the accumulators from `offset` on are final: after
    /// the classifier and after each block (a block also writes the sums of the norm just before
    /// it, which lies below its own first parameter, so its own offset is the safe bound).
    public func backward(_ logitsGradient: Tensor, finished: (Int) throws -> Void = { _ in }) throws {
        let buffers = store.gradientBuffers
        var gradient = logitsGradient
        func advance(_ next: Tensor) {
            if next.storage !== gradient.storage { buffers.give(gradient) }
            gradient = next
        }
        advance(try classifier.backward(gradient))
        try finished(classifierParameterOffset)
        advance(try pool.backward(gradient))
        for (i, block) in blocks.enumerated().reversed() {
            let normBefore = i == 0 ? stem.norm : blocks[i - 1].outputNorm
            if block.sumsInputGradient, let normBefore {
                advance(try block.backward(gradient, summingFor: normBefore))
            } else {
                advance(try block.backward(gradient))
            }
            try finished(blockParameterOffsets[i])
        }
        advance(try stem.backward(gradient))
        buffers.give(gradient)
    }

    /// Every batch-norm layer, in forward order.
    public var batchNorms: [BatchNorm] { [stem.norm] + blocks.flatMap(\.batchNorms) }

    /// Synchronized batch norm: every batch-norm layer reduces its statistics with `reducer`.
    public func synchronizeBatchNorm(with reducer: (any StatisticsReducer)?) {
        for norm in batchNorms { norm.reducer = reducer }
    }
}
