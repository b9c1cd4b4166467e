// Q8_0 matrix-vector product and row dequantization; see include/CKernels.h.
#include "CKernels.h"
#include "half_float.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#include <immintrin.h>
#endif

static inline float half_to_float(uint16_t h) { return steertool_f16_to_f32(h); }

static inline uint16_t load_u16(const uint8_t *p) { return steertool_load_u16(p); }

static void matvec_scalar(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, const float *x, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = blocks + r * bpr * STEERTOOL_Q8_0_BLOCK_BYTES;
        float acc = 0;
        for (size_t b = 0; b < bpr; b++) {
            const uint8_t *blk = row + b * STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q = (const int8_t *)(blk + 2);
            const float *xb = x + b * STEERTOOL_Q8_0_BLOCK_VALUES;
            float s = 0;
            for (int i = 0; i < STEERTOOL_Q8_0_BLOCK_VALUES; i++) s += (float)q[i] * xb[i];
            acc += half_to_float(load_u16(blk)) * s;
        }
        y[r - r0] = acc;
    }
}

static void dequantize_scalar(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, float *out) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = blocks + r * bpr * STEERTOOL_Q8_0_BLOCK_BYTES;
        float *o = out + (r - r0) * bpr * STEERTOOL_Q8_0_BLOCK_VALUES;
        for (size_t b = 0; b < bpr; b++) {
            const uint8_t *blk = row + b * STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q = (const int8_t *)(blk + 2);
            float d = half_to_float(load_u16(blk));
            for (int i = 0; i < STEERTOOL_Q8_0_BLOCK_VALUES; i++) o[b * STEERTOOL_Q8_0_BLOCK_VALUES + i] = d * (float)q[i];
        }
    }
}

#ifdef STEERTOOL_X86
/// 8 int8 at p → 8 floats.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 cvt8(const int8_t *p) {
    __m128i v;
    memcpy(&v, p, 8);  // low 64 bits; the rest is ignored by cvtepi8_epi32
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

__attribute__((target("avx2,fma,f16c")))
static void matvec_avx2(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, const float *x, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = blocks + r * bpr * STEERTOOL_Q8_0_BLOCK_BYTES;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        size_t b = 0;
        for (; b + 1 < bpr; b += 2) {
            const uint8_t *k0 = row + b * STEERTOOL_Q8_0_BLOCK_BYTES, *k1 = k0 + STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q0 = (const int8_t *)(k0 + 2), *q1 = (const int8_t *)(k1 + 2);
            const float *x0 = x + b * STEERTOOL_Q8_0_BLOCK_VALUES, *x1 = x0 + STEERTOOL_Q8_0_BLOCK_VALUES;
            __m256 s0 = _mm256_mul_ps(cvt8(q0), _mm256_loadu_ps(x0));
            __m256 s1 = _mm256_mul_ps(cvt8(q1), _mm256_loadu_ps(x1));
            s0 = _mm256_fmadd_ps(cvt8(q0 + 8), _mm256_loadu_ps(x0 + 8), s0);
            s1 = _mm256_fmadd_ps(cvt8(q1 + 8), _mm256_loadu_ps(x1 + 8), s1);
            s0 = _mm256_fmadd_ps(cvt8(q0 + 16), _mm256_loadu_ps(x0 + 16), s0);
            s1 = _mm256_fmadd_ps(cvt8(q1 + 16), _mm256_loadu_ps(x1 + 16), s1);
            s0 = _mm256_fmadd_ps(cvt8(q0 + 24), _mm256_loadu_ps(x0 + 24), s0);
            s1 = _mm256_fmadd_ps(cvt8(q1 + 24), _mm256_loadu_ps(x1 + 24), s1);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(k0))), s0, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(k1))), s1, acc1);
        }
        for (; b < bpr; b++) {
            const uint8_t *k0 = row + b * STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q0 = (const int8_t *)(k0 + 2);
            const float *x0 = x + b * STEERTOOL_Q8_0_BLOCK_VALUES;
            __m256 s0 = _mm256_mul_ps(cvt8(q0), _mm256_loadu_ps(x0));
            s0 = _mm256_fmadd_ps(cvt8(q0 + 8), _mm256_loadu_ps(x0 + 8), s0);
            s0 = _mm256_fmadd_ps(cvt8(q0 + 16), _mm256_loadu_ps(x0 + 16), s0);
            s0 = _mm256_fmadd_ps(cvt8(q0 + 24), _mm256_loadu_ps(x0 + 24), s0);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(k0))), s0, acc0);
        }
        __m256 acc = _mm256_add_ps(acc0, acc1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        y[r - r0] = _mm_cvtss_f32(h);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void dequantize_avx2(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, float *out) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = blocks + r * bpr * STEERTOOL_Q8_0_BLOCK_BYTES;
        float *o = out + (r - r0) * bpr * STEERTOOL_Q8_0_BLOCK_VALUES;
        for (size_t b = 0; b < bpr; b++) {
            const uint8_t *blk = row + b * STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q = (const int8_t *)(blk + 2);
            __m256 d = _mm256_set1_ps(_cvtsh_ss(load_u16(blk)));
            float *ob = o + b * STEERTOOL_Q8_0_BLOCK_VALUES;
            _mm256_storeu_ps(ob, _mm256_mul_ps(d, cvt8(q)));
            _mm256_storeu_ps(ob + 8, _mm256_mul_ps(d, cvt8(q + 8)));
            _mm256_storeu_ps(ob + 16, _mm256_mul_ps(d, cvt8(q + 16)));
            _mm256_storeu_ps(ob + 24, _mm256_mul_ps(d, cvt8(q + 24)));
        }
    }
}

