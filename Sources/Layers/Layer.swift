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
/// gives them back when done (`ResNet.backward` does).
public protocol Layer: AnyObject {
    /// Throws only when a distributed reduction inside the layer fails.
    func forward(_ input: Tensor, mode: Mode) throws -> Tensor
    func backward(_ outputGradient: Tensor) throws -> Tensor
}
