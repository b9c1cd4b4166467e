// Private to CKernels: the horizontal sum of an AVX2 register in one fixed order (upper half
// onto lower, then pairs, then the last two lanes). The f32 and f16/bf16 matrix-vector kernels
// both use it, which is what makes their results bit-equal on the same (widened) values.
#ifndef STEERTOOL_HORIZONTAL_SUM_H
#define STEERTOOL_HORIZONTAL_SUM_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#endif
