// SwiGLU's elementwise product; see include/CKernels.h.
#include "CKernels.h"
#include "exp_vector.h"

/// The scalar path and the vector paths' tails: g / (1 + e^{-g}) · u with steertool_exp's scalar e^x.
static inline float swiglu_scalar(float g, float u) { return g / (1.0f + steertool_exp_scalar(-g)) * u; }

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1

__attribute__((target("avx512f")))
static void swiglu_avx512(const float *gate, const float *up, float *out, size_t n) {
    size_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(gate + i);
        __m512 e = steertool_exp_avx512(_mm512_sub_ps(zero, g));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = swiglu_scalar(gate[i], up[i]);
}

__attribute__((target("avx2,fma")))
static void swiglu_avx2(const float *gate, const float *up, float *out, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = steertool_exp_avx2(_mm256_sub_ps(zero, g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = swiglu_scalar(gate[i], up[i]);
}
#endif

void steertool_swiglu(const float *gate, const float *up, float *out, size_t n, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX512) { swiglu_avx512(gate, up, out, n); return; }
    if (level >= STEERTOOL_KERNEL_AVX2) { swiglu_avx2(gate, up, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = swiglu_scalar(gate[i], up[i]);
}
