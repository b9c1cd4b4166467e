// Matrix-vector product and row widening for f16/bf16 matrices read in place; see include/CKernels.h.
#include "CKernels.h"
#include "horizontal_sum.h"
#include "half_float.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STEERTOOL_X86 1
#endif

/// Row r of the matrix: its first byte (row_index, when given, maps r to the stored row).
static inline const uint8_t *half_row(const void *w, size_t ldw, const uint32_t *row_index, size_t r) {
    size_t stored = row_index ? (size_t)row_index[r] : r;
    return (const uint8_t *)w + stored * ldw * 2;
}

static inline float half_scalar(const uint8_t *row, size_t j, steertool_half_format format) {
    uint16_t h = steertool_load_u16(row + 2 * j);
    return format == STEERTOOL_HALF_BF16 ? steertool_bf16_to_f32(h) : steertool_f16_to_f32(h);
}

__attribute__((always_inline))
static inline void matvec_scalar(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t r0, size_t r1,
                          const float *x, float *y, steertool_half_format format) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = half_row(w, ldw, row_index, r);
        float s = 0;
        for (size_t j = 0; j < k; j++) s += half_scalar(row, j, format) * x[j];
        y[r - r0] = s;
    }
}

__attribute__((always_inline))
static inline void widen_scalar(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t r0, size_t r1,
                         float *out, size_t ldo, steertool_half_format format) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = half_row(w, ldw, row_index, r);
        float *o = out + (r - r0) * ldo;
        for (size_t j = 0; j < k; j++) o[j] = half_scalar(row, j, format);
    }
}

#ifdef STEERTOOL_X86
/// 8 halves at p (any alignment) → 8 floats: bf16 by a 16-bit shift, f16 by F16C.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 widen8(const uint8_t *p, steertool_half_format format) {
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (format == STEERTOOL_HALF_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/// The f32 kernel's order (`steertool_f32_matvec`): four rows at a time, one 8-lane accumulator
/// per row, lanes added pairwise, then the last k % 8 columns in order.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void matvec_avx2(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t r0, size_t r1,
                        const float *x, float *y, steertool_half_format format) {
    size_t k8 = k / 8 * 8, r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *a = half_row(w, ldw, row_index, r), *b = half_row(w, ldw, row_index, r + 1);
        const uint8_t *c = half_row(w, ldw, row_index, r + 2), *d = half_row(w, ldw, row_index, r + 3);
        __m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps(), sc = _mm256_setzero_ps(), sd = _mm256_setzero_ps();
        for (size_t j = 0; j < k8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            sa = _mm256_fmadd_ps(widen8(a + 2 * j, format), xv, sa);
            sb = _mm256_fmadd_ps(widen8(b + 2 * j, format), xv, sb);
            sc = _mm256_fmadd_ps(widen8(c + 2 * j, format), xv, sc);
            sd = _mm256_fmadd_ps(widen8(d + 2 * j, format), xv, sd);
        }
        float ta = hsum_avx2(sa), tb = hsum_avx2(sb), tc = hsum_avx2(sc), td = hsum_avx2(sd);
        for (size_t j = k8; j < k; j++) {
            ta += half_scalar(a, j, format) * x[j]; tb += half_scalar(b, j, format) * x[j];
            tc += half_scalar(c, j, format) * x[j]; td += half_scalar(d, j, format) * x[j];
        }
        y[r - r0] = ta; y[r - r0 + 1] = tb; y[r - r0 + 2] = tc; y[r - r0 + 3] = td;
    }
    for (; r < r1; r++) {
        const uint8_t *a = half_row(w, ldw, row_index, r);
        __m256 sa = _mm256_setzero_ps();
        for (size_t j = 0; j < k8; j += 8) sa = _mm256_fmadd_ps(widen8(a + 2 * j, format), _mm256_loadu_ps(x + j), sa);
        float ta = hsum_avx2(sa);
        for (size_t j = k8; j < k; j++) ta += half_scalar(a, j, format) * x[j];
        y[r - r0] = ta;
    }
}

__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void widen_avx2(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t r0, size_t r1,
                       float *out, size_t ldo, steertool_half_format format) {
    size_t k8 = k / 8 * 8;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = half_row(w, ldw, row_index, r);
        float *o = out + (r - r0) * ldo;
        for (size_t j = 0; j < k8; j += 8) _mm256_storeu_ps(o + j, widen8(row + 2 * j, format));
        for (size_t j = k8; j < k; j++) o[j] = half_scalar(row, j, format);
    }
}

/// One instantiation per format, so that the format is a constant inside the loops.
__attribute__((target("avx2,fma,f16c")))
static void matvec_avx2_bf16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, const float *x,
                             float *y) { matvec_avx2(w, ldw, k, ri, r0, r1, x, y, STEERTOOL_HALF_BF16); }
__attribute__((target("avx2,fma,f16c")))
static void matvec_avx2_f16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, const float *x,
                            float *y) { matvec_avx2(w, ldw, k, ri, r0, r1, x, y, STEERTOOL_HALF_F16); }
__attribute__((target("avx2,fma,f16c")))
static void widen_avx2_bf16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, float *out,
                            size_t ldo) { widen_avx2(w, ldw, k, ri, r0, r1, out, ldo, STEERTOOL_HALF_BF16); }
__attribute__((target("avx2,fma,f16c")))
static void widen_avx2_f16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, float *out,
                           size_t ldo) { widen_avx2(w, ldw, k, ri, r0, r1, out, ldo, STEERTOOL_HALF_F16); }
#endif

static void matvec_scalar_bf16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, const float *x,
                               float *y) { matvec_scalar(w, ldw, k, ri, r0, r1, x, y, STEERTOOL_HALF_BF16); }
static void matvec_scalar_f16(const void *w, size_t ldw, size_t k, const uint32_t *ri, size_t r0, size_t r1, const float *x,
                              float *y) { matvec_scalar(w, ldw, k, ri, r0, r1, x, y, STEERTOOL_HALF_F16); }

void steertool_half_matvec(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t row_begin,
                           size_t row_end, const float *x, float *y, steertool_half_format format,
                           steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2) {
        (format == STEERTOOL_HALF_BF16 ? matvec_avx2_bf16 : matvec_avx2_f16)(w, ldw, k, row_index, row_begin, row_end, x, y);
        return;
    }
#endif
    (format == STEERTOOL_HALF_BF16 ? matvec_scalar_bf16 : matvec_scalar_f16)(w, ldw, k, row_index, row_begin, row_end, x, y);
}

void steertool_half_widen_rows(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t row_begin,
                               size_t row_end, float *out, size_t ldo, steertool_half_format format,
                               steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2) {
        (format == STEERTOOL_HALF_BF16 ? widen_avx2_bf16 : widen_avx2_f16)(w, ldw, k, row_index, row_begin, row_end, out, ldo);
        return;
    }
#endif
    widen_scalar(w, ldw, k, row_index, row_begin, row_end, out, ldo, format);
}
