// Bit-reproducible LoRA merge rows; see include/CKernels.h.
#include "CKernels.h"

// Products and sums are rounded separately everywhere (the result must not depend on whether a
// CPU or compiler fuses multiply-add).
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#include <immintrin.h>
#endif

/// Columns [from, in) of one row, one element at a time (the reference order of every path:
/// acc = 0; acc = acc + B[o,k]·A[k,i] for k ascending; w = w + acc·s).
static void merge_columns_scalar(float *w, size_t from, size_t in, const float *b, const float *a, size_t r, float s) {
    for (size_t i = from; i < in; i++) {
        float acc = 0;
        for (size_t k = 0; k < r; k++) {
            float p = b[k] * a[k * in + i];
            acc = acc + p;
        }
        float d = acc * s;
        w[i] = w[i] + d;
    }
}

#ifdef STEERTOOL_X86
/// 16 columns at a time per register, the k loop innermost with the sums kept in registers.
__attribute__((target("avx2")))
static size_t merge_columns_avx2(float *w, size_t in, const float *b, const float *a, size_t r, float s) {
    size_t i = 0;
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 16 <= in; i += 16) {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (size_t k = 0; k < r; k++) {
            __m256 vb = _mm256_set1_ps(b[k]);
            const float *ak = a + k * in + i;
            acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(vb, _mm256_loadu_ps(ak)));
            acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(vb, _mm256_loadu_ps(ak + 8)));
        }
        _mm256_storeu_ps(w + i, _mm256_add_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(acc0, vs)));
        _mm256_storeu_ps(w + i + 8, _mm256_add_ps(_mm256_loadu_ps(w + i + 8), _mm256_mul_ps(acc1, vs)));
    }
    return i;
}

__attribute__((target("avx512f")))
static size_t merge_columns_avx512(float *w, size_t in, const float *b, const float *a, size_t r, float s) {
    size_t i = 0;
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 32 <= in; i += 32) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (size_t k = 0; k < r; k++) {
            __m512 vb = _mm512_set1_ps(b[k]);
            const float *ak = a + k * in + i;
            acc0 = _mm512_add_ps(acc0, _mm512_mul_ps(vb, _mm512_loadu_ps(ak)));
            acc1 = _mm512_add_ps(acc1, _mm512_mul_ps(vb, _mm512_loadu_ps(ak + 16)));
        }
        _mm512_storeu_ps(w + i, _mm512_add_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(acc0, vs)));
        _mm512_storeu_ps(w + i + 16, _mm512_add_ps(_mm512_loadu_ps(w + i + 16), _mm512_mul_ps(acc1, vs)));
    }
    return i;
}

/// Four rows at once (row j: w + j·in with B row b + j·r), 16 columns per register, so each load
/// of A serves four rows and eight independent sums hide the add latency.
__attribute__((target("avx512f")))
static size_t merge_columns_avx512_quad(float *w, size_t in, const float *b, const float *a, size_t r, float s) {
    size_t i = 0;
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 32 <= in; i += 32) {
        __m512 c[4][2];
        for (int j = 0; j < 4; j++) { c[j][0] = _mm512_setzero_ps(); c[j][1] = _mm512_setzero_ps(); }
        for (size_t k = 0; k < r; k++) {
            const float *ak = a + k * in + i;
            __m512 x0 = _mm512_loadu_ps(ak), x1 = _mm512_loadu_ps(ak + 16);
            for (int j = 0; j < 4; j++) {
                __m512 u = _mm512_set1_ps(b[j * r + k]);
                c[j][0] = _mm512_add_ps(c[j][0], _mm512_mul_ps(u, x0));
                c[j][1] = _mm512_add_ps(c[j][1], _mm512_mul_ps(u, x1));
            }
        }
        for (int j = 0; j < 4; j++) {
            float *wj = w + j * in + i;
            _mm512_storeu_ps(wj, _mm512_add_ps(_mm512_loadu_ps(wj), _mm512_mul_ps(c[j][0], vs)));
            _mm512_storeu_ps(wj + 16, _mm512_add_ps(_mm512_loadu_ps(wj + 16), _mm512_mul_ps(c[j][1], vs)));
        }
    }
    return i;
}
#endif

void steertool_lora_merge_rows(float *w, size_t in, const float *b, const float *a, size_t r, float s,
                               size_t row_begin, size_t row_end, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
    size_t o = row_begin;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX512) {
        for (; o + 4 <= row_end; o += 4) {
            size_t done = merge_columns_avx512_quad(w + o * in, in, b + o * r, a, r, s);
            for (size_t j = 0; j < 4; j++) merge_columns_scalar(w + (o + j) * in, done, in, b + (o + j) * r, a, r, s);
        }
    }
#endif
    for (; o < row_end; o++) {
        float *wo = w + o * in;
        const float *bo = b + o * r;
        size_t done = 0;
#ifdef STEERTOOL_X86
        if (level >= STEERTOOL_KERNEL_AVX512) done = merge_columns_avx512(wo, in, bo, a, r, s);
        else if (level >= STEERTOOL_KERNEL_AVX2) done = merge_columns_avx2(wo, in, bo, a, r, s);
#endif
        merge_columns_scalar(wo, done, in, bo, a, r, s);
    }
}
