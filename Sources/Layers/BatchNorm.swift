import TensorCore

/// Batch normalization over N, H, W per channel (eps 1e-5, running-statistics momentum 0.1,
/// running variance unbiased as in PyTorch), optionally fused with the ReLU that follows it.
/// With a `reducer`, the statistics are those of the whole distributed batch (synchronized
/// batch norm); without one, of this process's images.
public final class BatchNorm: Layer {
    public var reducer: (any StatisticsReducer)?
    public let channels: Int
    public let fusedReLU: Bool
    public let momentum: Float = 0.1
    public let epsilon: Double = 1e-5
    public let scale: ParameterView  // gamma
    public let shift: ParameterView  // beta
    public let runningMean: ParameterView
    public let runningVariance: ParameterView
    private let store: ParameterStore
    private let pool: ComputePool
    private var sums: ChannelSums

    private var input: Tensor?  // [N, H, W, C]
    private var output: Tensor?  // [N, H, W, C]
    /// One bit per output value, set where the ReLU zeroed it (training with a ReLU), 16 bits per
    /// vector in the output's order: backward reads these instead of the Float output, twice.
    private var zeroed = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    private var zeroedCapacity = 0
    private var addedShortcut = false  // the last training forward was relu(bn(x) + shortcut)
    private var mean = [Float]()  // batch mean used in the last training forward
    /// `mean` where a convolution's kernel can read it (`prepareGradientSums`).
    private let meanBuffer: UnsafeMutablePointer<Float>
    /// The convolution producing the next `backward`'s dy has written its sums (`prepareGradientSums`).
    private var gradientSumsComputed = false
    private var inverseStd = [Float]()

    public init(_ name: String, channels: Int, fusedReLU: Bool, store: ParameterStore, pool: ComputePool) {
        self.channels = channels
        self.fusedReLU = fusedReLU
        self.store = store
        self.pool = pool
        sums = ChannelSums(channels: channels)
        meanBuffer = .allocate(capacity: channels)
        scale = store.reserve("\(name).weight", count: channels, initializer: .constant(1))
        shift = store.reserve("\(name).bias", count: channels, initializer: .constant(0))
        runningMean = store.reserve("\(name).running_mean", count: channels, kind: .state, initializer: .constant(0))
        runningVariance = store.reserve("\(name).running_var", count: channels, kind: .state, initializer: .constant(1))
    }

    deinit {
        sums.deallocate()
        zeroed.deallocate()
        meanBuffer.deallocate()
    }

    private func label(shortcut: Bool) -> String {
        shortcut ? "batch norm + shortcut add + relu" : fusedReLU ? "batch norm + relu" : "batch norm"
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        try forward(x, mode: mode, shortcut: nil)
    }

    /// Where the convolution before this layer writes each image's sums of x and x^2 per channel
    /// (see `Conv3x3.forward(statistics:)`); then `forward(..., statisticsComputed: true)`.
    public func statisticsBuffer(batch: Int) -> UnsafeMutablePointer<Double> { sums.reserve(batch: batch) }

    /// With a `shortcut` (same shape as `x`), the residual block's identity shortcut and final ReLU
    /// run in the normalization pass: `y = relu(bn(x) + shortcut)`, bitwise what separate passes give.
    /// `statisticsComputed`: `statisticsBuffer` already holds the sums of `x` (training only).
    public func forward(_ x: Tensor, mode: Mode, shortcut: Tensor?, statisticsComputed: Bool = false) throws -> Tensor {
        precondition(shortcut.map { $0.shape == x.shape } ?? true, "shortcut must have the input's shape")
        let passes =
            (mode == .training && !statisticsComputed ? 3.0 : 2.0) + (shortcut == nil ? 0 : 1)
            + (mode == .training && (fusedReLU || shortcut != nil) ? 1.0 / 32 : 0)  // the ReLU mask's bits
        return try pool.measure("\(label(shortcut: shortcut != nil)) forward", bytes: 4 * Double(x.count) * passes) {
            try forwardPass(x, mode: mode, shortcut: shortcut, statisticsComputed: statisticsComputed)
        }
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        try backward(dy, shortcutGradient: nil)
    }

    /// For the stride-1 backward-data convolution that will produce this layer's next `dy`
    /// (of `shape`): where and how to write the sums backward needs (see `Conv3x3GradientSums`).
    /// The next `backward` then uses them instead of reading dy and x once more.
    public func prepareGradientSums(shape: [Int]) -> Conv3x3GradientSums {
        guard let x = input, output != nil else { preconditionFailure("gradient sums without a training forward") }
        precondition(shape == x.shape, "gradient of shape \(shape) for a batch norm of input \(x.shape)")
        gradientSumsComputed = true
        return gradientSumsTarget(x)
    }

