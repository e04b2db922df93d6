import CPUFeatures

/// Direct 3x3 convolution kernels with SIMD16 accumulators (see docs/engine.md, and
/// Conv3x3Tiles.swift for the forward tiles).
public enum Conv3x3 {
    /// Eight-pixel dot products, `acc[p] += sum_c p_p[c] * w[c * wStride ..< +16]`: the strided
    /// backward-data scatter's tile.
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
    /// With an `epilogue`, each output vector is finished before it is stored (see `Conv3x3Epilogue`).
    /// Tiles: 16 pixels x 16 channels for the 16 -> 16 stride-1 layers, 8 pixels x 32 channels
    /// where Cout allows, 8 pixels x 16 channels for the rest; stride-1 tiles of 8 or 16 pixels
    /// broadcast each input value once per kernel row, the others take `tapRow8General`. Every
    /// tile gives the same bits.
    ///
    /// With `statistics` ([image][2][Cout] Doubles), each image's per-channel sums of y and y^2
    /// are written there for the batch norm that follows, from each output row while it is still
    /// in L1 (saving batch norm a pass over memory): every row summed pixel by pixel in Float, the
    /// rows in Double, the order `ChannelSums` uses, so the statistics are bitwise the same.
    ///
    /// With `gradientSums` (backward-data feeding a batch norm's backward), the sums that batch
    /// norm's backward needs are taken from each finished row the same way (see `Conv3x3GradientSums`).
    ///
    /// Longer than the house limit of 80 lines on purpose: each tile shape's row loop is unrolled
    /// in this one body, inside the one parallel closure, so that every variant compiles to
    /// straight-line code with its pointers and counts hoisted (deliberate kernel unrolling).
    public static func forward(
        input x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>,
        shape s: Conv3x3Shape, epilogue: Conv3x3Epilogue? = nil, statistics: UnsafeMutablePointer<Double>? = nil,
        gradientSums: Conv3x3GradientSums? = nil, pool: ComputePool
    ) {
        precondition(statistics == nil || epilogue == nil, "statistics are of the plain convolution output")
        precondition(statistics == nil || gradientSums == nil, "statistics or gradient sums, not both")
        let (h, wd, cin, cout, stride) = (s.height, s.width, s.inChannels, s.outChannels, s.stride)
        let (ho, wo) = (s.outHeight, s.outWidth)
        let zero = UnsafePointer(zeroRow.pointer)
        let io = UncheckedSendable((x, w, y, statistics ?? gradientSums?.sums))
        let wideTiles = cin == 16 && cout == 16 && stride == 1
        pool.forEach(s.batch) { n in
            let (x, w, y, statistics) = io.value
            let image = x + n * h * wd * cin
            let imageStatistics = statistics.map { $0 + n * 2 * cout }
            imageStatistics?.update(repeating: 0, count: 2 * cout)
            /// Stores (or finishes through the epilogue) eight pixels' vectors of one channel block.
            /// The accumulators come by reference: this function is not always inlined, and eight
            /// SIMD16 arguments by value went through the stack in 128-bit pieces.
            @inline(__always) func store(_ v: inout Accumulators8, pixels: Int, channel: Int, at out: UnsafeMutablePointer<Float>) {
                if let epilogue {
                    let offset = y.distance(to: out)
                    epilogue.finish(
                        &v, pixels: pixels, channel: channel,
                        residual: epilogue.residual.map { $0 + offset }, pixelStride: cout, into: out)
                    return
                }
                store16(v.0, out)
                if pixels > 1 { store16(v.1, out + cout) }
                if pixels > 2 { store16(v.2, out + 2 * cout) }
                if pixels > 3 { store16(v.3, out + 3 * cout) }
                if pixels > 4 { store16(v.4, out + 4 * cout) }
                if pixels > 5 { store16(v.5, out + 5 * cout) }
                if pixels > 6 { store16(v.6, out + 6 * cout) }
                if pixels > 7 { store16(v.7, out + 7 * cout) }
            }
            /// A tile's second operands (the residual its epilogue adds, the batch norm input the
            /// row's gradient sums read) come from memory: each of the three kernel rows asks for a
            /// third of them ahead of use. Asked for a whole output row at once, the requests
            /// outnumbered the line fill buffers and stalled the kernel (8 % of its time).
            let secondOperands = (epilogue?.residual, gradientSums?.input)
            let prefetches = secondOperands.0 != nil || secondOperands.1 != nil
            @inline(__always) func prefetchTilePart(_ part: Int, offset: Int, pixels: Int, channels: Int) {
                let bytes = channels * 4
                for p in (part * pixels / 3)..<((part + 1) * pixels / 3) {
                    if let residual = secondOperands.0 { rddp_prefetch(residual + offset + p * cout, bytes) }
                    if let input = secondOperands.1 { rddp_prefetch(input + offset + p * cout, bytes) }
                }
            }
            for oy in 0..<ho {
                let outRow = y + ((n * ho + oy) * wo) * cout
                let rowOffset = y.distance(to: outRow)
                var ox0 = 0
                if wideTiles {
                    while ox0 + 16 <= wo {
                        let zero8 = SIMD16<Float>()
                        var a = (zero8, zero8, zero8, zero8, zero8, zero8, zero8, zero8), b = a
                        for ky in 0..<3 {
                            if prefetches { prefetchTilePart(ky, offset: rowOffset + ox0 * 16, pixels: 16, channels: 16) }
                            let iy = oy + ky - 1
                            if iy < 0 || iy >= h { continue }
                            let row = image + (iy * wd + ox0 - 1) * 16
                            let taps = w + ky * 3 * 256
                            if ox0 == 0 && ox0 + 16 == wd {
                                tapRow16x16(row, weights: taps, skipFirst: true, skipLast: true, &a, &b)
                            } else if ox0 == 0 {
                                tapRow16x16(row, weights: taps, skipFirst: true, skipLast: false, &a, &b)
                            } else if ox0 + 16 == wd {
                                tapRow16x16(row, weights: taps, skipFirst: false, skipLast: true, &a, &b)
                            } else {
                                tapRow16x16(row, weights: taps, skipFirst: false, skipLast: false, &a, &b)
                            }
                        }
                        let out = outRow + ox0 * 16
                        store(&a, pixels: 8, channel: 0, at: out)
                        store(&b, pixels: 8, channel: 0, at: out + 8 * 16)
                        ox0 += 16
                    }
                }
                while ox0 < wo {
                    let pixels = min(8, wo - ox0)
                    // Stride 1 and a full tile: the 10 input columns are consecutive and each is
                    // broadcast once per kernel row.
                    let reuse = stride == 1 && pixels == 8
                    // The network's stride-2 layers: 16 -> 32 and 32 -> 64, even widths, full tiles.
                    let stride2Pair =
                        stride == 2 && pixels == 8 && wd % 2 == 0
                        && ((cin, cout) == (16, 32) || (cin, cout) == (32, 64))
                    let (first, last) = (ox0 == 0, ox0 + 8 == wd)
                    var block = 0
                    while block < cout / 16 {
                        let zero8 = SIMD16<Float>()
                        var a = (zero8, zero8, zero8, zero8, zero8, zero8, zero8, zero8), b = a
                        let pair = block + 2 <= cout / 16
                        for ky in 0..<3 {
                            if prefetches {
                                prefetchTilePart(ky, offset: rowOffset + ox0 * cout + block * 16, pixels: pixels, channels: pair ? 32 : 16)
                            }
                            let iy = oy * stride + ky - 1
                            if iy < 0 || iy >= h { continue }
                            let inRow = UnsafePointer(image + iy * wd * cin)
                            let taps = w + ky * 3 * cin * cout + block * 16
                            if reuse {
                                let row = inRow + (ox0 - 1) * cin
                                switch (cin, cout, pair) {
                                case (32, 32, true): tapRow8Pair(Channels32x32.self, row, weights: taps, first: first, last: last, &a, &b)
                                case (64, 64, true): tapRow8Pair(Channels64x64.self, row, weights: taps, first: first, last: last, &a, &b)
                                default:
                                    tapRow8Edges(
                                        row, weights: taps, inChannels: cin, outChannels: cout, pair: pair,
                                        first: first, last: last, &a, &b)
                                }
                            } else if stride2Pair {
                                let row = inRow + (2 * ox0 - 1) * cin
                                if cin == 16 {
                                    tapRow8Stride2Pair(Channels16x32.self, row, weights: taps, first: first, &a, &b)
                                } else {
                                    tapRow8Stride2Pair(Channels32x64.self, row, weights: taps, first: first, &a, &b)
                                }
                            } else {
                                @inline(__always) func tapPixels(_ kx: Int) -> Pixels8 {
                                    @inline(__always) func pixel(_ p: Int) -> UnsafePointer<Float> {
                                        let ix = (ox0 + p) * stride + kx - 1
                                        return (p < pixels && ix >= 0 && ix < wd) ? inRow + ix * cin : zero
                                    }
                                    return (pixel(0), pixel(1), pixel(2), pixel(3), pixel(4), pixel(5), pixel(6), pixel(7))
                                }
                                let q = (tapPixels(0), tapPixels(1), tapPixels(2))
                                if pair {
                                    tapRow8General(q, weights: taps, inChannels: cin, outChannels: cout, pair: true, &a, &b)
                                } else {
                                    tapRow8General(q, weights: taps, inChannels: cin, outChannels: cout, pair: false, &a, &b)
                                }
                            }
                        }
                        let out = outRow + ox0 * cout + block * 16
                        store(&a, pixels: pixels, channel: block * 16, at: out)
                        if pair {
                            store(&b, pixels: pixels, channel: block * 16 + 16, at: out + 16)
                        }
                        block += pair ? 2 : 1
                    }
                    ox0 += 8
                }
                if let imageStatistics {
                    if let gradientSums {
                        gradientSums.addRow(
                            UnsafePointer(outRow), offset: y.distance(to: outRow), pixels: wo, channels: cout,
                            into: imageStatistics)
                    } else {
                        addRowStatistics(UnsafePointer(outRow), pixels: wo, channels: cout, into: imageStatistics)
                    }
                }
            }
        }
    }

