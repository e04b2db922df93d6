// ReLU masks as 16 bits per 16-lane vector, with clang vector extensions: Swift's generic SIMD
// integer comparisons and conversions compile to a loop over the lanes (10x slower than the
// memory traffic they save), while these become a compare, a mask move and a masked move.
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
#endif