    /// Where backward's sums over dy go, and what they need: x, the mean, the ReLU's bits.
    private func gradientSumsTarget(_ x: Tensor) -> Conv3x3GradientSums {
        Conv3x3GradientSums(
            input: UnsafePointer(x.pointer), mean: UnsafePointer(meanBuffer),
            zeroed: fusedReLU || addedShortcut ? UnsafePointer(zeroed) : nil,
            sums: sums.reserve(batch: x.shape[0]))
    }

    /// After a forward with a shortcut, `shortcutGradient` receives the gradient that flows into the
    /// shortcut (the output gradient masked by the ReLU), written in the same pass as the input gradient.
    public func backward(_ dy: Tensor, shortcutGradient: Tensor?) throws -> Tensor {
        precondition((shortcutGradient != nil) == addedShortcut, "shortcutGradient goes with a forward that added a shortcut")
        let computed = gradientSumsComputed
        gradientSumsComputed = false
        return try pool.measure("\(label(shortcut: addedShortcut)) backward", bytes: Double(dy.count) * backwardBytes(sumsComputed: computed)) {
            try backwardPass(dy, shortcutGradient: shortcutGradient, sumsComputed: computed)
        }
    }

    private func forwardPass(_ x: Tensor, mode: Mode, shortcut: Tensor?, statisticsComputed: Bool) throws -> Tensor {
        let d = x.nhwc
        precondition(d.c == channels, "batch norm expects \(channels) channels, got \(d.c)")
        let y = Tensor.reusing(output, shape: x.shape)
        let gamma = store.pointer(scale), beta = store.pointer(shift)
        let rMean = store.pointer(runningMean), rVar = store.pointer(runningVariance)
        var a = [Float](repeating: 0, count: channels), b = a  // y = a * x + b
        if mode == .training && !statisticsComputed {
            // What the convolution before would have handed over (`Conv3x3.forward(statistics:)`).
            let io = UncheckedSendable((UnsafePointer(x.pointer), sums.reserve(batch: d.n)))
            let channels = self.channels
            pool.forEach(d.n) { n in
                let (xp, target) = io.value
                let imageSums = target + n * 2 * channels
                imageSums.update(repeating: 0, count: 2 * channels)
                for row in 0..<d.h {
                    Conv3x3.addRowStatistics(xp + (n * d.h + row) * d.w * d.c, pixels: d.w, channels: d.c, into: imageSums)
                }
            }
        }
        if mode == .training {
            var totals = sums.totals(batch: d.n, scale: FixedPoint.statisticsScale)
            try reducer?.allReduce(&totals)
            let (sum, sumSquares, images) = sums.decodeTotals(totals, scale: FixedPoint.statisticsScale)
            let m = Double(images) * Double(d.h * d.w)
            mean = [Float](repeating: 0, count: channels)
            inverseStd = mean
            for c in 0..<channels {
                let mu = sum[c] / m
                let variance = max(sumSquares[c] / m - mu * mu, 0)
                mean[c] = Float(mu)
                meanBuffer[c] = mean[c]
                inverseStd[c] = Float(1 / (variance + epsilon).squareRoot())
                a[c] = gamma[c] * inverseStd[c]
                b[c] = beta[c] - mean[c] * a[c]
                rMean[c] = (1 - momentum) * rMean[c] + momentum * Float(mu)
                rVar[c] = (1 - momentum) * rVar[c] + momentum * Float(variance * m / max(m - 1, 1))
            }
            input = x
        } else {
            (a, b) = inferenceAffine()
            input = nil
        }
        applyAffine(x: x, y: y, a: a, b: b, shortcut: shortcut, training: mode == .training)
        addedShortcut = mode == .training && shortcut != nil
        output = y
        return y
    }

    /// Inference-mode batch norm as `y = scale * x + shift` per channel (running statistics).
    public func inferenceAffine() -> (scale: [Float], shift: [Float]) {
        let gamma = store.pointer(scale), beta = store.pointer(shift)
        let rMean = store.pointer(runningMean), rVar = store.pointer(runningVariance)
        var a = [Float](repeating: 0, count: channels), b = a
        for c in 0..<channels {
            a[c] = gamma[c] / (rVar[c] + Float(epsilon)).squareRoot()
            b[c] = beta[c] - rMean[c] * a[c]
        }
        return (a, b)
    }