/// 16 int8 at p → 16 floats.
__attribute__((target("avx512f,f16c")))
static inline __m512 cvt16(const int8_t *p) {
    __m128i v;
    memcpy(&v, p, 16);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}

__attribute__((target("avx512f,f16c")))
static void matvec_avx512(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, const float *x, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = blocks + r * bpr * STEERTOOL_Q8_0_BLOCK_BYTES;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        size_t b = 0;
        for (; b + 1 < bpr; b += 2) {
            const uint8_t *k0 = row + b * STEERTOOL_Q8_0_BLOCK_BYTES, *k1 = k0 + STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q0 = (const int8_t *)(k0 + 2), *q1 = (const int8_t *)(k1 + 2);
            const float *x0 = x + b * STEERTOOL_Q8_0_BLOCK_VALUES, *x1 = x0 + STEERTOOL_Q8_0_BLOCK_VALUES;
            __m512 s0 = _mm512_mul_ps(cvt16(q0), _mm512_loadu_ps(x0));
            __m512 s1 = _mm512_mul_ps(cvt16(q1), _mm512_loadu_ps(x1));
            s0 = _mm512_fmadd_ps(cvt16(q0 + 16), _mm512_loadu_ps(x0 + 16), s0);
            s1 = _mm512_fmadd_ps(cvt16(q1 + 16), _mm512_loadu_ps(x1 + 16), s1);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(load_u16(k0))), s0, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(load_u16(k1))), s1, acc1);
        }
        for (; b < bpr; b++) {
            const uint8_t *k0 = row + b * STEERTOOL_Q8_0_BLOCK_BYTES;
            const int8_t *q0 = (const int8_t *)(k0 + 2);
            const float *x0 = x + b * STEERTOOL_Q8_0_BLOCK_VALUES;
            __m512 s0 = _mm512_mul_ps(cvt16(q0), _mm512_loadu_ps(x0));
            s0 = _mm512_fmadd_ps(cvt16(q0 + 16), _mm512_loadu_ps(x0 + 16), s0);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(load_u16(k0))), s0, acc0);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}
#endif

steertool_kernel_level steertool_kernel_best_level(void) {
#ifdef STEERTOOL_X86
    // Computed once; threads racing here compute the same value, and the atomics keep that race defined.
    static int level = -1;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known < 0) {
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        int avx512 = avx2 && __builtin_cpu_supports("avx512f");
        known = avx512 ? STEERTOOL_KERNEL_AVX512 : (avx2 ? STEERTOOL_KERNEL_AVX2 : STEERTOOL_KERNEL_SCALAR);
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    return (steertool_kernel_level)known;
#else
    return STEERTOOL_KERNEL_SCALAR;
#endif
}

void steertool_q8_0_matvec(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, const float *x, float *y,
                           steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level == STEERTOOL_KERNEL_AVX512) { matvec_avx512(blocks, bpr, r0, r1, x, y); return; }
    if (level == STEERTOOL_KERNEL_AVX2) { matvec_avx2(blocks, bpr, r0, r1, x, y); return; }
#endif
    matvec_scalar(blocks, bpr, r0, r1, x, y);
}

void steertool_q8_0_dequantize_rows(const uint8_t *blocks, size_t bpr, size_t r0, size_t r1, float *out) {
#ifdef STEERTOOL_X86
    if (steertool_kernel_best_level() >= STEERTOOL_KERNEL_AVX2) { dequantize_avx2(blocks, bpr, r0, r1, out); return; }
#endif
    dequantize_scalar(blocks, bpr, r0, r1, out);
}
