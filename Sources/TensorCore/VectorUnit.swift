import CPUFeatures

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
        let missing = (rddp_compiled_avx512() != 0 && rddp_cpu_has_avx512() == 0) ? "AVX-512"
            : (rddp_compiled_avx2() != 0 && rddp_cpu_has_avx2() == 0) ? "AVX2" : nil
        guard let missing else { return nil }
        return "this binary's kernels were built for \(missing) (target CPU \(targetCPU)) but this CPU lacks it: "
            + "rebuild on this machine with scripts/setup, or build with RESNET_DDP_TARGET_CPU=x86-64 for a portable "
            + "(much slower) binary"
    }
}
