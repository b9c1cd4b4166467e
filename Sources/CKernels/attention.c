// Causal attention of one head, row by row; see include/CKernels.h.
#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#include <immintrin.h>
#endif

/// Row softmax in place over `n` scores, the arithmetic of the runtime's causal softmax: the
/// maximum subtracted, e^x through steertool_exp, a sequential f32 sum, one reciprocal.
static void softmax_row(float *s, size_t n, steertool_kernel_level level) {
    float m = -INFINITY;
    for (size_t j = 0; j < n; j++) m = s[j] > m ? s[j] : m;
    for (size_t j = 0; j < n; j++) s[j] -= m;
    steertool_exp(s, s, n, level);
    float sum = 0;
    for (size_t j = 0; j < n; j++) sum += s[j];
    float inv = 1.0f / sum;
    for (size_t j = 0; j < n; j++) s[j] *= inv;
}

static void attention_scalar(const float *q, size_t qs, const float *k, const float *v, size_t kvs, size_t hd,
                             size_t rows, size_t start, float scale, float *s, float *out, size_t os,
                             steertool_kernel_level level) {
    for (size_t i = 0; i < rows; i++) {
        const float *qi = q + i * qs;
        size_t visible = start + i + 1;
        for (size_t j = 0; j < visible; j++) {
            const float *kj = k + j * kvs;
            float dot = 0;
            for (size_t c = 0; c < hd; c++) dot += qi[c] * kj[c];
            s[j] = dot * scale;
        }
        softmax_row(s, visible, level);
        float *oi = out + i * os;
        for (size_t c = 0; c < hd; c++) oi[c] = 0;
        for (size_t j = 0; j < visible; j++) {
            const float *vj = v + j * kvs;
            float p = s[j];
            for (size_t c = 0; c < hd; c++) oi[c] += p * vj[c];
        }
    }
}

#ifdef STEERTOOL_X86
/// Sum of each of four 8-lane accumulators, as [Σa0, Σa1, Σa2, Σa3].
__attribute__((target("avx2,fma")))
static inline __m128 sum4_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// head_dim a multiple of 8: scores four keys at a time, the weighted sum of values 32 (then 8)
/// output columns at a time held in registers across all keys.
__attribute__((target("avx2,fma")))
static void attention_avx2(const float *q, size_t qs, const float *k, const float *v, size_t kvs, size_t hd,
                           size_t rows, size_t start, float scale, float *s, float *out, size_t os,
                           steertool_kernel_level level) {
    const __m128 vscale = _mm_set1_ps(scale);
    for (size_t i = 0; i < rows; i++) {
        const float *qi = q + i * qs;
        size_t visible = start + i + 1, j = 0;
        for (; j + 4 <= visible; j += 4) {
            const float *k0 = k + j * kvs, *k1 = k0 + kvs, *k2 = k1 + kvs, *k3 = k2 + kvs;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t c = 0; c < hd; c += 8) {
                __m256 qv = _mm256_loadu_ps(qi + c);
                a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + c), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + c), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + c), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + c), a3);
            }
            _mm_storeu_ps(s + j, _mm_mul_ps(sum4_avx2(a0, a1, a2, a3), vscale));
        }
        for (; j < visible; j++) {
            const float *kj = k + j * kvs;
            __m256 a = _mm256_setzero_ps();
            for (size_t c = 0; c < hd; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qi + c), _mm256_loadu_ps(kj + c), a);
            s[j] = _mm_cvtss_f32(sum4_avx2(a, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())) * scale;
        }
        softmax_row(s, visible, level);
        float *oi = out + i * os;
        size_t c = 0;
        for (; c + 32 <= hd; c += 32) {
            __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
            for (size_t jj = 0; jj < visible; jj++) {
                const float *vj = v + jj * kvs + c;
                __m256 p = _mm256_broadcast_ss(s + jj);
                o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj), o0);
                o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 8), o1);
                o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 16), o2);
                o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 24), o3);
            }
            _mm256_storeu_ps(oi + c, o0); _mm256_storeu_ps(oi + c + 8, o1);
            _mm256_storeu_ps(oi + c + 16, o2); _mm256_storeu_ps(oi + c + 24, o3);
        }
        for (; c < hd; c += 8) {
            __m256 o = _mm256_setzero_ps();
            for (size_t jj = 0; jj < visible; jj++)
                o = _mm256_fmadd_ps(_mm256_broadcast_ss(s + jj), _mm256_loadu_ps(v + jj * kvs + c), o);
            _mm256_storeu_ps(oi + c, o);
        }
    }
}
#endif

void steertool_causal_attention_head(const float *q, size_t q_stride, const float *k, const float *v,
                                     size_t kv_stride, size_t head_dim, size_t rows, size_t start, float scale,
                                     float *scores, float *out, size_t out_stride, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2 && head_dim % 8 == 0) {
        attention_avx2(q, q_stride, k, v, kv_stride, head_dim, rows, start, scale, scores, out, out_stride, level);
        return;
    }
#endif
    attention_scalar(q, q_stride, k, v, kv_stride, head_dim, rows, start, scale, scores, out, out_stride, level);
}
