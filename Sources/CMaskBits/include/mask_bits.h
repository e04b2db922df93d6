// ReLU masks as 16 bits per 16-lane vector, and the fixed-point rounding of gradient vectors,
// with clang vector extensions: Swift's generic SIMD integer comparisons and conversions compile
// to a loop over the lanes (10x slower than the memory traffic they save), while these become a
// compare, a mask move and a masked move, or a rounding and a float-to-int64 conversion.
#ifndef RDDP_MASK_BITS_H
#define RDDP_MASK_BITS_H
#include <stdint.h>

typedef float rddp_float16 __attribute__((ext_vector_type(16)));
typedef int32_t rddp_int16 __attribute__((ext_vector_type(16)));

static const rddp_int16 rddp_lane_bits = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

/// Bit i set where lane i of v is <= 0 (the lanes a ReLU output zeroed).
static inline __attribute__((always_inline)) uint16_t rddp_bits_not_positive(rddp_float16 v) {
    rddp_int16 zeroed = v <= (rddp_float16)0.0f;            // -1 or 0 per lane
    return (uint16_t)__builtin_reduce_or(zeroed & rddp_lane_bits);
}

/// v with the lanes whose bit is set replaced by 0.
static inline __attribute__((always_inline)) rddp_float16 rddp_zero_lanes(rddp_float16 v, uint16_t bits) {
    rddp_int16 keep = ((rddp_int16)(int32_t)bits & rddp_lane_bits) == 0;
    return (rddp_float16)((rddp_int16)v & keep);
}

typedef int64_t rddp_long8 __attribute__((ext_vector_type(8)));

/// target[0..<16] += round-half-even(clamp(v * scale, -limit, limit)) as 64-bit integers. With a
/// power-of-two `scale` the product is exact in Float, so this equals the same rounding done in
/// Double; on AVX-512 it is a rounding and two float-to-int64 conversions per 16 values, where the
/// Double route took twice as many vector operations (the 8x8 layers' backward-weights convert
/// 36,864 sums per image).
static inline __attribute__((always_inline)) void rddp_add_fixed_point16(rddp_float16 v, float scale, float limit, int64_t *target) {
    rddp_float16 s = __builtin_elementwise_roundeven(
        __builtin_elementwise_min(__builtin_elementwise_max(v * scale, (rddp_float16)(-limit)), (rddp_float16)limit));
    rddp_long8 low = __builtin_convertvector(__builtin_shufflevector(s, s, 0, 1, 2, 3, 4, 5, 6, 7), rddp_long8);
    rddp_long8 high = __builtin_convertvector(__builtin_shufflevector(s, s, 8, 9, 10, 11, 12, 13, 14, 15), rddp_long8);
    rddp_long8 t0, t1;
    __builtin_memcpy(&t0, target, sizeof t0);
    __builtin_memcpy(&t1, target + 8, sizeof t1);
    t0 += low;
    t1 += high;
    __builtin_memcpy(target, &t0, sizeof t0);
    __builtin_memcpy(target + 8, &t1, sizeof t1);
}
#endif
