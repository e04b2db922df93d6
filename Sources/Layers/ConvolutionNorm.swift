import TensorCore

/// A 3x3 convolution and the batch norm after it: the unit the paper's nets are built from, and
/// the unit the engine fuses. Training: the convolution's kernel hands batch norm its statistics
/// (one pass over memory fewer); inference: one fused pass with the batch norm folded in
/// (`Convolution.forward(_:mode:norm:shortcut:)`).
public final class ConvolutionNorm: Layer {
    public let convolution: Convolution
    public let norm: BatchNorm
    private let buffers: TensorArena

    /// Parameters are reserved in the order convolution, batch norm (`name.conv*`, `name.bn*`:
    /// the parameter layout and the initialization depend on it).
    public init(
        convolution convolutionName: String, norm normName: String, inChannels: Int, outChannels: Int, stride: Int,
        fusedReLU: Bool, computesInputGradient: Bool = true, store: ParameterStore, pool: ComputePool
    ) {
        convolution = Convolution(
            convolutionName, inChannels: inChannels, outChannels: outChannels, stride: stride,
            computesInputGradient: computesInputGradient, store: store, pool: pool)
        norm = BatchNorm(normName, channels: outChannels, fusedReLU: fusedReLU, store: store, pool: pool)
        buffers = store.gradientBuffers
    }

    public var stride: Int { convolution.stride }
    public var inChannels: Int { convolution.inChannels }
    public var outChannels: Int { convolution.outChannels }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        try convolution.forward(x, mode: mode, norm: norm)
    }

    /// With the identity `shortcut` of a residual block added (and the final ReLU) inside the batch norm.
    public func forward(_ x: Tensor, mode: Mode, shortcut: Tensor?) throws -> Tensor {
        try convolution.forward(x, mode: mode, norm: norm, shortcut: shortcut)
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        let dz = try norm.backward(dy)
        let dx = try convolution.backward(dz)
        if dx.storage !== dz.storage { buffers.give(dz) }
        return dx
    }
}
