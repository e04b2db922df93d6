extension Conv3x3 {
    /// dw += d(loss)/d(weights). Images are split into `weightGradientGroups` fixed groups; each
    /// group sums into its own slice of `scratch` and the slices are added in order at the end.
    public static func backwardWeights(
        input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
        weightGradient dw: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        shape s: Conv3x3Shape, pool: ComputePool
    ) {
        let groups = weightGradientGroups(batch: s.batch)
        let count = s.weightCount
        let io = UncheckedSendable((x, dy, dw, scratch))
        pool.forEach(groups) { g in
            let (x, dy, _, scratch) = io.value
            let partial = scratch + g * count
            partial.update(repeating: 0, count: count)
            for n in (g * s.batch / groups)..<((g + 1) * s.batch / groups) {
                accumulateImage(n, input: x, outputGradient: dy, into: partial, shape: s)
            }
        }
        let chunk = 4096
        pool.forEach((count + chunk - 1) / chunk) { c in
            let (_, _, dw, scratch) = io.value
            for i in (c * chunk)..<min(count, (c + 1) * chunk) {
                var sum = dw[i]
                for g in 0..<groups { sum += scratch[g * count + i] }
                dw[i] = sum
            }
        }
    }

    /// Adds one image's contribution to `partial` ([3][3][Cin][Cout]).
    @inline(__always)
    static func accumulateImage(
        _ n: Int, input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
        into partial: UnsafeMutablePointer<Float>, shape s: Conv3x3Shape
    ) {
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let image = x + n * h * wd * cin
        let grad = dy + n * ho * wo * cout
        for ky in 0..<3 {
            // Output rows whose tap (ky, kx) lands inside the image.
            let oyLow = ky == 0 ? 1 : 0, oyHigh = min(ho - 1, (h - ky) / stride)
            for kx in 0..<3 {
                let oxLow = kx == 0 ? 1 : 0, oxHigh = min(wo - 1, (wd - kx) / stride)
                if oyLow > oyHigh || oxLow > oxHigh { continue }
                let tap = partial + (ky * 3 + kx) * cin * cout
                var ci0 = 0
                while ci0 < cin {
                    let width = min(16, cin - ci0)
                    for co0 in Swift.stride(from: 0, to: cout, by: 16) {
                        let target = tap + ci0 * cout + co0
                        if width == 16 {
                            accumulate16(image: image, grad: grad, target: target, ci0: ci0, co0: co0,
                                         rows: oyLow...oyHigh, columns: oxLow...oxHigh, ky: ky, kx: kx, shape: s)
                        } else {
                            for j in 0..<width {
                                var acc = load16(target + j * cout)
                                for oy in oyLow...oyHigh {
                                    let inRow = image + (oy * stride + ky - 1) * wd * cin + ci0 + j
                                    let gradRow = grad + oy * wo * cout + co0
                                    for ox in oxLow...oxHigh {
                                        acc.addProduct(SIMD16(repeating: inRow[(ox * stride + kx - 1) * cin]), load16(gradRow + ox * cout))
                                    }
                                }
                                store16(acc, target + j * cout)
                            }
                        }
                    }
                    ci0 += width
                }
            }
        }
    }

    /// 16 input channels x 16 output channels of one tap: 16 accumulators over the image's pixels.
    @inline(__always)
    static func accumulate16(
        image: UnsafePointer<Float>, grad: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>,
        ci0: Int, co0: Int, rows: ClosedRange<Int>, columns: ClosedRange<Int>, ky: Int, kx: Int, shape s: Conv3x3Shape
    ) {
        let (wd, cin, cout, stride, wo) = (s.width, s.inChannels, s.outChannels, s.stride, s.outWidth)
        var a0 = load16(target), a1 = load16(target + cout), a2 = load16(target + 2 * cout), a3 = load16(target + 3 * cout)
        var a4 = load16(target + 4 * cout), a5 = load16(target + 5 * cout), a6 = load16(target + 6 * cout), a7 = load16(target + 7 * cout)
        var a8 = load16(target + 8 * cout), a9 = load16(target + 9 * cout), a10 = load16(target + 10 * cout), a11 = load16(target + 11 * cout)
        var a12 = load16(target + 12 * cout), a13 = load16(target + 13 * cout), a14 = load16(target + 14 * cout), a15 = load16(target + 15 * cout)
        for oy in rows {
            let inRow = image + (oy * stride + ky - 1) * wd * cin + ci0 + (kx - 1) * cin
            let gradRow = grad + oy * wo * cout + co0
            for ox in columns {
                let g = load16(gradRow + ox * cout)
                let p = inRow + ox * stride * cin
                a0.addProduct(SIMD16(repeating: p[0]), g); a1.addProduct(SIMD16(repeating: p[1]), g)
                a2.addProduct(SIMD16(repeating: p[2]), g); a3.addProduct(SIMD16(repeating: p[3]), g)
                a4.addProduct(SIMD16(repeating: p[4]), g); a5.addProduct(SIMD16(repeating: p[5]), g)
                a6.addProduct(SIMD16(repeating: p[6]), g); a7.addProduct(SIMD16(repeating: p[7]), g)
                a8.addProduct(SIMD16(repeating: p[8]), g); a9.addProduct(SIMD16(repeating: p[9]), g)
                a10.addProduct(SIMD16(repeating: p[10]), g); a11.addProduct(SIMD16(repeating: p[11]), g)
                a12.addProduct(SIMD16(repeating: p[12]), g); a13.addProduct(SIMD16(repeating: p[13]), g)
                a14.addProduct(SIMD16(repeating: p[14]), g); a15.addProduct(SIMD16(repeating: p[15]), g)
            }
        }
        store16(a0, target); store16(a1, target + cout); store16(a2, target + 2 * cout); store16(a3, target + 3 * cout)
        store16(a4, target + 4 * cout); store16(a5, target + 5 * cout); store16(a6, target + 6 * cout); store16(a7, target + 7 * cout)
        store16(a8, target + 8 * cout); store16(a9, target + 9 * cout); store16(a10, target + 10 * cout); store16(a11, target + 11 * cout)
        store16(a12, target + 12 * cout); store16(a13, target + 13 * cout); store16(a14, target + 14 * cout); store16(a15, target + 15 * cout)
    }
}