    /// sums[c] += sum of the row's y[., c], sums[Cout + c] += sum of y^2 (Float over the row).
    /// Batch norm's own forward sums use this too, so both orders are the same by construction.
    @inlinable @inline(__always)
    public static func addRowStatistics(_ row: UnsafePointer<Float>, pixels: Int, channels: Int, into sums: UnsafeMutablePointer<Double>) {
        for block in 0..<(channels / 16) {
            var s = SIMD16<Float>(), q = s
            var p = row + block * 16
            for _ in 0..<pixels {
                let v = load16(p)
                s += v
                q.addProduct(v, v)
                p += channels
            }
            let first = UnsafeMutableRawPointer(sums + block * 16), second = UnsafeMutableRawPointer(sums + channels + block * 16)
            first.storeBytes(of: first.loadUnaligned(as: SIMD16<Double>.self) + SIMD16<Double>(s), as: SIMD16<Double>.self)
            second.storeBytes(of: second.loadUnaligned(as: SIMD16<Double>.self) + SIMD16<Double>(q), as: SIMD16<Double>.self)
        }
    }
}

/// What batch norm's backward sums over its output gradient dy, per image and channel: with the
/// ReLU after it masked in (dz = dy where the ReLU passed, else 0), `sum dz` and
/// `sum dz * (x - mean)`. The backward-data convolution that produces dy adds each finished row
/// while it is still in L1, in batch norm's own order (each row pixel by pixel in Float, the rows
/// in Double), so batch norm skips a pass over dy and x and the sums are bitwise its own.
public struct Conv3x3GradientSums: @unchecked Sendable {
    /// Batch norm's forward input, NHWC with dy's shape.
    public let input: UnsafePointer<Float>
    public let mean: UnsafePointer<Float>
    /// The ReLU's bits (see `zeroedBits16`), one UInt16 per 16 values; nil: no ReLU.
    public let zeroed: UnsafePointer<UInt16>?
    /// [image][2][channels]: sum dz, then sum dz * (x - mean).
    public let sums: UnsafeMutablePointer<Double>

