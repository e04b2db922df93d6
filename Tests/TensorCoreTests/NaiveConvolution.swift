import TensorCore

/// Straightforward Double-precision 3x3 convolution (padding 1), the reference for the kernels.
enum NaiveConvolution {
    static func forward(_ x: [Float], _ w: [Float], _ s: Conv3x3Shape) -> [Double] {
        forward(x, w, s, zero: 0.0) { sum, x, w in sum + Double(x) * Double(w) }
    }

    /// The kernels' order of operations in scalar Float: kernel rows, then input channels, then
    /// the row's three taps, one fused multiply-add each. Every tile of the SIMD kernels gives these bits.
    static func forwardInKernelOrder(_ x: [Float], _ w: [Float], _ s: Conv3x3Shape) -> [Float] {
        forward(x, w, s, zero: Float(0)) { sum, x, w in sum.addingProduct(x, w) }
    }

    private static func forward<Sum>(
        _ x: [Float], _ w: [Float], _ s: Conv3x3Shape, zero: Sum,
        add: (Sum, Float, Float) -> Sum
    ) -> [Sum] {
        var y = [Sum](repeating: zero, count: s.batch * s.outHeight * s.outWidth * s.outChannels)
        for n in 0..<s.batch {
            for oy in 0..<s.outHeight {
                for ox in 0..<s.outWidth {
                    for co in 0..<s.outChannels {
                        var sum = zero
                        for ky in 0..<3 {
                            for ci in 0..<s.inChannels {
                                for kx in 0..<3 {
                                    let iy = oy * s.stride + ky - 1, ix = ox * s.stride + kx - 1
                                    guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
                                    sum = add(
                                        sum, x[((n * s.height + iy) * s.width + ix) * s.inChannels + ci],
                                        w[((ky * 3 + kx) * s.inChannels + ci) * s.outChannels + co])
                                }
                            }
                        }
                        y[((n * s.outHeight + oy) * s.outWidth + ox) * s.outChannels + co] = sum
                    }
                }
            }
        }
        return y
    }

    /// Input and weight gradients of sum(y * dy).
    static func backward(_ x: [Float], _ w: [Float], _ dy: [Float], _ s: Conv3x3Shape) -> (dx: [Double], dw: [Double]) {
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        for n in 0..<s.batch {
            for oy in 0..<s.outHeight {
                for ox in 0..<s.outWidth {
                    for co in 0..<s.outChannels {
                        let g = Double(dy[((n * s.outHeight + oy) * s.outWidth + ox) * s.outChannels + co])
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy * s.stride + ky - 1, ix = ox * s.stride + kx - 1
                                guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
                                for ci in 0..<s.inChannels {
                                    let xi = ((n * s.height + iy) * s.width + ix) * s.inChannels + ci
                                    let wi = ((ky * 3 + kx) * s.inChannels + ci) * s.outChannels + co
                                    dx[xi] += g * Double(w[wi])
                                    dw[wi] += g * Double(x[xi])
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw)
    }
}

func randomArray(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.nextUnitFloat() * 2 - 1 }
}

/// Largest |a - b| / (atol + rtol * |b|); <= 1 means within tolerance.
func worstRelativeError(_ a: [Float], _ b: [Double], rtol: Double = 1e-4, atol: Double = 1e-4) -> Double {
    precondition(a.count == b.count)
    var worst = 0.0
    for i in a.indices { worst = max(worst, abs(Double(a[i]) - b[i]) / (atol + rtol * abs(b[i]))) }
    return worst
}
