import TensorCore

/// Global average pooling: [N, H, W, C] -> [N, C].
public final class GlobalAveragePool: Layer {
    private var inputShape: [Int] = []
    private var output: Tensor?
    private var inputGradient: Tensor?

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let d = x.nhwc
        inputShape = x.shape
        let y = Tensor.reusing(output, shape: [d.n, d.c])
        DenseKernels.averagePool(x, into: y)
        output = y
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        let dx = Tensor.reusing(inputGradient, shape: inputShape)
        DenseKernels.averagePoolBackward(dy, into: dx)
        inputGradient = dx
        return dx
    }
}
