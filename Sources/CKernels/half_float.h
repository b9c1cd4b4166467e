// Private to CKernels: portable IEEE binary16 and bfloat16 → binary32 conversions of one value,
// shared by the Q8_0 kernels (their f16 scales) and the f16/bf16 matrix kernels, so that every
// path that widens a half gives the same bits (the F16C instruction gives the same values).
#ifndef STEERTOOL_HALF_FLOAT_H
#define STEERTOOL_HALF_FLOAT_H

#include <stdint.h>
#include <string.h>

/// IEEE 754 binary16 → binary32 (normals, subnormals, infinities, NaNs), exact.
static inline float steertool_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do { e++; mantissa <<= 1; } while ((mantissa & 0x400u) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
        }
    } else if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// bfloat16 → binary32: the 16 bits become the high half of the f32 (exact, NaNs kept).
static inline float steertool_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// A little-endian 16-bit value at any alignment.
static inline uint16_t steertool_load_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

#endif
