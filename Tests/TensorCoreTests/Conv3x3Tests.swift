import Foundation
import TensorCore
import Testing

/// Shapes cover the network's layers (first layer with 3 input channels, stride 2 transitions,
/// 16/32/64 channels), widths that are not a multiple of 8, and every forward tile: 16 pixels x
/// 16 channels (16 -> 16 with width >= 16, incl. a width of exactly 16 and one of 16 + 3); stride-1
/// rows of 8 pixels x 32 channels (32 -> 32 and 64 -> 64 with literal counts, at the left edge, the
/// right edge and both; Cout 48 also takes one 16-channel block); the stride-2 rows of 16 -> 32 and
/// 32 -> 64 (even widths; an odd one takes the general tile); and the general 8 x 32 and 8 x 16.
private let shapes: [Conv3x3Shape] = [
    Conv3x3Shape(batch: 2, height: 5, width: 35, inChannels: 16, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 2, height: 3, width: 16, inChannels: 16, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 2, height: 4, width: 13, inChannels: 16, outChannels: 48, stride: 1),
    Conv3x3Shape(batch: 2, height: 8, width: 8, inChannels: 3, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 3, height: 8, width: 8, inChannels: 16, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 2, height: 8, width: 8, inChannels: 16, outChannels: 32, stride: 2),
    Conv3x3Shape(batch: 2, height: 6, width: 6, inChannels: 32, outChannels: 64, stride: 2),
    Conv3x3Shape(batch: 2, height: 5, width: 11, inChannels: 64, outChannels: 64, stride: 1),
    Conv3x3Shape(batch: 9, height: 4, width: 4, inChannels: 32, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 2, height: 3, width: 16, inChannels: 32, outChannels: 32, stride: 1),
    Conv3x3Shape(batch: 2, height: 2, width: 8, inChannels: 64, outChannels: 64, stride: 1),
    Conv3x3Shape(batch: 2, height: 4, width: 16, inChannels: 16, outChannels: 32, stride: 2),
    Conv3x3Shape(batch: 2, height: 3, width: 34, inChannels: 32, outChannels: 64, stride: 2),
    Conv3x3Shape(batch: 2, height: 3, width: 17, inChannels: 16, outChannels: 32, stride: 2),
]

/// Per image and output channel of `s`'s output, `sum value` and `sum value * factor` in batch
/// norm's order: each row pixel by pixel in Float, the rows in Double ([image][2][channels]).
/// The closures take the element's index in the NHWC output and its channel.
private func batchNormOrderSums(_ s: Conv3x3Shape, value: (Int, Int) -> Float, factor: (Int, Int) -> Float) -> [Double] {
    let c = s.outChannels
    var sums = [Double](repeating: 0, count: s.batch * 2 * c)
    for n in 0..<s.batch {
        for channel in 0..<c {
            for row in 0..<s.outHeight {
                var first: Float = 0, second: Float = 0
                for column in 0..<s.outWidth {
                    let i = ((n * s.outHeight + row) * s.outWidth + column) * c + channel
                    let v = value(i, channel)
                    first += v
                    second = second.addingProduct(v, factor(i, channel))
                }
                sums[n * 2 * c + channel] += Double(first)
                sums[n * 2 * c + c + channel] += Double(second)
            }
        }
    }
    return sums
}

@Suite struct Conv3x3Tests {
    @Test(arguments: shapes, [1, 2])
    func forwardMatchesNaive(shape s: Conv3x3Shape, threads: Int) {
        let x = randomArray(s.inputShape.reduce(1, *), seed: 1), w = randomArray(s.weightCount, seed: 2)
        let y = Tensor(shape: s.outputShape)
        y.fill(.nan)  // every output must be written
        Conv3x3.forward(input: x, weights: w, output: y.pointer, shape: s, pool: ComputePool(threads: threads))
        let worst = worstRelativeError(y.toArray(), NaiveConvolution.forward(x, w, s))
        #expect(worst <= 1, "worst relative error \(worst) for \(s)")
    }

