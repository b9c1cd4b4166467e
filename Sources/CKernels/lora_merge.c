// Bit-reproducible LoRA merge rows; see include/CKernels.h.
#include "CKernels.h"

// Products and sums are rounded separately everywhere (the result must not depend on whether a
// CPU or compiler fuses multiply-add).
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#include <immintrin.h>
#endif

static void merge_row_scalar(float *w, size_t in, const float *b, const float *a, size_t r, float s, float *acc) {
    for (size_t i = 0; i < in; i++) acc[i] = 0;
    for (size_t k = 0; k < r; k++) {
        const float bk = b[k];
        const float *ak = a + k * in;
        for (size_t i = 0; i < in; i++) {
            float p = bk * ak[i];
            acc[i] = acc[i] + p;
        }
    }
    for (size_t i = 0; i < in; i++) {
        float d = acc[i] * s;
        w[i] = w[i] + d;
    }
}

#ifdef STEERTOOL_X86
__attribute__((target("avx2")))
static void merge_row_avx2(float *w, size_t in, const float *b, const float *a, size_t r, float s, float *acc) {
    size_t vec = in & ~(size_t)7;
    for (size_t i = 0; i < in; i++) acc[i] = 0;
    for (size_t k = 0; k < r; k++) {
        const float bk = b[k];
        const float *ak = a + k * in;
        __m256 vb = _mm256_set1_ps(bk);
        size_t i = 0;
        for (; i < vec; i += 8)
            _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), _mm256_mul_ps(vb, _mm256_loadu_ps(ak + i))));
        for (; i < in; i++) {
            float p = bk * ak[i];
            acc[i] = acc[i] + p;
        }
    }
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i < vec; i += 8)
        _mm256_storeu_ps(w + i, _mm256_add_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(acc + i), vs)));
    for (; i < in; i++) {
        float d = acc[i] * s;
        w[i] = w[i] + d;
    }
}
#endif

void steertool_lora_merge_rows(float *w, size_t in, const float *b, const float *a, size_t r, float s,
                               size_t row_begin, size_t row_end, float *scratch) {
    for (size_t o = row_begin; o < row_end; o++) {
#ifdef STEERTOOL_X86
        if (steertool_kernel_best_level() >= STEERTOOL_KERNEL_AVX2) {
            merge_row_avx2(w + o * in, in, b + o * r, a, r, s, scratch);
            continue;
        }
#endif
        merge_row_scalar(w + o * in, in, b + o * r, a, r, s, scratch);
    }
}
