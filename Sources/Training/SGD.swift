import Layers
import TensorCore

/// SGD with momentum and L2 weight decay, in PyTorch's form (dampening 0, no Nesterov):
/// g = grad + wd * w;  v = momentum * v + g;  w -= lr * v.
/// One vectorized pass over the single parameter buffer.
public struct SGD {
    public let momentum: Float
    public let weightDecay: Float
    /// The momentum buffer, same layout as the parameters.
    public let velocity: FloatStorage

    public init(parameterCount: Int, momentum: Float, weightDecay: Float) {
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocity = FloatStorage(count: parameterCount)
    }

    public func step(_ store: ParameterStore, learningRate: Float, pool: ComputePool) {
        let count = store.parameterCount
        precondition(velocity.count == count, "optimizer built for another model")
        let io = UncheckedSendable((store.values.baseAddress!, UnsafePointer(store.gradients.baseAddress!), velocity.pointer))
        let (m, wd, lr) = (momentum, weightDecay, learningRate)
        let chunk = 1 << 14
        pool.forEach((count + chunk - 1) / chunk) { c in
            let (w, g, v) = io.value
            var i = c * chunk
            let end = min(count, i + chunk)
            while i + 16 <= end {
                let weights = load16(w + i)
                let velocity = load16(v + i) * m + (load16(g + i) + weights * wd)
                store16(velocity, v + i)
                store16(weights - velocity * lr, w + i)
                i += 16
            }
            while i < end {
                v[i] = v[i] * m + (g[i] + w[i] * wd)
                w[i] -= v[i] * lr
                i += 1
            }
        }
    }
}
