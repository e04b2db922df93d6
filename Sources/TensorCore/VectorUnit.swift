import CPUFeatures
import Dispatch

/// Which vector unit the kernels were compiled for (`RESNET_DDP_TARGET_CPU`, default the build
/// machine's) and whether this CPU has it: a binary built for AVX-512 would die with SIGILL
/// elsewhere, so the command line checks first and says what to do.
public enum VectorUnit {
    public static let targetCPU = String(cString: rddp_target_cpu())

    public static var compiled: String {
        if rddp_compiled_avx512() != 0 { return "AVX-512" }
        if rddp_compiled_avx2() != 0 { return "AVX2" }
        return "SSE2"
    }

    /// A one-line description for logs: "AVX-512 kernels (target CPU native)".
    public static var summary: String {
        var text = "\(compiled) kernels (target CPU \(targetCPU))"
        if compiled == "AVX2" { text += "; slower than AVX-512: SIMD16 is split in two" }
        if compiled == "SSE2" { text += "; several times slower: build with RESNET_DDP_TARGET_CPU=native" }
        return text
    }

    /// Nil when this CPU runs the compiled kernels, else the reason it cannot and the remedy.
    public static func unsupportedReason() -> String? {
        let missing =
            (rddp_compiled_avx512() != 0 && rddp_cpu_has_avx512() == 0)
            ? "AVX-512"
            : (rddp_compiled_avx2() != 0 && rddp_cpu_has_avx2() == 0) ? "AVX2" : nil
        guard let missing else { return nil }
        return "this binary's kernels were built for \(missing) (target CPU \(targetCPU)) but this CPU lacks it: "
            + "rebuild on this machine with scripts/setup, or build with RESNET_DDP_TARGET_CPU=x86-64 for a portable "
            + "(much slower) binary"
    }
}

/// The vector unit's FP32 peak as measured by a loop of independent FMAs that never touches
/// memory: the ceiling the convolutions are compared with (`resnet-ddp bench --peak`).
public enum PeakThroughput {
    /// GFLOP/s (2 per lane of each FMA) of `threads` threads running the loop at once.
    public static func gigaflops(threads: Int, iterations: Int = 20_000_000) -> Double {
        let pool = ComputePool(threads: threads)
        let sink = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { sink.deallocate() }
        let out = UncheckedSendable(sink)
        let start = DispatchTime.now().uptimeNanoseconds
        pool.forEach(threads) { i in out.value[i] = fmaLoop(iterations, seed: Float(i)) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        precondition((0..<threads).allSatisfy { sink[$0].isFinite }, "peak loop overflowed")
        return Double(threads * iterations) * 16 * 16 * 2 / seconds / 1e9
    }

    /// 16 independent accumulators: enough in flight for two FMA units with 4-cycle latency.
    @inline(never)
    static func fmaLoop(_ iterations: Int, seed: Float) -> Float {
        let b = SIMD16<Float>(repeating: 0.999_999), c = SIMD16<Float>(repeating: 1e-9)
        var a0 = SIMD16<Float>(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3
        var a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9
        var a10 = a0 + 10, a11 = a0 + 11, a12 = a0 + 12, a13 = a0 + 13, a14 = a0 + 14, a15 = a0 + 15
        // a = a * b + c: one FMA each, converging to c / (1 - b), never overflowing.
        for _ in 0..<iterations {
            a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b); a3 = c.addingProduct(a3, b)
            a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b); a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b)
            a8 = c.addingProduct(a8, b); a9 = c.addingProduct(a9, b); a10 = c.addingProduct(a10, b); a11 = c.addingProduct(a11, b)
            a12 = c.addingProduct(a12, b); a13 = c.addingProduct(a13, b); a14 = c.addingProduct(a14, b); a15 = c.addingProduct(a15, b)
        }
        let sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15
        return sum.sum()
    }
}
