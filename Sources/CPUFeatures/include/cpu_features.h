#ifndef RESNET_DDP_CPU_FEATURES_H
#define RESNET_DDP_CPU_FEATURES_H

/// Vector extensions the kernels were compiled for (same target CPU as the Swift kernels).
int rddp_compiled_avx512(void);
int rddp_compiled_avx2(void);
/// The -target-cpu the kernels were built with (RESNET_DDP_TARGET_CPU, default "native").
const char *rddp_target_cpu(void);
/// Vector extensions this CPU has (cpuid).
int rddp_cpu_has_avx512(void);
int rddp_cpu_has_avx2(void);

/// A spin-wait hint (PAUSE on x86): lets the core's sibling and the memory system breathe
/// while a thread polls for work.
static inline void rddp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks for `bytes` from `p` on, one 64-byte cache line at a time, ahead of use: a kernel busy
/// in L1 then reads a second tensor from memory without stalling on each line.
static inline void rddp_prefetch(const void *p, long bytes) {
    const char *c = (const char *)p;
    for (long i = 0; i < bytes; i += 64) __builtin_prefetch(c + i);
}

#endif
