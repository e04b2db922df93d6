import TensorCore

/// 3x3 convolution, padding 1, no bias (batch norm follows every one), stride 1 or 2.
public final class Convolution: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    /// The first layer's input is the image: its gradient is never needed.
    public let computesInputGradient: Bool
    public let weights: ParameterView
    private let store: ParameterStore
    private let pool: ComputePool

    private var input: Tensor?  // [N, H, W, Cin], kept for backward-weights
    private var output: Tensor?  // [N, H/s, W/s, Cout]
    private var scratch = UnsafeMutablePointer<Int64>.allocate(capacity: 1)  // per-thread partial sums
    private var scratchCapacity = 0
    private let transposed: FloatStorage  // [3][3][Cout][Cin]

    public init(
        _ name: String, inChannels: Int, outChannels: Int, stride: Int,
        computesInputGradient: Bool = true, store: ParameterStore, pool: ComputePool
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.computesInputGradient = computesInputGradient
        self.store = store
        self.pool = pool
        weights = store.reserve(
            "\(name).weight", count: 9 * inChannels * outChannels,
            initializer: .he(fanIn: 9 * inChannels))
        transposed = FloatStorage(count: 9 * inChannels * outChannels)
    }

    deinit { scratch.deallocate() }

    private func shape(of x: Tensor) -> Conv3x3Shape {
        let d = x.nhwc
        precondition(d.c == inChannels, "convolution expects \(inChannels) channels, got \(d.c)")
        return Conv3x3Shape(batch: d.n, height: d.h, width: d.w, inChannels: inChannels, outChannels: outChannels, stride: stride)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        convolve(x, mode: mode, statistics: nil)
    }

    /// This convolution and the batch norm after it (with the identity `shortcut` and final ReLU
    /// of a residual block, when given). Training: the convolution hands batch norm its statistics
    /// (one pass over memory fewer); inference: one fused pass (`forwardInference`).
    public func forward(_ x: Tensor, mode: Mode, norm: BatchNorm, shortcut: Tensor? = nil) throws -> Tensor {
        guard mode == .training else {
            return forwardInference(x, norm: norm, residual: shortcut, relu: norm.fusedReLU || shortcut != nil)
        }
        let y = convolve(x, mode: mode, statistics: norm.statisticsBuffer(batch: x.shape[0]))
        return try norm.forward(y, mode: mode, shortcut: shortcut, statisticsComputed: true)
    }

    private func convolve(_ x: Tensor, mode: Mode, statistics: UnsafeMutablePointer<Double>?) -> Tensor {
        let s = shape(of: x)
        let y = Tensor.reusing(output, shape: s.outputShape)
        pool.measure(
            "conv \(s.inChannels)->\(s.outChannels)/\(s.stride) \(s.outHeight)x\(s.outWidth) forward",
            flops: 2 * Double(s.macs), bytes: 4 * Double(x.count + y.count)
        ) {
            Conv3x3.forward(
                input: x.pointer, weights: store.pointer(weights), output: y.pointer, shape: s,
                statistics: statistics, pool: pool)
        }
        output = y
        input = mode == .training ? x : nil
        return y
    }

    /// Inference with the following batch norm (running statistics), an optional identity
    /// shortcut and an optional ReLU applied as each output vector is stored: one pass over
    /// memory instead of three, bitwise equal to running the layers one after another.
    public func forwardInference(_ x: Tensor, norm: BatchNorm, residual: Tensor?, relu: Bool) -> Tensor {
        let s = shape(of: x)
        precondition(norm.channels == outChannels, "batch norm of \(norm.channels) channels after \(outChannels)")
        precondition(residual.map { $0.shape == s.outputShape } ?? true, "residual must have the output's shape")
        let y = Tensor.reusing(output, shape: s.outputShape)
        let (scale, shift) = norm.inferenceAffine()
        let name =
            "conv \(s.inChannels)->\(s.outChannels)/\(s.stride) \(s.outHeight)x\(s.outWidth) forward + bn"
            + (residual == nil ? "" : " + add") + (relu ? " + relu" : "")
        pool.measure(name, flops: 2 * Double(s.macs), bytes: 4 * Double(x.count + y.count * (residual == nil ? 1 : 2))) {
            scale.withUnsafeBufferPointer { scale in
                shift.withUnsafeBufferPointer { shift in
                    let epilogue = Conv3x3Epilogue(
                        scale: scale.baseAddress!, shift: shift.baseAddress!,
                        residual: residual.map { UnsafePointer($0.pointer) }, relu: relu)
                    Conv3x3.forward(
                        input: x.pointer, weights: store.pointer(weights), output: y.pointer, shape: s,
                        epilogue: epilogue, pool: pool)
                }
            }
        }
        output = y
        input = nil
        return y
    }

    public func backward(_ dy: Tensor) throws -> Tensor {
        try backward(dy, adding: nil)
    }

    /// With `shortcutGradient` (stride 1, the input's shape), the input gradient is
    /// `conv^T(dy) + shortcutGradient`, added as the kernel stores instead of in a pass of its own.
    /// With `norm` (the batch norm whose output is this convolution's input), a stride-1 kernel also
    /// writes the sums that batch norm's backward needs from the finished input gradient.
    public func backward(_ dy: Tensor, adding shortcutGradient: Tensor?, summingFor norm: BatchNorm? = nil) throws -> Tensor {
        guard let x = input else { preconditionFailure("backward without a training forward") }
        let s = shape(of: x)
        let needed = Conv3x3.weightGradientScratchCount(s, pool: pool)
        if scratchCapacity < needed {
            scratch.deallocate()
            scratch = .allocate(capacity: needed)
            scratchCapacity = needed
        }
        guard computesInputGradient else {
            backwardWeights(x: x, dy: dy, shape: s)
            return dy
        }
        let dx = store.gradientBuffers.take(shape: s.inputShape)
        precondition(shortcutGradient.map { $0.shape == s.inputShape } ?? true, "shortcut gradient must have the input's shape")
        let gradientSums = stride == 1 ? norm?.prepareGradientSums(shape: s.inputShape) : nil
        let adds = (shortcutGradient == nil ? "" : " + add") + (gradientSums == nil ? "" : " + bn sums")
        pool.measure(
            "conv \(s.inChannels)->\(s.outChannels)/\(s.stride) \(s.outHeight)x\(s.outWidth) backward-data\(adds)",
            flops: 2 * Double(s.macs), bytes: 4 * Double(dx.count * (shortcutGradient == nil ? 1 : 2) + dy.count)
        ) {
            Conv3x3.backwardData(
                outputGradient: dy.pointer, weights: store.pointer(weights), inputGradient: dx.pointer,
                transposedScratch: transposed.pointer, adding: shortcutGradient.map { UnsafePointer($0.pointer) },
                gradientSums: gradientSums, shape: s, pool: pool)
        }
        // The input gradient first: with its sums written, a synchronized batch norm sends them
        // while this layer computes its weight gradient, which depends on neither (same bits).
        if gradientSums != nil { try norm?.startBackwardReduction() }
        backwardWeights(x: x, dy: dy, shape: s)
        return dx
    }

    private func backwardWeights(x: Tensor, dy: Tensor, shape s: Conv3x3Shape) {
        pool.measure(
            "conv \(s.inChannels)->\(s.outChannels)/\(s.stride) \(s.outHeight)x\(s.outWidth) backward-weights",
            flops: 2 * Double(s.macs), bytes: 4 * Double(x.count + dy.count)
        ) {
            Conv3x3.backwardWeights(
                input: x.pointer, outputGradient: dy.pointer, weightGradient: store.accumulator(weights),
                scratch: scratch, shape: s, pool: pool)
        }
    }
}
