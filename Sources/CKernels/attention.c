// Causal attention of one head; see include/CKernels.h.
#include "CKernels.h"
#include "exp_vector.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define STEERTOOL_X86 1
#endif

/// Row softmax in place over `n` scores (the portable path), the arithmetic of the runtime's
/// causal softmax: the maximum subtracted, e^x through steertool_exp, a sequential f32 sum, one
/// reciprocal.
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

/// One query row over the `visible` keys and values at k and v (the portable path).
static void attention_row_scalar(const float *qi, const float *k, const float *v, size_t kvs, size_t hd,
                                 size_t visible, float scale, float *s, float *oi, steertool_kernel_level level) {
    for (size_t j = 0; j < visible; j++) {
        const float *kj = k + j * kvs;
        float dot = 0;
        for (size_t c = 0; c < hd; c++) dot += qi[c] * kj[c];
        s[j] = dot * scale;
    }
    softmax_row(s, visible, level);
    for (size_t c = 0; c < hd; c++) oi[c] = 0;
    for (size_t j = 0; j < visible; j++) {
        const float *vj = v + j * kvs;
        float p = s[j];
        for (size_t c = 0; c < hd; c++) oi[c] += p * vj[c];
    }
}

static void attention_scalar(const float *q, size_t qs, const float *k, const float *v, size_t kvs, size_t hd,
                             size_t rows, size_t start, float scale, float *s, float *out, size_t os,
                             steertool_kernel_level level) {
    for (size_t i = 0; i < rows; i++)
        attention_row_scalar(q + i * qs, k, v, kvs, hd, start + i + 1, scale, s, out + i * os, level);
}

#ifdef STEERTOOL_X86
/// Sum of each of four 8-lane accumulators, as [Σa0, Σa1, Σa2, Σa3].
__attribute__((target("avx2,fma")))
static inline __m128 sum4_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// Largest of four lanes.
__attribute__((target("avx2,fma")))
static inline float max4_avx2(__m128 x) {
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}

/// e^(s - max) over n scores in place (eight at a time, the tail as steertool_exp's), returning
/// their sum (eight lanes, then the tail).
__attribute__((target("avx2,fma"), always_inline))
static inline float exp_shifted_sum_avx2(float *s, size_t n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = steertool_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(vsum), _mm256_extractf128_ps(vsum, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float sum = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
    for (; j < n; j++) {
        s[j] = steertool_exp_scalar(s[j] - m);
        sum += s[j];
    }
    return sum;
}

/// One query row, head_dim a multiple of 8 (inlined with head_dim 64 as a constant so that the
/// loops over it unroll): scores four keys at a time with their running maximum; e^(s - max) eight
/// at a time summed in eight lanes; the weighted sum of values 32 (then 8) output columns at a
/// time held in registers across all keys, scaled by 1/sum once at the end.
__attribute__((target("avx2,fma"), always_inline))
static inline void attention_row_avx2(const float *qi, const float *k, const float *v, size_t kvs, size_t hd,
                                      size_t visible, float scale, float *s, float *oi) {
    const __m128 vscale = _mm_set1_ps(scale);
    __m128 vmax = _mm_set1_ps(-INFINITY);
    size_t j = 0;
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
        __m128 r = _mm_mul_ps(sum4_avx2(a0, a1, a2, a3), vscale);
        _mm_storeu_ps(s + j, r);
        vmax = _mm_max_ps(vmax, r);
    }
    float m = max4_avx2(vmax);
    for (; j < visible; j++) {
        const float *kj = k + j * kvs;
        __m256 a = _mm256_setzero_ps();
        for (size_t c = 0; c < hd; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qi + c), _mm256_loadu_ps(kj + c), a);
        s[j] = _mm_cvtss_f32(sum4_avx2(a, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())) * scale;
        m = s[j] > m ? s[j] : m;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / exp_shifted_sum_avx2(s, visible, m));
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
        _mm256_storeu_ps(oi + c, _mm256_mul_ps(o0, inv)); _mm256_storeu_ps(oi + c + 8, _mm256_mul_ps(o1, inv));
        _mm256_storeu_ps(oi + c + 16, _mm256_mul_ps(o2, inv)); _mm256_storeu_ps(oi + c + 24, _mm256_mul_ps(o3, inv));
    }
    for (; c < hd; c += 8) {
        __m256 o = _mm256_setzero_ps();
        for (size_t jj = 0; jj < visible; jj++)
            o = _mm256_fmadd_ps(_mm256_broadcast_ss(s + jj), _mm256_loadu_ps(v + jj * kvs + c), o);
        _mm256_storeu_ps(oi + c, _mm256_mul_ps(o, inv));
    }
}

