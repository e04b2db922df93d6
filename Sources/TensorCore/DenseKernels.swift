/// The classifier's small loops: global average pooling and the fully connected layer, scalar
/// (they touch a few thousand values per image, against the convolutions' millions), over
/// [N, H, W, C] and [N, features].
public enum DenseKernels {
    /// y[n][c] = mean over the pixels of x[n][.][.][c].
    public static func averagePool(_ x: Tensor, into y: Tensor) {
        let d = x.nhwc
        let pixels = d.h * d.w, scale = 1 / Float(pixels)
        for n in 0..<d.n {
            for c in 0..<d.c {
                var sum: Float = 0
                for p in 0..<pixels { sum += x.pointer[(n * pixels + p) * d.c + c] }
                y.pointer[n * d.c + c] = sum * scale
            }
        }
    }

    /// dx[n][.][.][c] = dy[n][c] / pixels.
    public static func averagePoolBackward(_ dy: Tensor, into dx: Tensor) {
        let (n, h, w, c) = dx.nhwc
        let pixels = h * w, scale = 1 / Float(pixels)
        for i in 0..<n {
            for p in 0..<pixels {
                for ch in 0..<c { dx.pointer[(i * pixels + p) * c + ch] = dy.pointer[i * c + ch] * scale }
            }
        }
    }

    /// y = x W^T + b, W stored [out][in].
    public static func linear(
        _ x: Tensor, weights w: UnsafePointer<Float>, bias b: UnsafePointer<Float>, into y: Tensor, inFeatures: Int, outFeatures: Int
    ) {
        for i in 0..<x.shape[0] {
            for o in 0..<outFeatures {
                var sum = b[o]
                for k in 0..<inFeatures { sum += x.pointer[i * inFeatures + k] * w[o * inFeatures + k] }
                y.pointer[i * outFeatures + o] = sum
            }
        }
    }

    /// dx = dy W (dx is overwritten); dW += dy^T x and db += dy as fixed point at the gradient scale.
    public static func linearBackward(
        _ dy: Tensor, input x: Tensor, weights w: UnsafePointer<Float>, into dx: Tensor,
        weightGradient dw: UnsafeMutablePointer<Int64>, biasGradient db: UnsafeMutablePointer<Int64>,
        inFeatures: Int, outFeatures: Int
    ) {
        let scale = FixedPoint.gradientScale
        dx.fill(0)
        for i in 0..<x.shape[0] {
            for o in 0..<outFeatures {
                let g = dy.pointer[i * outFeatures + o]
                db[o] &+= FixedPoint.encode(Double(g), scale: scale)
                for k in 0..<inFeatures {
                    dw[o * inFeatures + k] &+= FixedPoint.encode(Double(g * x.pointer[i * inFeatures + k]), scale: scale)
                    dx.pointer[i * inFeatures + k] += g * w[o * inFeatures + k]
                }
            }
        }
    }
}
