import TensorCore

/// Training uses batch statistics in batch norm and keeps what backward needs;
/// inference uses running statistics and keeps nothing.
public enum Mode: Sendable {
    case training
    case inference
}

/// A layer with an explicit forward and backward pass and no general autograd.
///
/// `forward` keeps what `backward` needs (named caches). `backward` adds each image's parameter
/// gradients, in fixed point, to the store's `gradientAccumulators` and returns the input gradient. Forward outputs
/// are the layer's own reusable buffers, valid until the layer runs again; input gradients of
/// the convolution and batch-norm layers come from the model's `TensorArena`, and the consumer
/// gives them back when done (`Sequential` does when it has the arena).
public protocol Layer: AnyObject {
    /// Throws only when a distributed reduction inside the layer fails.
    func forward(_ input: Tensor, mode: Mode) throws -> Tensor
    func backward(_ outputGradient: Tensor) throws -> Tensor
}

/// Layers run one after another.
public final class Sequential: Layer {
    public let layers: [any Layer]
    private let gradientBuffers: TensorArena?

    public init(_ layers: [any Layer], gradientBuffers: TensorArena? = nil) {
        self.layers = layers
        self.gradientBuffers = gradientBuffers
    }

    /// A convolution followed by a batch norm runs as one fused step (see `Convolution.forward(_:mode:norm:)`).
    public func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        var x = input, i = 0
        while i < layers.count {
            if let convolution = layers[i] as? Convolution, i + 1 < layers.count, let norm = layers[i + 1] as? BatchNorm {
                x = try convolution.forward(x, mode: mode, norm: norm)
                i += 2
            } else {
                x = try layers[i].forward(x, mode: mode)
                i += 1
            }
        }
        return x
    }

    /// A residual block whose first convolution produces the gradient of the batch norm before it
    /// (a batch-norm layer, or the previous block's output norm) writes that batch norm's sums too.
    public func backward(_ outputGradient: Tensor) throws -> Tensor {
        var gradient = outputGradient
        for (i, layer) in layers.enumerated().reversed() {
            let next: Tensor
            if let block = layer as? ResidualBlock, block.sumsInputGradient, i > 0,
                let norm = (layers[i - 1] as? BatchNorm) ?? (layers[i - 1] as? ResidualBlock)?.outputNorm
            {
                next = try block.backward(gradient, summingFor: norm)
            } else {
                next = try layer.backward(gradient)
            }
            if next.storage !== gradient.storage { gradientBuffers?.give(gradient) }
            gradient = next
        }
        return gradient
    }
}
