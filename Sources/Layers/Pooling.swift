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
        let pixels = d.h * d.w, scale = 1 / Float(pixels)
        for n in 0..<d.n {
            for c in 0..<d.c {
                var sum: Float = 0
                for p in 0..<pixels { sum += x.pointer[(n * pixels + p) * d.c + c] }
                y.pointer[n * d.c + c] = sum * scale
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        let dx = Tensor.reusing(inputGradient, shape: inputShape)
        let (n, h, w, c) = dx.nhwc
        let pixels = h * w, scale = 1 / Float(pixels)
        for i in 0..<n {
            for p in 0..<pixels {
                for ch in 0..<c { dx.pointer[(i * pixels + p) * c + ch] = dy.pointer[i * c + ch] * scale }
            }
        }
        inputGradient = dx
        return dx
    }
}