    /// Bitwise, not within a tolerance: the 16x16, 8x32 and 8x16 tiles must all add the same
    /// products in the same order, or results would depend on which tile computed a pixel.
    @Test(arguments: shapes)
    func forwardTilesAreBitwiseEqualToScalarOrder(shape s: Conv3x3Shape) {
        let x = randomArray(s.inputShape.reduce(1, *), seed: 21), w = randomArray(s.weightCount, seed: 22)
        let y = Tensor(shape: s.outputShape)
        Conv3x3.forward(input: x, weights: w, output: y.pointer, shape: s, pool: ComputePool(threads: 2))
        let expected = NaiveConvolution.forwardInKernelOrder(x, w, s)
        let differing = zip(y.toArray(), expected).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) outputs differ in bits for \(s)")
    }

    /// The statistics handed to batch norm are bitwise the sums batch norm would compute from the
    /// output: per image and channel, each row summed in Float pixel by pixel, the rows in Double.
    @Test(arguments: shapes)
    func forwardStatisticsAreTheOutputsSumsInBatchNormOrder(shape s: Conv3x3Shape) {
        let x = randomArray(s.inputShape.reduce(1, *), seed: 23), w = randomArray(s.weightCount, seed: 24)
        let y = Tensor(shape: s.outputShape)
        var statistics = [Double](repeating: .nan, count: s.batch * 2 * s.outChannels)
        Conv3x3.forward(input: x, weights: w, output: y.pointer, shape: s, statistics: &statistics, pool: ComputePool(threads: 2))
        let out = y.toArray()
        let expected = batchNormOrderSums(s, value: { i, _ in out[i] }, factor: { i, _ in out[i] })
        #expect(statistics == expected, "\(s)")
        // The output itself is what the convolution gives without statistics.
        let plain = Tensor(shape: s.outputShape)
        Conv3x3.forward(input: x, weights: w, output: plain.pointer, shape: s, pool: ComputePool(threads: 1))
        #expect(plain.toArray() == out)
    }

    /// The sums handed to batch norm's backward are bitwise what it would compute from the
    /// finished gradient (after the epilogue's add): dz = dy masked by the ReLU bits, then per image
    /// and channel `sum dz` and `sum dz * (x - mean)`, each row in Float pixel by pixel, rows in Double.
    @Test(arguments: shapes.filter { $0.stride == 1 }, [false, true])
    func gradientSumsAreBatchNormsBackwardSums(shape s: Conv3x3Shape, adding: Bool) {
        let dy = randomArray(s.inputShape.reduce(1, *), seed: 25), w = randomArray(s.weightCount, seed: 26)
        let count = s.outputShape.reduce(1, *), c = s.outChannels
        let normInput = randomArray(count, seed: 27), mean = randomArray(c, seed: 28)
        let residual = randomArray(count, seed: 29)
        // Random ReLU bits: bit k of word v set means lane k of vector v was zeroed.
        var generator = SplitMix64(seed: 30)
        let zeroed = (0..<(count / 16)).map { _ in UInt16(truncatingIfNeeded: generator.next()) }
        let y = Tensor(shape: s.outputShape)
        var sums = [Double](repeating: .nan, count: s.batch * 2 * c)
        sums.withUnsafeMutableBufferPointer { sums in
            normInput.withUnsafeBufferPointer { x in
                mean.withUnsafeBufferPointer { mu in
                    zeroed.withUnsafeBufferPointer { bits in
                        residual.withUnsafeBufferPointer { r in
                            let target = Conv3x3GradientSums(
                                input: x.baseAddress!, mean: mu.baseAddress!, zeroed: bits.baseAddress!,
                                sums: sums.baseAddress!)
                            Conv3x3.forward(
                                input: dy, weights: w, output: y.pointer, shape: s,
                                epilogue: adding ? Conv3x3Epilogue(adding: r.baseAddress!) : nil,
                                gradientSums: target, pool: ComputePool(threads: 2))
                        }
                    }
                }
            }
        }
        let out = y.toArray()
        let expected = batchNormOrderSums(
            s, value: { i, _ in (zeroed[i / 16] >> (i % 16)) & 1 == 1 ? 0 : out[i] },
            factor: { i, channel in normInput[i] - mean[channel] })
        #expect(sums == expected, "\(s)")
        // The gradient itself is what the convolution gives without sums.
        let plain = Tensor(shape: s.outputShape)
        residual.withUnsafeBufferPointer { r in
            Conv3x3.forward(
                input: dy, weights: w, output: plain.pointer, shape: s,
                epilogue: adding ? Conv3x3Epilogue(adding: r.baseAddress!) : nil, pool: ComputePool(threads: 1))
        }
        #expect(plain.toArray() == out)
    }

    @Test(arguments: shapes, [1, 2])
    func backwardMatchesNaive(shape s: Conv3x3Shape, threads: Int) {
        let x = randomArray(s.inputShape.reduce(1, *), seed: 3), w = randomArray(s.weightCount, seed: 4)
        let dy = randomArray(s.outputShape.reduce(1, *), seed: 5)
        let reference = NaiveConvolution.backward(x, w, dy, s)
        let pool = ComputePool(threads: threads)

        // Backward-weights accumulates in fixed point: start from 0.5.
        var dw = [Int64](repeating: FixedPoint.encode(0.5, scale: FixedPoint.gradientScale), count: s.weightCount)
        var scratch = [Int64](repeating: 0, count: Conv3x3.weightGradientScratchCount(s, pool: pool))
        Conv3x3.backwardWeights(input: x, outputGradient: dy, weightGradient: &dw, scratch: &scratch, shape: s, pool: pool)
        let decoded = dw.map { Float(FixedPoint.decode($0, scale: FixedPoint.gradientScale)) }
        let worstW = worstRelativeError(decoded, reference.dw.map { $0 + 0.5 })
        #expect(worstW <= 1, "weight gradient: worst relative error \(worstW) for \(s)")

        guard s.inChannels % 16 == 0 else { return }
        let dx = Tensor(shape: s.inputShape)
        dx.fill(.nan)
        let transposed = Tensor(shape: [s.weightCount])
        Conv3x3.backwardData(
            outputGradient: dy, weights: w, inputGradient: dx.pointer, transposedScratch: transposed.pointer,
            shape: s, pool: pool)
        let worstX = worstRelativeError(dx.toArray(), reference.dx)
        #expect(worstX <= 1, "input gradient: worst relative error \(worstX) for \(s)")
    }

    @Test func resultsDoNotDependOnThreadCount() {
        let s = Conv3x3Shape(batch: 16, height: 8, width: 8, inChannels: 16, outChannels: 32, stride: 2)
        let x = randomArray(s.inputShape.reduce(1, *), seed: 6), dy = randomArray(s.outputShape.reduce(1, *), seed: 7)
        func weightGradient(threads: Int) -> [Int64] {
            let pool = ComputePool(threads: threads)
            var dw = [Int64](repeating: 0, count: s.weightCount)
            var scratch = [Int64](repeating: 0, count: Conv3x3.weightGradientScratchCount(s, pool: pool))
            Conv3x3.backwardWeights(input: x, outputGradient: dy, weightGradient: &dw, scratch: &scratch, shape: s, pool: pool)
            return dw
        }
        #expect(weightGradient(threads: 1) == weightGradient(threads: 2))
        #expect(weightGradient(threads: 1) == weightGradient(threads: 3))
    }
}

