// f32 matrix-vector product over rows of a row-major matrix; see include/CKernels.h.
#include "CKernels.h"
#include "horizontal_sum.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STEERTOOL_X86 1
#endif

static void matvec_scalar(const float *w, size_t ldw, size_t k, size_t r0, size_t r1, const float *x, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const float *row = w + r * ldw;
        float s = 0;
        for (size_t j = 0; j < k; j++) s += row[j] * x[j];
        y[r - r0] = s;
    }
}

#ifdef STEERTOOL_X86
/// Four rows at a time, one 8-lane accumulator per row (four independent FMA chains per step);
/// the last k % 8 columns and the last rows % 4 rows by scalar code in the same order per row.
__attribute__((target("avx2,fma")))
static void matvec_avx2(const float *w, size_t ldw, size_t k, size_t r0, size_t r1, const float *x, float *y) {
    size_t k8 = k / 8 * 8, r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *a = w + r * ldw, *b = a + ldw, *c = b + ldw, *d = c + ldw;
        __m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps(), sc = _mm256_setzero_ps(), sd = _mm256_setzero_ps();
        for (size_t j = 0; j < k8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            sa = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), xv, sa);
            sb = _mm256_fmadd_ps(_mm256_loadu_ps(b + j), xv, sb);
            sc = _mm256_fmadd_ps(_mm256_loadu_ps(c + j), xv, sc);
            sd = _mm256_fmadd_ps(_mm256_loadu_ps(d + j), xv, sd);
        }
        float ta = hsum_avx2(sa), tb = hsum_avx2(sb), tc = hsum_avx2(sc), td = hsum_avx2(sd);
        for (size_t j = k8; j < k; j++) { ta += a[j] * x[j]; tb += b[j] * x[j]; tc += c[j] * x[j]; td += d[j] * x[j]; }
        y[r - r0] = ta; y[r - r0 + 1] = tb; y[r - r0 + 2] = tc; y[r - r0 + 3] = td;
    }
    for (; r < r1; r++) {
        const float *a = w + r * ldw;
        __m256 sa = _mm256_setzero_ps();
        for (size_t j = 0; j < k8; j += 8) sa = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(x + j), sa);
        float ta = hsum_avx2(sa);
        for (size_t j = k8; j < k; j++) ta += a[j] * x[j];
        y[r - r0] = ta;
    }
}
#endif

void steertool_f32_matvec(const float *w, size_t ldw, size_t k, size_t row_begin, size_t row_end, const float *x,
                          float *y, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2) { matvec_avx2(w, ldw, k, row_begin, row_end, x, y); return; }
#endif
    matvec_scalar(w, ldw, k, row_begin, row_end, x, y);
}
