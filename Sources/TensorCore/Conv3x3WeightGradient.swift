extension Conv3x3 {
    /// Int64 scratch elements `backwardWeights` needs: one partial sum per thread.
    public static func weightGradientScratchCount(_ s: Conv3x3Shape, pool: ComputePool) -> Int {
        min(pool.threads, s.batch) * s.weightCount
    }

    /// dw += d(loss)/d(weights) in fixed point (`FixedPoint.gradientScale`). Each image's
    /// contribution is rounded once and added as integers, so the result is exact and independent
    /// of how images are split over threads or workers. Images are claimed one at a time, each
    /// thread adding into its own partial sum: a statically split batch waited for the slower
    /// vCPU of a noisy machine.
    public static func backwardWeights(
        input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
        weightGradient dw: UnsafeMutablePointer<Int64>, scratch: UnsafeMutablePointer<Int64>,
        shape s: Conv3x3Shape, pool: ComputePool
    ) {
        let workers = min(pool.threads, s.batch)
        let count = s.weightCount
        // An image that fits L1 whole (the 8x8 layers) keeps the tap-by-tap order, whose Float
        // sums go to fixed point while L1-hot instead of waiting in a 9 * Cin * Cout stage.
        let grouped = s.inChannels % 16 == 0 && rowsPerGroup(s) < s.outHeight
        // Per worker: whether its partial sum was started, and (grouped) one Float accumulator
        // block per tap and channel block.
        let started = UnsafeMutablePointer<Bool>.allocate(capacity: workers)
        started.initialize(repeating: false, count: workers)
        let stages = UnsafeMutablePointer<Float>.allocate(capacity: grouped ? workers * count : 1)
        defer {
            started.deallocate()
            stages.deallocate()
        }
        let io = UncheckedSendable((x, dy, dw, scratch, started, stages))
        pool.forEachOnWorkers(s.batch) { n, worker in
            let (x, dy, _, scratch, started, stages) = io.value
            let partial = scratch + worker * count
            if !started[worker] {
                partial.update(repeating: 0, count: count)
                started[worker] = true
            }
            if grouped {
                accumulateImageInRowGroups(n, input: x, outputGradient: dy, stage: stages + worker * count, into: partial, shape: s)
            } else {
                accumulateImage(n, input: x, outputGradient: dy, into: partial, shape: s)
            }
        }
        let chunk = 4096
        pool.forEach((count + chunk - 1) / chunk) { c in
            let (_, _, dw, scratch, started, _) = io.value
            for i in (c * chunk)..<min(count, (c + 1) * chunk) {
                var sum = dw[i]
                for worker in 0..<workers where started[worker] { sum &+= scratch[worker * count + i] }
                dw[i] = sum
            }
        }
    }

    /// Output rows per group in `accumulateImageInRowGroups`: the group's gradient rows and the
    /// input rows they read fit in 32 KB (L1 holds 48 KB on the machines this was tuned on).
    static func rowsPerGroup(_ s: Conv3x3Shape) -> Int {
        let gradientRow = s.outWidth * s.outChannels * 4, inputRow = s.width * s.inChannels * 4
        let rows = max(1, (32 * 1024 - 2 * inputRow) / (gradientRow + s.stride * inputRow))
        return rows >= s.outHeight - 1 ? s.outHeight : rows
    }

    /// `accumulateImage` for Cin a multiple of 16, with the loops over taps and channel blocks
    /// inside a loop over groups of output rows: the nine taps and all blocks reuse the group's
    /// rows from L1 instead of streaming the whole image from L2 for each (9 * Cin/16 * Cout/16
    /// passes). The accumulators park in `stage` (weightCount Floats) between groups and pick up
    /// where they stopped, so each gets the same FMAs in the same order: bitwise `accumulateImage`.
    static func accumulateImageInRowGroups(
        _ n: Int, input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
        stage: UnsafeMutablePointer<Float>, into partial: UnsafeMutablePointer<Int64>, shape s: Conv3x3Shape
    ) {
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let image = x + n * h * wd * cin
        let grad = dy + n * ho * wo * cout
        stage.update(repeating: 0, count: s.weightCount)
        let group = rowsPerGroup(s)
        for firstRow in Swift.stride(from: 0, to: ho, by: group) {
            let lastRow = min(ho - 1, firstRow + group - 1)
            for ky in 0..<3 {
                let oyLow = max(firstRow, ky == 0 ? 1 : 0), oyHigh = min(lastRow, (h - ky) / stride)
                for kx in 0..<3 {
                    let oxLow = kx == 0 ? 1 : 0, oxHigh = min(wo - 1, (wd - kx) / stride)
                    if oyLow > oyHigh || oxLow > oxHigh { continue }
                    let tap = (ky * 3 + kx) * cin * cout
                    for ci0 in Swift.stride(from: 0, to: cin, by: 16) {
                        for co0 in Swift.stride(from: 0, to: cout, by: 16) {
                            // Slot [16 ci][16 co] of this tap and block pair.
                            let slot = stage + tap + ci0 * cout + co0 * 16
                            accumulate16(
                                image: image, grad: grad, sums: slot, resume: true, ci0: ci0, co0: co0,
                                rows: oyLow...oyHigh, columns: oxLow...oxHigh, ky: ky, kx: kx, shape: s)
                        }
                    }
                }
            }
        }
        for tap in 0..<9 {
            for ci0 in Swift.stride(from: 0, to: cin, by: 16) {
                for co0 in Swift.stride(from: 0, to: cout, by: 16) {
                    let offset = tap * cin * cout + ci0 * cout
                    addFixedPoint(stage + offset + co0 * 16, rows: 16, into: partial + offset + co0, stride: cout)
                }
            }
        }
    }

    /// Adds one image's contribution to `partial` ([3][3][Cin][Cout]).
    @inline(__always)
    static func accumulateImage(
        _ n: Int, input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
        into partial: UnsafeMutablePointer<Int64>, shape s: Conv3x3Shape
    ) {
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let image = x + n * h * wd * cin
        let grad = dy + n * ho * wo * cout
        // Float sums of one tap block go through this buffer before the fixed-point conversion:
        // converting registers directly made the compiler split and spill the 16 accumulators.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { stage in
            let stage = stage.baseAddress!
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
                                accumulate16(
                                    image: image, grad: grad, sums: stage, resume: false, ci0: ci0, co0: co0,
                                    rows: oyLow...oyHigh, columns: oxLow...oxHigh, ky: ky, kx: kx, shape: s)
                                addFixedPoint(stage, rows: 16, into: target, stride: cout)
                            } else {
                                // Channels four at a time: four independent sums keep the FMA unit
                                // busy where one would wait out each FMA's latency (the first layer, Cin 3).
                                var j = 0
                                while j < width {
                                    let count = min(4, width - j)
                                    var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0
                                    for oy in oyLow...oyHigh {
                                        let inRow = image + (oy * stride + ky - 1) * wd * cin + ci0 + j
                                        let gradRow = grad + oy * wo * cout + co0
                                        for ox in oxLow...oxHigh {
                                            let g = load16(gradRow + ox * cout), p = inRow + (ox * stride + kx - 1) * cin
                                            a0.addProduct(SIMD16(repeating: p[0]), g)
                                            if count > 1 { a1.addProduct(SIMD16(repeating: p[1]), g) }
                                            if count > 2 { a2.addProduct(SIMD16(repeating: p[2]), g) }
                                            if count > 3 { a3.addProduct(SIMD16(repeating: p[3]), g) }
                                        }
                                    }
                                    FixedPoint.accumulate(a0, into: target + j * cout)
                                    if count > 1 { FixedPoint.accumulate(a1, into: target + (j + 1) * cout) }
                                    if count > 2 { FixedPoint.accumulate(a2, into: target + (j + 2) * cout) }
                                    if count > 3 { FixedPoint.accumulate(a3, into: target + (j + 3) * cout) }
                                    j += count
                                }
                            }
                        }
                        ci0 += width
                    }
                }
            }
        }
    }

    /// target[r * stride ..< +16] += round(sums[r * 16 ..< +16] * scale) for each row r.
    @inline(never)
    static func addFixedPoint(_ sums: UnsafePointer<Float>, rows: Int, into target: UnsafeMutablePointer<Int64>, stride: Int) {
        for r in 0..<rows { FixedPoint.accumulate(load16(sums + r * 16), into: target + r * stride) }
    }

    /// 16 input channels x 16 output channels of one tap: 16 accumulators over one image's pixels,
    /// stored to `sums` ([16][16]); with `resume`, starting from what `sums` holds.
    @inline(__always)
    static func accumulate16(
        image: UnsafePointer<Float>, grad: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>, resume: Bool,
        ci0: Int, co0: Int, rows: ClosedRange<Int>, columns: ClosedRange<Int>, ky: Int, kx: Int, shape s: Conv3x3Shape
    ) {
        let (wd, cin, cout, stride, wo) = (s.width, s.inChannels, s.outChannels, s.stride, s.outWidth)
        var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
        var a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0
        if resume {
            a0 = load16(sums); a1 = load16(sums + 16); a2 = load16(sums + 32); a3 = load16(sums + 48)
            a4 = load16(sums + 64); a5 = load16(sums + 80); a6 = load16(sums + 96); a7 = load16(sums + 112)
            a8 = load16(sums + 128); a9 = load16(sums + 144); a10 = load16(sums + 160); a11 = load16(sums + 176)
            a12 = load16(sums + 192); a13 = load16(sums + 208); a14 = load16(sums + 224); a15 = load16(sums + 240)
        }
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
        store16(a0, sums); store16(a1, sums + 16); store16(a2, sums + 32); store16(a3, sums + 48)
        store16(a4, sums + 64); store16(a5, sums + 80); store16(a6, sums + 96); store16(a7, sums + 112)
        store16(a8, sums + 128); store16(a9, sums + 144); store16(a10, sums + 160); store16(a11, sums + 176)
        store16(a12, sums + 192); store16(a13, sums + 208); store16(a14, sums + 224); store16(a15, sums + 240)
    }
}