/// The command line refuses to run kernels this CPU cannot execute; a native build always can,
/// and reports the vector unit /proc/cpuinfo shows.
struct VectorUnitTests {
    @Test(.enabled(if: VectorUnit.targetCPU == "native", "built for another CPU (RESNET_DDP_TARGET_CPU)"))
    func nativeBuildMatchesThisCPU() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        #expect(VectorUnit.unsupportedReason() == nil)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let expected = flags.contains("avx512f") ? "AVX-512" : flags.contains("avx2") ? "AVX2" : "SSE2"
        #expect(VectorUnit.compiled == expected)
        #expect(VectorUnit.summary.hasPrefix(expected))
    }
}

/// The fused inference epilogue (batch-norm affine, residual add, ReLU applied as the kernel
/// stores) gives bitwise what the separate passes give.
@Suite struct Conv3x3EpilogueTests {
    @Test(arguments: shapes, [(false, false), (false, true), (true, true), (true, false)])
    func epilogueEqualsSeparatePasses(shape s: Conv3x3Shape, options: (residual: Bool, relu: Bool)) {
        let x = randomArray(s.inputShape.reduce(1, *), seed: 11), w = randomArray(s.weightCount, seed: 12)
        let scale = randomArray(s.outChannels, seed: 13), shift = randomArray(s.outChannels, seed: 14)
        let residual = randomArray(s.outputShape.reduce(1, *), seed: 15)
        let pool = ComputePool(threads: 2)
        let plain = Tensor(shape: s.outputShape)
        Conv3x3.forward(input: x, weights: w, output: plain.pointer, shape: s, pool: pool)
        let expected = plain.toArray().enumerated().map { i, v in
            var y = v * scale[i % s.outChannels] + shift[i % s.outChannels]
            if options.residual { y += residual[i] }
            return options.relu ? max(y, 0) : y
        }
        let fused = Tensor(shape: s.outputShape)
        fused.fill(.nan)
        scale.withUnsafeBufferPointer { a in
            shift.withUnsafeBufferPointer { b in
                residual.withUnsafeBufferPointer { r in
                    let epilogue = Conv3x3Epilogue(
                        scale: a.baseAddress!, shift: b.baseAddress!,
                        residual: options.residual ? r.baseAddress! : nil, relu: options.relu)
                    Conv3x3.forward(input: x, weights: w, output: fused.pointer, shape: s, epilogue: epilogue, pool: pool)
                }
            }
        }
        #expect(fused.toArray() == expected, "\(s), residual \(options.residual), relu \(options.relu)")
    }
}
