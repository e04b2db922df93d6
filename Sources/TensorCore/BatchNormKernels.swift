/// Batch norm's memory-bound passes over NHWC tensors, split over images: the per-image channel
/// sums, the normalization `y = [relu](a * x + b [+ shortcut])` and the input gradient
/// `dx = k * dz - c * x + e`. The layer (Layers.BatchNorm) computes the per-channel coefficients;
/// these loops only stream the tensors. Channels are a multiple of 16 (one vector per block).
public enum BatchNormKernels {
    /// Per image, the sums of x and x^2 per channel, into `sums` ([image][2][channels]): what the
    /// convolution before would have handed over (`Conv3x3.forward(statistics:)`), same order.
    public static func imageStatistics(of x: Tensor, into sums: UnsafeMutablePointer<Double>, pool: ComputePool) {
        let d = x.nhwc
        let io = UncheckedSendable((UnsafePointer(x.pointer), sums))
        pool.forEach(d.n) { n in
            let (xp, target) = io.value
            let imageSums = target + n * 2 * d.c
            imageSums.update(repeating: 0, count: 2 * d.c)
            for row in 0..<d.h {
                Conv3x3.addRowStatistics(xp + (n * d.h + row) * d.w * d.c, pixels: d.w, channels: d.c, into: imageSums)
            }
        }
    }

