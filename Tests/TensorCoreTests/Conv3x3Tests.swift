import Foundation
import Testing
import TensorCore

/// Shapes cover the network's layers (first layer with 3 input channels, stride 2 transitions,
/// 16/32/64 channels) plus a width that is not a multiple of 8.
private let shapes: [Conv3x3Shape] = [
    Conv3x3Shape(batch: 2, height: 8, width: 8, inChannels: 3, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 3, height: 8, width: 8, inChannels: 16, outChannels: 16, stride: 1),
    Conv3x3Shape(batch: 2, height: 8, width: 8, inChannels: 16, outChannels: 32, stride: 2),
    Conv3x3Shape(batch: 2, height: 6, width: 6, inChannels: 32, outChannels: 64, stride: 2),
    Conv3x3Shape(batch: 2, height: 5, width: 11, inChannels: 64, outChannels: 64, stride: 1),
    Conv3x3Shape(batch: 9, height: 4, width: 4, inChannels: 32, outChannels: 16, stride: 1),
]

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
        Conv3x3.backwardData(outputGradient: dy, weights: w, inputGradient: dx.pointer, transposedScratch: transposed.pointer,
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
    @Test func nativeBuildMatchesThisCPU() throws {
        guard VectorUnit.targetCPU == "native",
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return }
        #expect(VectorUnit.unsupportedReason() == nil)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let expected = flags.contains("avx512f") ? "AVX-512" : flags.contains("avx2") ? "AVX2" : "SSE2"
        #expect(VectorUnit.compiled == expected)
        #expect(VectorUnit.summary.hasPrefix(expected))
    }
}
