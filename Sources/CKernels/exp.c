// Vectorised e^x over float arrays; see include/CKernels.h (the polynomial is in exp_vector.h).
#include "CKernels.h"
#include "exp_vector.h"

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1

__attribute__((target("avx512f")))
static void exp_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, steertool_exp_avx512(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = steertool_exp_scalar(x[i]);
}

__attribute__((target("avx2,fma")))
static void exp_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, steertool_exp_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = steertool_exp_scalar(x[i]);
}
#endif

void steertool_exp(const float *x, float *y, size_t n, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX512) { exp_avx512(x, y, n); return; }
    if (level >= STEERTOOL_KERNEL_AVX2) { exp_avx2(x, y, n); return; }
#endif
    for (size_t i = 0; i < n; i++) y[i] = steertool_exp_scalar(x[i]);
}
