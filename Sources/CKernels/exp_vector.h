// Private to CKernels: one vector e^x per register width, shared by exp.c and swiglu.c so that
// every kernel that exponentiates gives the same bits as steertool_exp.
//
// Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for exactness), e^r by a degree-6
// polynomial, 2^n through the exponent bits. Inputs are clamped to [-87.3, 88] (below, e^x would be
// subnormal: e^-87.3 ≈ 1.2e-38 is returned; above, e^88), tails included.
#ifndef STEERTOOL_EXP_VECTOR_H
#define STEERTOOL_EXP_VECTOR_H

#include <math.h>

#define STEERTOOL_EXP_HI 88.0f
#define STEERTOOL_EXP_LO -87.3365447504f
#define STEERTOOL_LOG2E 1.44269504088896341f
#define STEERTOOL_LN2_HI 0.693359375f
#define STEERTOOL_LN2_LO -2.12194440e-4f
// Cephes' polynomial for (e^r − 1 − r)/r², highest degree first.
#define STEERTOOL_EXP_P5 1.9875691500e-4f
#define STEERTOOL_EXP_P4 1.3981999507e-3f
#define STEERTOOL_EXP_P3 8.3334519073e-3f
#define STEERTOOL_EXP_P2 4.1665795894e-2f
#define STEERTOOL_EXP_P1 1.6666665459e-1f
#define STEERTOOL_EXP_P0 5.0000001201e-1f

/// The scalar path (and the vector paths' tails): libm's expf on the clamped input.
static inline float steertool_exp_scalar(float x) {
    return expf(fminf(fmaxf(x, STEERTOOL_EXP_LO), STEERTOOL_EXP_HI));
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static inline __m512 steertool_exp_avx512(__m512 v) {
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(STEERTOOL_EXP_LO)), _mm512_set1_ps(STEERTOOL_EXP_HI));
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(STEERTOOL_LOG2E), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    v = _mm512_fnmadd_ps(fx, _mm512_set1_ps(STEERTOOL_LN2_HI), v);
    v = _mm512_fnmadd_ps(fx, _mm512_set1_ps(STEERTOOL_LN2_LO), v);
    __m512 p = _mm512_set1_ps(STEERTOOL_EXP_P5);
    p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(STEERTOOL_EXP_P4));
    p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(STEERTOOL_EXP_P3));
    p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(STEERTOOL_EXP_P2));
    p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(STEERTOOL_EXP_P1));
    p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(STEERTOOL_EXP_P0));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, v), v, _mm512_add_ps(v, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

__attribute__((target("avx2,fma")))
static inline __m256 steertool_exp_avx2(__m256 v) {
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(STEERTOOL_EXP_LO)), _mm256_set1_ps(STEERTOOL_EXP_HI));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(v, _mm256_set1_ps(STEERTOOL_LOG2E), _mm256_set1_ps(0.5f)));
    v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(STEERTOOL_LN2_HI), v);
    v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(STEERTOOL_LN2_LO), v);
    __m256 p = _mm256_set1_ps(STEERTOOL_EXP_P5);
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(STEERTOOL_EXP_P4));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(STEERTOOL_EXP_P3));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(STEERTOOL_EXP_P2));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(STEERTOOL_EXP_P1));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(STEERTOOL_EXP_P0));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, v), v, _mm256_add_ps(v, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

#endif