    private func applyAffine(x: Tensor, y: Tensor, a: [Float], b: [Float], shortcut: Tensor?, training: Bool) {
        let d = x.nhwc
        let pixels = d.h * d.w, relu = fusedReLU || shortcut != nil
        let keepsMask = relu && training
        if keepsMask && zeroedCapacity < x.count / 16 {
            zeroed.deallocate()
            zeroed = .allocate(capacity: x.count / 16)
            zeroedCapacity = x.count / 16
        }
        let io = UncheckedSendable((UnsafePointer(x.pointer), y.pointer, shortcut.map { UnsafePointer($0.pointer) }, keepsMask ? zeroed : nil))
        let channels = self.channels
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
                        Self.affineImage(xp, yp, shortcut: sp, zeroed: mp, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case let (sp?, nil):
                        Self.affineImage(xp, yp, shortcut: sp, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case let (nil, mp?):
                        Self.affineImage(xp, yp, shortcut: nil, zeroed: mp, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                    case (nil, nil):
                        if relu {
                            Self.affineImage(xp, yp, shortcut: nil, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: true)
                        } else {
                            Self.affineImage(
                                xp, yp, shortcut: nil, zeroed: nil, ap, bp, start: start, pixels: pixels, channels: channels, relu: false)
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

    /// Read twice (once when the sums came with dy): dy and x as Floats, the ReLU mask as bits;
    /// written: dx (and the shortcut's gradient).
    private func backwardBytes(sumsComputed: Bool) -> Double {
        (sumsComputed ? 1 : 2) * (8 + (fusedReLU || addedShortcut ? 0.125 : 0)) + 4 + (addedShortcut ? 4 : 0)
    }

    private func backwardPass(_ dy: Tensor, shortcutGradient: Tensor?, sumsComputed: Bool) throws -> Tensor {
        guard let x = input, output != nil else { preconditionFailure("backward without a training forward") }
        let d = x.nhwc
        let relu = fusedReLU || addedShortcut
        let (xp, zp, gp) = (UnsafePointer(x.pointer), UnsafePointer(zeroed), UnsafePointer(dy.pointer))
        // dz = dy masked by the fused ReLU; per image, sums of dz and dz * (x - mean) per channel,
        // unless the convolution that produced dy wrote them (`prepareGradientSums`).
        if !sumsComputed {
            let target = gradientSumsTarget(x)
            let channels = self.channels, rowLength = d.w * d.c
            pool.forEach(d.n) { n in
                let imageSums = target.sums + n * 2 * channels
                imageSums.update(repeating: 0, count: 2 * channels)
                for row in 0..<d.h {
                    let offset = (n * d.h + row) * rowLength
                    target.addRow(gp + offset, offset: offset, pixels: d.w, channels: d.c, into: imageSums)
                }
            }
        }
        // Parameter gradients per image, in fixed point: dbeta = sum dz, dgamma = istd * sum dz (x - mu).
        let dGamma = store.accumulator(scale), dBeta = store.accumulator(shift)
        for n in 0..<d.n {
            let s = sums.first(n), q = sums.second(n)
            for ch in 0..<channels {
                dBeta[ch] &+= FixedPoint.encode(s[ch], scale: FixedPoint.gradientScale)
                dGamma[ch] &+= FixedPoint.encode(q[ch] * Double(inverseStd[ch]), scale: FixedPoint.gradientScale)
            }
        }
        // Backward sums are as small as gradients: gradient scale.
        var totals = sums.totals(batch: d.n, scale: FixedPoint.gradientScale)
        try reducer?.allReduce(&totals)
        let (sumsDz, sumsDzCentered, images) = sums.decodeTotals(totals, scale: FixedPoint.gradientScale)
        let m = Float(Double(images) * Double(d.h * d.w))
        let gamma = store.pointer(scale)
        // dx = k * dz - c * x + e, with k = gamma * istd, c = k * istd^2 * mean(dz * (x - mu)),
        // e = c * mu - k * mean(dz).
        var k = [Float](repeating: 0, count: channels), c = k, e = k
        for ch in 0..<channels {
            let istd = inverseStd[ch]
            let sumDz = Float(sumsDz[ch]), sumDzCentered = Float(sumsDzCentered[ch])
            k[ch] = gamma[ch] * istd
            c[ch] = k[ch] * istd * istd * sumDzCentered / m
            e[ch] = c[ch] * mean[ch] - k[ch] * sumDz / m
        }
        let dx = store.gradientBuffers.take(shape: x.shape)
        let pixels = d.h * d.w
        let out = UncheckedSendable((dx.pointer, shortcutGradient?.pointer))
        let coefficients = UncheckedSendable((k, c, e))
        pool.forEach(d.n) { n in
            let (k, c, e) = coefficients.value
            k.withUnsafeBufferPointer { kp in
                c.withUnsafeBufferPointer { cp in
                    e.withUnsafeBufferPointer { ep in
                        let (dxp, masked) = out.value
                        let start = n * pixels * d.c
                        let (kb, cb, eb) = (kp.baseAddress!, cp.baseAddress!, ep.baseAddress!)
                        switch (relu, masked) {
                        case let (true, masked?):
                            Self.inputGradientImage(gp, xp, zeroed: zp, dxp, masked: masked, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        case (true, nil):
                            Self.inputGradientImage(gp, xp, zeroed: zp, dxp, masked: nil, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        case (false, _):
                            Self.inputGradientImage(gp, xp, zeroed: nil, dxp, masked: nil, kb, cb, eb, start: start, pixels: pixels, channels: d.c)
                        }
                    }
                }
            }
        }
        return dx
    }

    /// `dx = k * dz - c * x + e` over one image, pixel after pixel, with `dz` = dy masked by the
    /// ReLU's bits (and written to `masked`, the shortcut's gradient).
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