    /// `y = [relu](a * x + b [+ shortcut])` per channel; with `zeroed` (one UInt16 per 16 values),
    /// also the bits of the values the ReLU zeroed. A shortcut or a mask implies the ReLU.
    public static func normalize(
        _ x: Tensor, into y: Tensor, scale a: [Float], shift b: [Float], shortcut: Tensor?,
        zeroed: UnsafeMutablePointer<UInt16>?, relu: Bool, pool: ComputePool
    ) {
        let d = x.nhwc
        let pixels = d.h * d.w, channels = d.c
        let io = UncheckedSendable((UnsafePointer(x.pointer), y.pointer, shortcut.map { UnsafePointer($0.pointer) }, zeroed))
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                let coefficients = UncheckedSendable((a.baseAddress!, b.baseAddress!))
                pool.forEach(d.n) { n in
                    let (xp, yp, sp, mp) = io.value
                    let (ap, bp) = coefficients.value
                    let start = n * pixels * channels
                    // One call per variant, so that each loop compiles without branches inside.
                    switch (sp, mp) {
                    case let (sp?, mp?):
                        affineImage(xp, yp, shortcut: sp, zeroed: mp, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case let (sp?, nil):
                        affineImage(xp, yp, shortcut: sp, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case let (nil, mp?):
                        affineImage(xp, yp, shortcut: nil, zeroed: mp, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case (nil, nil):
                        if relu {
                            affineImage(xp, yp, shortcut: nil, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                        } else {
                            affineImage(xp, yp, shortcut: nil, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: false)
                        }
                    }
                }
            }
        }
    }

    /// `y = [relu](a * x + b [+ shortcut])` over one image, pixel after pixel: the tensors stream
    /// through memory in order (a channel-block-major loop strides by whole pixels).
    @inline(__always)
    private static func affineImage(
        _ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>,
        shortcut sp: UnsafePointer<Float>?, zeroed mp: UnsafeMutablePointer<UInt16>?,
        _ ap: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
        start: Int, pixels: Int, channels: Int, relu: Bool
    ) {
        var offset = start
        for _ in 0..<pixels {
            for block in stride(from: 0, to: channels, by: 16) {
                let o = offset + block
                var v = load16(xp + o) * load16(ap + block) + load16(bp + block)
                if let sp { v += load16(sp + o) }
                if relu { v = pointwiseMax(v, .zero) }
                if let mp { mp[o / 16] = zeroedBits16(v) }
                store16(v, yp + o)
            }
            offset += channels
        }
    }

    /// Per image, the sums backward needs (sum dz, sum dz * (x - mean), with dz = dy masked by
    /// the ReLU's bits), into `target.sums`: the same row function the stride-1 backward-data
    /// convolution uses when it writes them itself, so both give the same bits.
    public static func gradientSums(of dy: Tensor, into target: Conv3x3GradientSums, pool: ComputePool) {
        let d = dy.nhwc
        let gp = UnsafePointer(dy.pointer), rowLength = d.w * d.c
        let io = UncheckedSendable(gp)
        pool.forEach(d.n) { n in
            let imageSums = target.sums + n * 2 * d.c
            imageSums.update(repeating: 0, count: 2 * d.c)
            for row in 0..<d.h {
                let offset = (n * d.h + row) * rowLength
                target.addRow(io.value + offset, offset: offset, pixels: d.w, channels: d.c, into: imageSums)
            }
        }
    }

    /// Per image, the sums of `gradientSums` as fixed-point parameter gradients:
    /// dbeta += sum dz, dgamma += inverseStd * sum dz (x - mean), in image order.
    public static func addParameterGradients(
        from sums: ChannelSums, images: Int, inverseStd: [Float],
        scaleGradient dGamma: UnsafeMutablePointer<Int64>, shiftGradient dBeta: UnsafeMutablePointer<Int64>
    ) {
        for n in 0..<images {
            let s = sums.first(n), q = sums.second(n)
            for ch in 0..<sums.channels {
                dBeta[ch] &+= FixedPoint.encode(s[ch], scale: FixedPoint.gradientScale)
                dGamma[ch] &+= FixedPoint.encode(q[ch] * Double(inverseStd[ch]), scale: FixedPoint.gradientScale)
            }
        }
    }

    /// `dx = k * dz - c * x + e` per channel, with `dz` = dy masked by the ReLU's bits (`zeroed`,
    /// nil without a ReLU); with `masked`, dz is written there too (the shortcut's gradient).
    public static func inputGradient(
        _ dy: Tensor, input x: Tensor, zeroed: UnsafePointer<UInt16>?, into dx: Tensor, masked: Tensor?,
        k: [Float], c: [Float], e: [Float], pool: ComputePool
    ) {
        let d = x.nhwc
        let pixels = d.h * d.w
        let io = UncheckedSendable((UnsafePointer(dy.pointer), UnsafePointer(x.pointer), zeroed, dx.pointer, masked?.pointer))
        let coefficients = UncheckedSendable((k, c, e))
        pool.forEach(d.n) { n in
            let (k, c, e) = coefficients.value
            k.withUnsafeBufferPointer { kp in
                c.withUnsafeBufferPointer { cp in
                    e.withUnsafeBufferPointer { ep in
                        let (gp, xp, zp, dxp, masked) = io.value
                        let start = n * pixels * d.c
                        let (kb, cb, eb) = (kp.baseAddress!, cp.baseAddress!, ep.baseAddress!)
                        switch (zp, masked) {
                        case let (zp?, masked?):
                            inputGradientImage(gp, xp, zeroed: zp, dxp, masked: masked, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        case let (zp?, nil):
                            inputGradientImage(gp, xp, zeroed: zp, dxp, masked: nil, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        case (nil, _):
                            inputGradientImage(gp, xp, zeroed: nil, dxp, masked: nil, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        }
                    }
                }
            }
        }
    }

    /// `dx = k * dz - c * x + e` over one image, pixel after pixel.
    @inline(__always)
    private static func inputGradientImage(
        _ gp: UnsafePointer<Float>, _ xp: UnsafePointer<Float>,
        zeroed zp: UnsafePointer<UInt16>?, _ dxp: UnsafeMutablePointer<Float>,
        masked: UnsafeMutablePointer<Float>?,
        _ kp: UnsafePointer<Float>, _ cp: UnsafePointer<Float>, _ ep: UnsafePointer<Float>,
        start: Int, pixels: Int, channels: Int
    ) {
        var offset = start
        for _ in 0..<pixels {
            for block in stride(from: 0, to: channels, by: 16) {
                let o = offset + block
                var dz = load16(gp + o)
                if let zp { dz = zeroingLanes16(dz, bits: zp[o / 16]) }
                store16(load16(kp + block) * dz - load16(cp + block) * load16(xp + o) + load16(ep + block), dxp + o)
                if let masked { store16(dz, masked + o) }
            }
            offset += channels
        }
    }
}
