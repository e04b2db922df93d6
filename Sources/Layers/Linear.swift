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
        let w = store.pointer(weight), b = store.pointer(bias)
        for i in 0..<n {
            for o in 0..<outFeatures {
                var sum = b[o]
                for k in 0..<inFeatures { sum += x.pointer[i * inFeatures + k] * w[o * inFeatures + k] }
                y.pointer[i * outFeatures + o] = sum
            }
        }
        input = mode == .training ? x : nil
        output = y
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        guard let x = input else { preconditionFailure("backward without a training forward") }
        let n = x.shape[0]
        let w = store.pointer(weight), dw = store.accumulator(weight), db = store.accumulator(bias)
        let scale = FixedPoint.gradientScale
        let dx = Tensor.reusing(inputGradient, shape: x.shape)
        dx.fill(0)
        for i in 0..<n {
            for o in 0..<outFeatures {
                let g = dy.pointer[i * outFeatures + o]
                db[o] &+= FixedPoint.encode(Double(g), scale: scale)
                for k in 0..<inFeatures {
                    dw[o * inFeatures + k] &+= FixedPoint.encode(Double(g * x.pointer[i * inFeatures + k]), scale: scale)
                    dx.pointer[i * inFeatures + k] += g * w[o * inFeatures + k]
                }
            }
        }
        inputGradient = dx
        return dx
    }
}