    public init(
        input: UnsafePointer<Float>, mean: UnsafePointer<Float>, zeroed: UnsafePointer<UInt16>?,
        sums: UnsafeMutablePointer<Double>
    ) {
        self.input = input
        self.mean = mean
        self.zeroed = zeroed
        self.sums = sums
    }

    /// Adds one row of dy (`row`, at element `offset` of the tensor) to one image's `target` sums.
    /// Batch norm's own backward sums use this too, so both orders are the same by construction.
    @inlinable @inline(__always)
    public func addRow(_ row: UnsafePointer<Float>, offset: Int, pixels: Int, channels: Int, into target: UnsafeMutablePointer<Double>) {
        for block in 0..<(channels / 16) {
            var s = SIMD16<Float>(), q = s
            let mu = load16(mean + block * 16)
            var at = offset + block * 16
            for _ in 0..<pixels {
                var dz = load16(row + (at - offset))
                if let zeroed { dz = zeroingLanes16(dz, bits: zeroed[at / 16]) }
                s += dz
                q.addProduct(dz, load16(input + at) - mu)
                at += channels
            }
            let first = UnsafeMutableRawPointer(target + block * 16), second = UnsafeMutableRawPointer(target + channels + block * 16)
            first.storeBytes(of: first.loadUnaligned(as: SIMD16<Double>.self) + SIMD16<Double>(s), as: SIMD16<Double>.self)
            second.storeBytes(of: second.loadUnaligned(as: SIMD16<Double>.self) + SIMD16<Double>(q), as: SIMD16<Double>.self)
        }
    }
}

