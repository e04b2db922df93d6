import TensorCore

/// The paper's CIFAR building block: two conv+BN units (ReLU after the first), plus the shortcut, then ReLU.
/// With `residual == false` it is the plain block (no shortcut) used for the plain nets.
/// When the block halves the resolution and doubles the channels, the shortcut is option A:
/// stride-2 subsampling with zero-padded channels, no parameters.
public final class ResidualBlock: Layer {
    public let residual: Bool
    public let first: ConvolutionNorm
    public let second: ConvolutionNorm
    private let pool: ComputePool
    private let buffers: TensorArena

    private var output: Tensor?  // relu(secondNorm + shortcut), mask for backward
    /// Identity shortcut: the add and the ReLU run inside the second batch norm's passes, and
    /// the shortcut's gradient is added as the first convolution's backward-data stores.
    private var identityShortcut: Bool { residual && first.stride == 1 && first.inChannels == first.outChannels }

    public init(
        _ name: String, inChannels: Int, outChannels: Int, stride: Int, residual: Bool,
        store: ParameterStore, pool: ComputePool
    ) {
        self.residual = residual
        self.pool = pool
        buffers = store.gradientBuffers
        first = ConvolutionNorm(
            convolution: "\(name).conv1", norm: "\(name).bn1", inChannels: inChannels, outChannels: outChannels,
            stride: stride, fusedReLU: true, store: store, pool: pool)
        second = ConvolutionNorm(
            convolution: "\(name).conv2", norm: "\(name).bn2", inChannels: outChannels, outChannels: outChannels,
            stride: 1, fusedReLU: !residual, store: store, pool: pool)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let h = try first.forward(x, mode: mode)
        if identityShortcut || !residual { return try second.forward(h, mode: mode, shortcut: residual ? x : nil) }
        // Option A (downsampling) shortcut: its add and ReLU keep a pass of their own.
        let branch = try second.forward(h, mode: mode)
        let y = Tensor.reusing(output, shape: branch.shape)
        pool.measure("shortcut add + relu forward", bytes: 4 * Double(branch.count * 3)) {
            OptionAShortcut.addThenReLU(branch: branch, shortcut: x, into: y, pool: pool)
        }
        output = y
        return y
    }

    /// The batch norm that produces this block's output (its ReLU and shortcut add inside), or nil
    /// when the option-A shortcut's add has a pass of its own.
    public var outputNorm: BatchNorm? { identityShortcut || !residual ? second.norm : nil }

    /// The input gradient comes straight from the first convolution's stride-1 kernel (no
    /// option-A pass after it): it can sum for the batch norm before the block (`backward(_:summingFor:)`).
    public var sumsInputGradient: Bool { identityShortcut || (!residual && first.stride == 1) }

    public func backward(_ dy: Tensor) throws -> Tensor {
        try backward(dy, summingFor: nil)
    }

    /// With `norm` (the batch norm whose output is this block's input; requires `sumsInputGradient`),
    /// the first convolution writes the sums that batch norm's backward needs.
    public func backward(_ dy: Tensor, summingFor norm: BatchNorm?) throws -> Tensor {
        precondition(norm == nil || sumsInputGradient, "only a block whose first convolution has stride 1 and no option-A add sums")
        if identityShortcut {
            let dz = buffers.take(shape: dy.shape)  // dy through the final ReLU: the shortcut's gradient
            let dx = try backwardThroughBranch(dy, shortcutGradient: dz, summingFor: norm)
            buffers.give(dz)
            return dx
        }
        guard residual else { return try backwardThroughBranch(dy, summingFor: norm) }
        guard let y = output else { preconditionFailure("backward without forward") }
        let dz = buffers.take(shape: dy.shape)
        pool.measure("shortcut relu backward", bytes: 4 * Double(dy.count * 3)) {
            ElementWise.reluBackward(outputGradient: dy, output: y, into: dz, pool: pool)
        }
        let dx = try backwardThroughBranch(dz)
        pool.measure("shortcut add backward", bytes: 4 * Double(dx.count * 3)) {
            OptionAShortcut.addBackward(sumGradient: dz, into: dx, pool: pool)
        }
        buffers.give(dz)
        return dx
    }

    /// The branch's layers in reverse, each intermediate gradient given back once consumed
    /// (`dy` itself belongs to the caller). With an identity shortcut, the second batch norm
    /// writes the shortcut's gradient into `shortcutGradient` and the first convolution adds it.
    /// The second convolution always writes the first batch norm's sums.
    private func backwardThroughBranch(_ dy: Tensor, shortcutGradient: Tensor? = nil, summingFor norm: BatchNorm? = nil) throws -> Tensor {
        let d1 = try second.norm.backward(dy, shortcutGradient: shortcutGradient)
        let d2 = try second.convolution.backward(d1, adding: nil, summingFor: first.norm)
        buffers.give(d1)
        let d3 = try first.norm.backward(d2)
        buffers.give(d2)
        let dx = try first.convolution.backward(d3, adding: shortcutGradient, summingFor: norm)
        buffers.give(d3)
        return dx
    }

    public var batchNorms: [BatchNorm] { [first.norm, second.norm] }
}
