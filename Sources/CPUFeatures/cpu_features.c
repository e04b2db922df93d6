#include "cpu_features.h"

int rddp_compiled_avx512(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

int rddp_compiled_avx2(void) {
#if defined(__AVX2__)
    return 1;
#else
    return 0;
#endif
}

int rddp_cpu_has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

int rddp_cpu_has_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

const char *rddp_target_cpu(void) { return RDDP_TARGET_CPU; }