/// Two consecutive query rows of one head, sharing every key and value load: row a sees
/// `visible - 1` keys, row b `visible`. Row a's extra score is set to 0 after the softmax (it is
/// left out of a's maximum and sum), so the weighted sum runs over the same keys for both.
/// Value columns 32 (then 8) at a time for both rows, held in registers across the keys.
__attribute__((target("avx2,fma"), always_inline))
static inline void attention_row_pair_avx2(const float *qa, const float *qb, const float *k, const float *v,
                                           size_t kvs, size_t hd, size_t visible, float scale,
                                           float *sa, float *sb, float *oa, float *ob) {
    const __m128 vscale = _mm_set1_ps(scale);
    __m128 maxa = _mm_set1_ps(-INFINITY), maxb = maxa;
    const size_t va = visible - 1;
    size_t j = 0;
    for (; j + 4 <= va; j += 4) {
        const float *k0 = k + j * kvs, *k1 = k0 + kvs, *k2 = k1 + kvs, *k3 = k2 + kvs;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t c = 0; c < hd; c += 8) {
            __m256 x = _mm256_loadu_ps(qa + c), y = _mm256_loadu_ps(qb + c), kv;
            kv = _mm256_loadu_ps(k0 + c); a0 = _mm256_fmadd_ps(x, kv, a0); b0 = _mm256_fmadd_ps(y, kv, b0);
            kv = _mm256_loadu_ps(k1 + c); a1 = _mm256_fmadd_ps(x, kv, a1); b1 = _mm256_fmadd_ps(y, kv, b1);
            kv = _mm256_loadu_ps(k2 + c); a2 = _mm256_fmadd_ps(x, kv, a2); b2 = _mm256_fmadd_ps(y, kv, b2);
            kv = _mm256_loadu_ps(k3 + c); a3 = _mm256_fmadd_ps(x, kv, a3); b3 = _mm256_fmadd_ps(y, kv, b3);
        }
        __m128 ra = _mm_mul_ps(sum4_avx2(a0, a1, a2, a3), vscale), rb = _mm_mul_ps(sum4_avx2(b0, b1, b2, b3), vscale);
        _mm_storeu_ps(sa + j, ra); _mm_storeu_ps(sb + j, rb);
        maxa = _mm_max_ps(maxa, ra); maxb = _mm_max_ps(maxb, rb);
    }
    float ma = max4_avx2(maxa), mb = max4_avx2(maxb);
    for (; j < visible; j++) {
        const float *kj = k + j * kvs;
        __m256 a = _mm256_setzero_ps(), b = a;
        for (size_t c = 0; c < hd; c += 8) {
            __m256 kv = _mm256_loadu_ps(kj + c);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(qa + c), kv, a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(qb + c), kv, b);
        }
        const __m256 z = _mm256_setzero_ps();
        if (j < va) {
            sa[j] = _mm_cvtss_f32(sum4_avx2(a, z, z, z)) * scale;
            ma = sa[j] > ma ? sa[j] : ma;
        }
        sb[j] = _mm_cvtss_f32(sum4_avx2(b, z, z, z)) * scale;
        mb = sb[j] > mb ? sb[j] : mb;
    }
    const __m256 inva = _mm256_set1_ps(1.0f / exp_shifted_sum_avx2(sa, va, ma));
    const __m256 invb = _mm256_set1_ps(1.0f / exp_shifted_sum_avx2(sb, visible, mb));
    sa[va] = 0;
    size_t c = 0;
    for (; c + 32 <= hd; c += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t jj = 0; jj < visible; jj++) {
            const float *vj = v + jj * kvs + c;
            __m256 pa = _mm256_broadcast_ss(sa + jj), pb = _mm256_broadcast_ss(sb + jj), x;
            x = _mm256_loadu_ps(vj); a0 = _mm256_fmadd_ps(pa, x, a0); b0 = _mm256_fmadd_ps(pb, x, b0);
            x = _mm256_loadu_ps(vj + 8); a1 = _mm256_fmadd_ps(pa, x, a1); b1 = _mm256_fmadd_ps(pb, x, b1);
            x = _mm256_loadu_ps(vj + 16); a2 = _mm256_fmadd_ps(pa, x, a2); b2 = _mm256_fmadd_ps(pb, x, b2);
            x = _mm256_loadu_ps(vj + 24); a3 = _mm256_fmadd_ps(pa, x, a3); b3 = _mm256_fmadd_ps(pb, x, b3);
        }
        _mm256_storeu_ps(oa + c, _mm256_mul_ps(a0, inva)); _mm256_storeu_ps(oa + c + 8, _mm256_mul_ps(a1, inva));
        _mm256_storeu_ps(oa + c + 16, _mm256_mul_ps(a2, inva)); _mm256_storeu_ps(oa + c + 24, _mm256_mul_ps(a3, inva));
        _mm256_storeu_ps(ob + c, _mm256_mul_ps(b0, invb)); _mm256_storeu_ps(ob + c + 8, _mm256_mul_ps(b1, invb));
        _mm256_storeu_ps(ob + c + 16, _mm256_mul_ps(b2, invb)); _mm256_storeu_ps(ob + c + 24, _mm256_mul_ps(b3, invb));
    }
    for (; c < hd; c += 8) {
        __m256 a = _mm256_setzero_ps(), b = a;
        for (size_t jj = 0; jj < visible; jj++) {
            __m256 x = _mm256_loadu_ps(v + jj * kvs + c);
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(sa + jj), x, a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(sb + jj), x, b);
        }
        _mm256_storeu_ps(oa + c, _mm256_mul_ps(a, inva));
        _mm256_storeu_ps(ob + c, _mm256_mul_ps(b, invb));
    }
}

