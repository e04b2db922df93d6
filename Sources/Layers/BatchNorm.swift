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
    /// The backward totals whose sum over the replicas `startBackwardReduction` began.
    private var startedBackward: (reduction: StartedReduction, totals: [Int64])?
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

    /// Synchronized batch norm, once the convolution producing the next `dy` has written its sums
    /// (`prepareGradientSums`): adds the parameter gradients and starts the sum of the backward
    /// totals over the replicas, so that the exchange overlaps that convolution's weight gradient;
    /// the next `backward` finishes it. The same operations as `backward` alone, in the same order
    /// for this layer: bitwise the same result.
    public func startBackwardReduction() throws {
        guard let reducer, gradientSumsComputed, startedBackward == nil, let x = input, output != nil else { return }
        let images = x.nhwc.n
        BatchNormKernels.addParameterGradients(
            from: sums, images: images, inverseStd: inverseStd,
            scaleGradient: store.accumulator(scale), shiftGradient: store.accumulator(shift))
        let totals = sums.totals(batch: images, scale: FixedPoint.gradientScale)
        startedBackward = (try reducer.startAllReduce(totals), totals)
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
        startedBackward = nil  // a step that failed between start and finish left it
        let y = Tensor.reusing(output, shape: x.shape)
        let gamma = store.pointer(scale), beta = store.pointer(shift)
        let rMean = store.pointer(runningMean), rVar = store.pointer(runningVariance)
        var a = [Float](repeating: 0, count: channels), b = a  // y = a * x + b
        if mode == .training && !statisticsComputed {
            BatchNormKernels.imageStatistics(of: x, into: sums.reserve(batch: d.n), pool: pool)
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
        let relu = fusedReLU || shortcut != nil
        let keepsMask = relu && training
        if keepsMask && zeroedCapacity < x.count / 16 {
            zeroed.deallocate()
            zeroed = .allocate(capacity: x.count / 16)
            zeroedCapacity = x.count / 16
        }
        BatchNormKernels.normalize(
            x, into: y, scale: a, shift: b, shortcut: shortcut, zeroed: keepsMask ? zeroed : nil, relu: relu, pool: pool)
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
        // dz = dy masked by the fused ReLU; per image, sums of dz and dz * (x - mean) per channel,
        // unless the convolution that produced dy wrote them (`prepareGradientSums`).
        var totals: [Int64]
        if let started = startedBackward {
            startedBackward = nil
            totals = started.totals
            try reducer?.finishAllReduce(started.reduction, &totals)
        } else {
            if !sumsComputed {
                BatchNormKernels.gradientSums(of: dy, into: gradientSumsTarget(x), pool: pool)
            }
            // Parameter gradients per image, in fixed point: dbeta = sum dz, dgamma = istd * sum dz (x - mu).
            BatchNormKernels.addParameterGradients(
                from: sums, images: d.n, inverseStd: inverseStd,
                scaleGradient: store.accumulator(scale), shiftGradient: store.accumulator(shift))
            // Backward sums are as small as gradients: gradient scale.
            totals = sums.totals(batch: d.n, scale: FixedPoint.gradientScale)
            try reducer?.allReduce(&totals)
        }
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
        BatchNormKernels.inputGradient(
            dy, input: x, zeroed: relu ? UnsafePointer(zeroed) : nil, into: dx, masked: shortcutGradient,
            k: k, c: c, e: e, pool: pool)
        return dx
    }
}
