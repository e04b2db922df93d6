import TensorCore

/// The paper's CIFAR building block: conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU.
/// With `residual == false` it is the plain block (no shortcut) used for the plain nets.
/// When the block halves the resolution and doubles the channels, the shortcut is option A:
/// stride-2 subsampling with zero-padded channels, no parameters.
public final class ResidualBlock: Layer {
    public let residual: Bool
    public let first: Convolution
    public let firstNorm: BatchNorm
    public let second: Convolution
    public let secondNorm: BatchNorm
    private let pool: ComputePool

    private var output: Tensor?            // relu(secondNorm + shortcut), mask for backward
    private var sumGradient: Tensor?       // gradient at the sum before the final ReLU

    public init(_ name: String, inChannels: Int, outChannels: Int, stride: Int, residual: Bool,
                store: ParameterStore, pool: ComputePool) {
        self.residual = residual
        self.pool = pool
        first = Convolution("\(name).conv1", inChannels: inChannels, outChannels: outChannels, stride: stride, store: store, pool: pool)
        firstNorm = BatchNorm("\(name).bn1", channels: outChannels, fusedReLU: true, store: store, pool: pool)
        second = Convolution("\(name).conv2", inChannels: outChannels, outChannels: outChannels, stride: 1, store: store, pool: pool)
        secondNorm = BatchNorm("\(name).bn2", channels: outChannels, fusedReLU: !residual, store: store, pool: pool)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let h = try firstNorm.forward(try first.forward(x, mode: mode), mode: mode)
        let branch = try secondNorm.forward(try second.forward(h, mode: mode), mode: mode)
        guard residual else { return branch }
        let y = Tensor.reusing(output, shape: branch.shape)
        pool.measure("shortcut add + relu forward", bytes: 4 * Double(branch.count * 3)) {
            OptionAShortcut.addThenReLU(branch: branch, shortcut: x, into: y, pool: pool)
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        guard residual else { return try backwardThroughBranch(dy) }
        guard let y = output else { preconditionFailure("backward without forward") }
        let dz = Tensor.reusing(sumGradient, shape: dy.shape)
        pool.measure("shortcut relu backward", bytes: 4 * Double(dy.count * 3)) {
            ElementWise.reluBackward(outputGradient: dy, output: y, into: dz, pool: pool)
        }
        sumGradient = dz
        let dx = try backwardThroughBranch(dz)
        pool.measure("shortcut add backward", bytes: 4 * Double(dx.count * 3)) {
            OptionAShortcut.addBackward(sumGradient: dz, into: dx, pool: pool)
        }
        return dx
    }

    private func backwardThroughBranch(_ dy: Tensor) throws -> Tensor {
        try first.backward(try firstNorm.backward(try second.backward(try secondNorm.backward(dy))))
    }

    public var batchNorms: [BatchNorm] { [firstNorm, secondNorm] }
}
