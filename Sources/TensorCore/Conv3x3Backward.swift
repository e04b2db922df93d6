extension Conv3x3 {
    /// `wt[tap'][co][ci] = w[tap][ci][co]`, with `tap' = 8 - tap` when `flip` (the 180-degree
    /// rotation that turns stride-1 backward-data into a forward convolution).
    public static func transposeWeights(
        _ w: UnsafePointer<Float>, into wt: UnsafeMutablePointer<Float>, inChannels cin: Int, outChannels cout: Int, flip: Bool
    ) {
        for tap in 0..<9 {
            let source = w + tap * cin * cout
            let target = wt + (flip ? 8 - tap : tap) * cin * cout
            for ci in 0..<cin {
                for co in 0..<cout { target[co * cin + ci] = source[ci * cout + co] }
            }
        }
    }

    /// dx = d(loss)/d(input), overwritten; plus `adding` (an identity shortcut's gradient, same
    /// shape as dx) when given, added as the stride-1 kernel stores. `transposedScratch` holds
    /// `9 * Cin * Cout` floats. Requires Cin to be a multiple of 16 (the first layer's input
    /// gradient is never needed). With `gradientSums` (stride 1), the batch norm before this
    /// convolution gets its backward sums of dx from the kernel (see `Conv3x3GradientSums`).
    public static func backwardData(
        outputGradient dy: UnsafePointer<Float>, weights w: UnsafePointer<Float>,
        inputGradient dx: UnsafeMutablePointer<Float>, transposedScratch wt: UnsafeMutablePointer<Float>,
        adding shortcutGradient: UnsafePointer<Float>? = nil, gradientSums: Conv3x3GradientSums? = nil,
        shape s: Conv3x3Shape, pool: ComputePool
    ) {
        precondition(s.inChannels % 16 == 0, "backward-data needs input channels in multiples of 16")
        precondition(shortcutGradient == nil || s.stride == 1, "an added gradient needs stride 1")
        precondition(gradientSums == nil || s.stride == 1, "gradient sums need stride 1")
        if s.stride == 1 {
            transposeWeights(w, into: wt, inChannels: s.inChannels, outChannels: s.outChannels, flip: true)
            let reversed = Conv3x3Shape(
                batch: s.batch, height: s.outHeight, width: s.outWidth,
                inChannels: s.outChannels, outChannels: s.inChannels, stride: 1)
            forward(
                input: dy, weights: wt, output: dx, shape: reversed,
                epilogue: shortcutGradient.map { Conv3x3Epilogue(adding: $0) }, gradientSums: gradientSums, pool: pool)
            return
        }
        transposeWeights(w, into: wt, inChannels: s.inChannels, outChannels: s.outChannels, flip: false)
        scatterBackwardData(outputGradient: dy, transposedWeights: UnsafePointer(wt), inputGradient: dx, shape: s, pool: pool)
    }

    /// Strided backward-data as a scatter: each tap sends `dy[o] . wt[tap]` to input pixel
    /// `o * stride + tap - 1`; within one tap those targets are distinct.
    static func scatterBackwardData(
        outputGradient dy: UnsafePointer<Float>, transposedWeights wt: UnsafePointer<Float>,
        inputGradient dx: UnsafeMutablePointer<Float>, shape s: Conv3x3Shape, pool: ComputePool
    ) {
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let zero = UnsafePointer(zeroRow.pointer)
        let io = UncheckedSendable((dy, wt, dx))
        pool.forEach(s.batch) { n in
            let (dy, wt, dx) = io.value
            let image = dx + n * h * wd * cin
            image.update(repeating: 0, count: h * wd * cin)
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let tapWeights = wt + (ky * 3 + kx) * cout * cin
                    for oy in 0..<ho {
                        let iy = oy * stride + ky - 1
                        if iy < 0 || iy >= h { continue }
                        let gradRow = dy + ((n * ho + oy) * wo) * cout
                        let inRow = image + iy * wd * cin
                        var ox0 = 0
                        while ox0 < wo {
                            let pixels = min(8, wo - ox0)
                            @inline(__always) func pixel(_ p: Int) -> UnsafePointer<Float> {
                                p < pixels ? gradRow + (ox0 + p) * cout : zero
                            }
                            for block in 0..<(cin / 16) {
                                var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
                                dot8(
                                    pixel(0), pixel(1), pixel(2), pixel(3), pixel(4), pixel(5), pixel(6), pixel(7),
                                    weights: tapWeights + block * 16, weightStride: cin, count: cout,
                                    &a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7)
                                @inline(__always) func add(_ p: Int, _ sum: SIMD16<Float>) {
                                    let ix = (ox0 + p) * stride + kx - 1
                                    guard p < pixels, ix >= 0, ix < wd else { return }
                                    let target = inRow + ix * cin + block * 16
                                    store16(load16(target) + sum, target)
                                }
                                add(0, a0); add(1, a1); add(2, a2); add(3, a3)
                                add(4, a4); add(5, a5); add(6, a6); add(7, a7)
                            }
                            ox0 += 8
                        }
                    }
                }
            }
        }
    }
}
