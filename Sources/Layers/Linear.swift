import TensorCore

/// Fully connected layer with bias: y = x W^T + b, W stored [out][in] as in PyTorch.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: ParameterView
    public let bias: ParameterView
    private let store: ParameterStore
    private var input: Tensor?  // [N, in]
    private var output: Tensor?  // [N, out]
    private var inputGradient: Tensor?

    public init(_ name: String, inFeatures: Int, outFeatures: Int, store: ParameterStore) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.store = store
        weight = store.reserve("\(name).weight", count: inFeatures * outFeatures, initializer: .he(fanIn: inFeatures))
        bias = store.reserve("\(name).bias", count: outFeatures, initializer: .constant(0))
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let n = x.shape[0]
        precondition(x.shape == [n, inFeatures], "linear expects [N, \(inFeatures)], got \(x.shape)")
        let y = Tensor.reusing(output, shape: [n, outFeatures])
        DenseKernels.linear(
            x, weights: store.pointer(weight), bias: store.pointer(bias), into: y, inFeatures: inFeatures, outFeatures: outFeatures)
        input = mode == .training ? x : nil
        output = y
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        guard let x = input else { preconditionFailure("backward without a training forward") }
        let dx = Tensor.reusing(inputGradient, shape: x.shape)
        DenseKernels.linearBackward(
            dy, input: x, weights: store.pointer(weight), into: dx,
            weightGradient: store.accumulator(weight), biasGradient: store.accumulator(bias),
            inFeatures: inFeatures, outFeatures: outFeatures)
        inputGradient = dx
        return dx
    }
}
