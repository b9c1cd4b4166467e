// Vectorised e^x over float arrays; see include/CKernels.h.
#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#include <immintrin.h>
#endif

// Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for exactness), e^r by a degree-6
// polynomial, 2^n through the exponent bits. Inputs are clamped to [-87.3, 88] (below, e^x would be
// subnormal: e^-87.3 ≈ 1.2e-38 is returned; above, e^88), tails included.
#define EXP_HI 88.0f
#define EXP_LO -87.3365447504f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f

#ifdef STEERTOOL_X86
__attribute__((target("avx512f")))
static void exp_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    const __m512 hi = _mm512_set1_ps(EXP_HI), lo = _mm512_set1_ps(EXP_LO);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_loadu_ps(x + i), lo), hi);
        __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        v = _mm512_fnmadd_ps(fx, _mm512_set1_ps(LN2_HI), v);
        v = _mm512_fnmadd_ps(fx, _mm512_set1_ps(LN2_LO), v);
        __m512 p = _mm512_set1_ps(1.9875691500e-4f);
        p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(1.3981999507e-3f));
        p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(8.3334519073e-3f));
        p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(4.1665795894e-2f));
        p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(1.6666665459e-1f));
        p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(5.0000001201e-1f));
        p = _mm512_fmadd_ps(_mm512_mul_ps(p, v), v, _mm512_add_ps(v, _mm512_set1_ps(1.0f)));
        __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
    }
    for (; i < n; i++) y[i] = expf(fminf(fmaxf(x[i], EXP_LO), EXP_HI));
}

__attribute__((target("avx2,fma")))
static void exp_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(EXP_LO);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + i), lo), hi);
        __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(v, _mm256_set1_ps(LOG2E), _mm256_set1_ps(0.5f)));
        v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_HI), v);
        v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_LO), v);
        __m256 p = _mm256_set1_ps(1.9875691500e-4f);
        p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.3981999507e-3f));
        p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(8.3334519073e-3f));
        p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(4.1665795894e-2f));
        p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.6666665459e-1f));
        p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(5.0000001201e-1f));
        p = _mm256_fmadd_ps(_mm256_mul_ps(p, v), v, _mm256_add_ps(v, _mm256_set1_ps(1.0f)));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
    }
    for (; i < n; i++) y[i] = expf(fminf(fmaxf(x[i], EXP_LO), EXP_HI));
}
#endif

void steertool_exp(const float *x, float *y, size_t n, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX512) { exp_avx512(x, y, n); return; }
    if (level >= STEERTOOL_KERNEL_AVX2) { exp_avx2(x, y, n); return; }
#endif
    for (size_t i = 0; i < n; i++) y[i] = expf(fminf(fmaxf(x[i], EXP_LO), EXP_HI));
}