/// Rows in pairs (each pair shares its key and value loads), an odd last row alone.
__attribute__((target("avx2,fma"), always_inline))
static inline void attention_rows_avx2(const float *q, size_t qs, const float *k, const float *v, size_t kvs,
                                       size_t hd, size_t rows, size_t start, float scale, float *s, float *out,
                                       size_t os) {
    float *s2 = s + start + rows;
    size_t i = 0;
    for (; i + 2 <= rows; i += 2)
        attention_row_pair_avx2(q + i * qs, q + (i + 1) * qs, k, v, kvs, hd, start + i + 2, scale, s, s2,
                                out + i * os, out + (i + 1) * os);
    if (i < rows) attention_row_avx2(q + i * qs, k, v, kvs, hd, start + i + 1, scale, s, out + i * os);
}

/// head_dim 64 passed as a constant so that the loops over it unroll.
__attribute__((target("avx2,fma")))
static void attention_avx2(const float *q, size_t qs, const float *k, const float *v, size_t kvs, size_t hd,
                           size_t rows, size_t start, float scale, float *s, float *out, size_t os) {
    if (hd == 64) attention_rows_avx2(q, qs, k, v, kvs, 64, rows, start, scale, s, out, os);
    else attention_rows_avx2(q, qs, k, v, kvs, hd, rows, start, scale, s, out, os);
}

/// Sliding window: query i at position P = start + i sees keys max(0, P + 1 − window) … P, each
/// row on its own (a pair of rows no longer shares its first key).
__attribute__((target("avx2,fma")))
static void attention_window_avx2(const float *q, size_t qs, const float *k, const float *v, size_t kvs, size_t hd,
                                  size_t rows, size_t start, size_t window, float scale, float *s, float *out,
                                  size_t os) {
    for (size_t i = 0; i < rows; i++) {
        const size_t p = start + i, first = p + 1 > window ? p + 1 - window : 0;
        attention_row_avx2(q + i * qs, k + first * kvs, v + first * kvs, kvs, hd, p - first + 1, scale, s, out + i * os);
    }
}
#endif

void steertool_causal_attention_head(const float *q, size_t q_stride, const float *k, const float *v,
                                     size_t kv_stride, size_t head_dim, size_t rows, size_t start, size_t window,
                                     float scale, float *scores, float *out, size_t out_stride,
                                     steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
    if (window > 0 && start + rows > window) {
#ifdef STEERTOOL_X86
        if (level >= STEERTOOL_KERNEL_AVX2 && head_dim % 8 == 0) {
            attention_window_avx2(q, q_stride, k, v, kv_stride, head_dim, rows, start, window, scale, scores, out,
                                  out_stride);
            return;
        }
#endif
        for (size_t i = 0; i < rows; i++) {
            const size_t p = start + i, first = p + 1 > window ? p + 1 - window : 0;
            attention_row_scalar(q + i * q_stride, k + first * kv_stride, v + first * kv_stride, kv_stride, head_dim,
                                 p - first + 1, scale, scores, out + i * out_stride, level);
        }
        return;
    }
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2 && head_dim % 8 == 0) {
        attention_avx2(q, q_stride, k, v, kv_stride, head_dim, rows, start, scale, scores, out, out_stride);
        return;
    }
#endif
    attention_scalar(q, q_stride, k, v, kv_stride, head_dim, rows, start, scale, scores, out, out_stride, level);
}
