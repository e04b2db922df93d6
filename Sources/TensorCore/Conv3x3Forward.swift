/// Direct 3x3 convolution kernels with SIMD16 accumulators (see DESIGN.md, engine notes):
/// eight output pixels times one 16-channel output block live in eight registers, and every
/// input channel adds `broadcast(x[ci]) * w[tap][ci][block]` to each of them.
public enum Conv3x3 {
    /// Eight-pixel dot products: `acc[p] += sum_c p_p[c] * w[c * wStride ..< +16]`.
    @inline(__always)
    static func dot8(
        _ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>, _ p3: UnsafePointer<Float>,
        _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>, _ p6: UnsafePointer<Float>, _ p7: UnsafePointer<Float>,
        weights: UnsafePointer<Float>, weightStride: Int, count: Int,
        _ a0: inout SIMD16<Float>, _ a1: inout SIMD16<Float>, _ a2: inout SIMD16<Float>, _ a3: inout SIMD16<Float>,
        _ a4: inout SIMD16<Float>, _ a5: inout SIMD16<Float>, _ a6: inout SIMD16<Float>, _ a7: inout SIMD16<Float>
    ) {
        var w = weights
        for c in 0..<count {
            let wv = load16(w)
            a0.addProduct(SIMD16(repeating: p0[c]), wv)
            a1.addProduct(SIMD16(repeating: p1[c]), wv)
            a2.addProduct(SIMD16(repeating: p2[c]), wv)
            a3.addProduct(SIMD16(repeating: p3[c]), wv)
            a4.addProduct(SIMD16(repeating: p4[c]), wv)
            a5.addProduct(SIMD16(repeating: p5[c]), wv)
            a6.addProduct(SIMD16(repeating: p6[c]), wv)
            a7.addProduct(SIMD16(repeating: p7[c]), wv)
            w += weightStride
        }
    }

    /// y = conv(x, w). `x`: input NHWC, `w`: [3][3][Cin][Cout], `y`: output NHWC (overwritten).
    public static func forward(
        input x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>,
        shape s: Conv3x3Shape, pool: ComputePool
    ) {
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let zero = UnsafePointer(zeroRow.pointer)
        let io = UncheckedSendable((x, w, y))
        pool.forEach(s.batch) { n in
            let (x, w, y) = io.value
            let image = x + n * h * wd * cin
            for oy in 0..<ho {
                let outRow = y + ((n * ho + oy) * wo) * cout
                var ox0 = 0
                while ox0 < wo {
                    let pixels = min(8, wo - ox0)
                    for block in 0..<(cout / 16) {
                        var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
                        for ky in 0..<3 {
                            let iy = oy * stride + ky - 1
                            if iy < 0 || iy >= h { continue }
                            let inRow = UnsafePointer(image + iy * wd * cin)
                            for kx in 0..<3 {
                                @inline(__always) func pixel(_ p: Int) -> UnsafePointer<Float> {
                                    let ix = (ox0 + p) * stride + kx - 1
                                    return (p < pixels && ix >= 0 && ix < wd) ? inRow + ix * cin : zero
                                }
                                dot8(pixel(0), pixel(1), pixel(2), pixel(3), pixel(4), pixel(5), pixel(6), pixel(7),
                                     weights: w + (ky * 3 + kx) * cin * cout + block * 16, weightStride: cout, count: cin,
                                     &a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7)
                            }
                        }
                        let out = outRow + ox0 * cout + block * 16
                        store16(a0, out)
                        if pixels > 1 { store16(a1, out + cout) }
                        if pixels > 2 { store16(a2, out + 2 * cout) }
                        if pixels > 3 { store16(a3, out + 3 * cout) }
                        if pixels > 4 { store16(a4, out + 4 * cout) }
                        if pixels > 5 { store16(a5, out + 5 * cout) }
                        if pixels > 6 { store16(a6, out + 6 * cout) }
                        if pixels > 7 { store16(a7, out + 7 * cout) }
                    }
                    ox0 += 8
                }
            }
        }
    }
}