/// What the forward convolution does to each output vector before storing it, so that an
/// inference-mode batch norm, an identity shortcut and the ReLU need no pass of their own over
/// memory: `y = max(acc * scale + shift + residual, 0)`, evaluated in that order, which makes the
/// result bitwise equal to running the three layers one after another. Without an affine,
/// `y = acc + residual` is the backward pass adding a shortcut's gradient.
public struct Conv3x3Epilogue: @unchecked Sendable {
    /// Per output channel; nil: no affine.
    public let scale: UnsafePointer<Float>?
    public let shift: UnsafePointer<Float>?
    /// Added after the affine; same NHWC shape as the output.
    public let residual: UnsafePointer<Float>?
    public let relu: Bool

    public init(scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, residual: UnsafePointer<Float>?, relu: Bool) {
        self.scale = scale
        self.shift = shift
        self.residual = residual
        self.relu = relu
    }

    /// `y = acc + residual`.
    public init(adding residual: UnsafePointer<Float>) {
        scale = nil
        shift = nil
        self.residual = residual
        relu = false
    }

    @inline(__always)
    func finish(
        _ a: inout Conv3x3.Accumulators8,
        pixels: Int, channel: Int, residual: UnsafePointer<Float>?, pixelStride: Int, into out: UnsafeMutablePointer<Float>
    ) {
        @inline(__always) func store(_ acc: SIMD16<Float>, _ p: Int) {
            var v = acc
            if let scale, let shift { v = v * load16(scale + channel) + load16(shift + channel) }
            if let residual { v += load16(residual + p * pixelStride) }
            if relu { v = pointwiseMax(v, .zero) }
            store16(v, out + p * pixelStride)
        }
        store(a.0, 0)
        if pixels > 1 { store(a.1, 1) }
        if pixels > 2 { store(a.2, 2) }
        if pixels > 3 { store(a.3, 3) }
        if pixels > 4 { store(a.4, 4) }
        if pixels > 5 { store(a.5, 5) }
        if pixels > 6 { store(a.6, 6) }
        if pixels > 7 { store(a.7, 7) }
    }
}
