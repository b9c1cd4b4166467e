// GGML block-quantized matrices read in place: row widening and the matrix-vector product for
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K; see include/CKernels.h.
//
// Every block is decoded with gguf-py's float operations in its order (f32 products, a separate
// add, never a fused multiply-add: FP_CONTRACT is off), so a widened row equals gguf-py's
// dequantization bit for bit. The product reads each block once, never widening a row to memory:
// the portable path decodes it into a small buffer and multiplies there, the AVX2 path factors the
// block's scale and offset out of its sum.
#include "CKernels.h"
#include "half_float.h"

#include <string.h>

#pragma STDC FP_CONTRACT OFF

static inline float f16(const uint8_t *p) { return steertool_f16_to_f32(steertool_load_u16(p)); }

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;  // little-endian hosts only (x86-64, arm64)
}

// Q4_0: d f16 | qs[16]; x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8).
static inline void block_q4_0(const uint8_t *p, float *y) {
    const float d = f16(p);
    const uint8_t *qs = p + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((int)(qs[j] & 0x0f) - 8);
        y[j + 16] = d * (float)((int)(qs[j] >> 4) - 8);
    }
}

// Q4_1: d f16 | m f16 | qs[16]; x = d·q + m.
static inline void block_q4_1(const uint8_t *p, float *y) {
    const float d = f16(p), m = f16(p + 2);
    const uint8_t *qs = p + 4;
    for (int j = 0; j < 16; j++) {
        float a = d * (float)(qs[j] & 0x0f), b = d * (float)(qs[j] >> 4);
        y[j] = a + m;
        y[j + 16] = b + m;
    }
}

// Q5_0: d f16 | qh u32 | qs[16]; bit j of qh is the 5th bit of element j; x = d·(q − 16).
static inline void block_q5_0(const uint8_t *p, float *y) {
    const float d = f16(p);
    const uint32_t qh = load_u32(p + 2);
    const uint8_t *qs = p + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

// Q5_1: d f16 | m f16 | qh u32 | qs[16]; x = d·q + m.
static inline void block_q5_1(const uint8_t *p, float *y) {
    const float d = f16(p), m = f16(p + 2);
    const uint32_t qh = load_u32(p + 4);
    const uint8_t *qs = p + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        float a = d * (float)lo, b = d * (float)hi;
        y[j] = a + m;
        y[j + 16] = b + m;
    }
}

// Q8_0: d f16 | qs[32] signed; x = d·q.
static inline void block_q8_0(const uint8_t *p, float *y) {
    const float d = f16(p);
    const int8_t *qs = (const int8_t *)(p + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)qs[j];
}

/// The 6-bit scale and min of sub-block j (0..<8) of a Q4_K / Q5_K block.
static inline void scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 2) & 0x30));
    }
}

// Q4_K: d f16 | dmin f16 | scales[12] | qs[128]. Sub-block g = 2c + k holds (qs[32c + l] >> 4k) & 15:
// x = (d·sc[g])·q − dmin·m[g].
static inline void block_q4_K(const uint8_t *p, float *y) {
    const float d = f16(p), dmin = f16(p + 2);
    const uint8_t *s = p + 4, *qs = p + 16;
    for (int c = 0; c < 4; c++) {
        uint8_t sc0, m0, sc1, m1;
        scale_min(s, 2 * c, &sc0, &m0);
        scale_min(s, 2 * c + 1, &sc1, &m1);
        const float d0 = d * (float)sc0, dm0 = dmin * (float)m0, d1 = d * (float)sc1, dm1 = dmin * (float)m1;
        const uint8_t *q = qs + 32 * c;
        float *out = y + 64 * c;
        for (int l = 0; l < 32; l++) {
            float a = d0 * (float)(q[l] & 0x0f), b = d1 * (float)(q[l] >> 4);
            out[l] = a - dm0;
            out[l + 32] = b - dm1;
        }
    }
}

// Q5_K: d f16 | dmin f16 | scales[12] | qh[32] | qs[128]; as Q4_K with the 5th bit of sub-block
// g's element l in (qh[l] >> g) & 1.
static inline void block_q5_K(const uint8_t *p, float *y) {
    const float d = f16(p), dmin = f16(p + 2);
    const uint8_t *s = p + 4, *qh = p + 16, *qs = p + 48;
    for (int c = 0; c < 4; c++) {
        uint8_t sc0, m0, sc1, m1;
        scale_min(s, 2 * c, &sc0, &m0);
        scale_min(s, 2 * c + 1, &sc1, &m1);
        const float d0 = d * (float)sc0, dm0 = dmin * (float)m0, d1 = d * (float)sc1, dm1 = dmin * (float)m1;
        const uint8_t *q = qs + 32 * c;
        float *out = y + 64 * c;
        const int b0 = 2 * c, b1 = 2 * c + 1;
        for (int l = 0; l < 32; l++) {
            int lo = (q[l] & 0x0f) | (((qh[l] >> b0) & 1) << 4);
            int hi = (q[l] >> 4) | (((qh[l] >> b1) & 1) << 4);
            float a = d0 * (float)lo, b = d1 * (float)hi;
            out[l] = a - dm0;
            out[l + 32] = b - dm1;
        }
    }
}

// Q6_K: ql[128] | qh[64] | scales int8[16] | d f16. Element i = 128h + j: low 4 bits
// (ql[64h + j % 64] >> 4·(j / 64)) & 15, high 2 bits (qh[32h + j % 32] >> 2·(j / 32)) & 3;
// x = (d·scales[i / 16])·(q − 32).
static inline void block_q6_K(const uint8_t *p, float *y) {
    const int8_t *sc = (const int8_t *)(p + 192);
    const float d = f16(p + 208);
    float s[16];
    for (int k = 0; k < 16; k++) s[k] = d * (float)sc[k];
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
        const float *g = s + 8 * h;
        float *out = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            const int hi = qh[l], gi = l >> 4;
            int q1 = (int)((ql[l] & 0x0f) | ((hi & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0x0f) | (((hi >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((hi >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((hi >> 6) & 3) << 4)) - 32;
            out[l] = g[gi] * (float)q1;
            out[l + 32] = g[gi + 2] * (float)q2;
            out[l + 64] = g[gi + 4] * (float)q3;
            out[l + 96] = g[gi + 6] * (float)q4;
        }
    }
}

/// Decodes one block of `type` at p into y (its block-size values).
static inline __attribute__((always_inline)) void decode_block(steertool_ggml_type type, const uint8_t *p, float *y) {
    switch (type) {
    case STEERTOOL_GGML_Q4_0: block_q4_0(p, y); break;
    case STEERTOOL_GGML_Q4_1: block_q4_1(p, y); break;
    case STEERTOOL_GGML_Q5_0: block_q5_0(p, y); break;
    case STEERTOOL_GGML_Q5_1: block_q5_1(p, y); break;
    case STEERTOOL_GGML_Q8_0: block_q8_0(p, y); break;
    case STEERTOOL_GGML_Q4_K: block_q4_K(p, y); break;
    case STEERTOOL_GGML_Q5_K: block_q5_K(p, y); break;
    case STEERTOOL_GGML_Q6_K: block_q6_K(p, y); break;
    }
}

static inline size_t block_values(steertool_ggml_type type) {
    switch (type) {
    case STEERTOOL_GGML_Q4_0: case STEERTOOL_GGML_Q4_1: case STEERTOOL_GGML_Q5_0: case STEERTOOL_GGML_Q5_1:
    case STEERTOOL_GGML_Q8_0: return 32;
    case STEERTOOL_GGML_Q4_K: case STEERTOOL_GGML_Q5_K: case STEERTOOL_GGML_Q6_K: return 256;
    }
    return 0;
}

static inline size_t block_bytes(steertool_ggml_type type) {
    switch (type) {
    case STEERTOOL_GGML_Q4_0: return 18;
    case STEERTOOL_GGML_Q4_1: return 20;
    case STEERTOOL_GGML_Q5_0: return 22;
    case STEERTOOL_GGML_Q5_1: return 24;
    case STEERTOOL_GGML_Q8_0: return 34;
    case STEERTOOL_GGML_Q4_K: return 144;
    case STEERTOOL_GGML_Q5_K: return 176;
    case STEERTOOL_GGML_Q6_K: return 210;
    }
    return 0;
}

size_t steertool_ggml_block_values(steertool_ggml_type type) { return block_values(type); }
size_t steertool_ggml_block_bytes(steertool_ggml_type type) { return block_bytes(type); }

static inline const uint8_t *row_at(const void *w, size_t row_bytes, const uint32_t *row_index, size_t r) {
    return (const uint8_t *)w + (row_index ? (size_t)row_index[r] : r) * row_bytes;
}

static void widen_generic(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                          float *out, size_t ldo, steertool_ggml_type type) {
    const size_t values = block_values(type), bytes = block_bytes(type);
    const size_t blocks = k / values, row_bytes = blocks * bytes;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        float *o = out + (r - row_begin) * ldo;
        for (size_t b = 0; b < blocks; b++) decode_block(type, row + b * bytes, o + b * values);
    }
}

/// Σ_j y[j]·x[j] over one decoded block of n (32 or 256) values, in 8 running lanes summed
/// pairwise at the end (the portable path).
static inline __attribute__((always_inline)) void accumulate_block(const float *y, const float *x, size_t n, float lanes[8]) {
    for (size_t j = 0; j < n; j += 8) {
        for (int i = 0; i < 8; i++) {
            float t = y[j + i] * x[j + i];
            lanes[i] = lanes[i] + t;
        }
    }
}

static inline __attribute__((always_inline)) void matvec_rows(const void *w, size_t k, const uint32_t *row_index,
                                                             size_t row_begin, size_t row_end, const float *x, float *y,
                                                             steertool_ggml_type type) {
    const size_t values = block_values(type), bytes = block_bytes(type);
    const size_t blocks = k / values, row_bytes = blocks * bytes;
    float decoded[256];
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t b = 0; b < blocks; b++) {
            decode_block(type, row + b * bytes, decoded);
            accumulate_block(decoded, x + b * values, values, lanes);
        }
        float s0 = lanes[0] + lanes[4], s1 = lanes[1] + lanes[5], s2 = lanes[2] + lanes[6], s3 = lanes[3] + lanes[7];
        y[r - row_begin] = (s0 + s2) + (s1 + s3);
    }
}

static void matvec_generic(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                           const float *x, float *y, steertool_ggml_type type) {
    matvec_rows(w, k, row_index, row_begin, row_end, x, y, type);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "horizontal_sum.h"

// AVX2: a widened block's values are formed 8 at a time with the scalar decoders' operations
// (exact integer → float conversion, a multiply, then a separate add or subtract), so they are the
// same floats. The product factors each block's scale and offset out of its sum (the integer
// levels times x, then the scale; the offset times the sum of x), as llama.cpp's kernels do, with
// f32 activations throughout.
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/// The f16 at p through F16C (exact, as the portable conversion).
AVX2 static inline float f16c(const uint8_t *p) { return _cvtsh_ss(steertool_load_u16(p)); }

/// Bytes 8k … 8k+7 of v (k < 4) as 8 floats, read signed or unsigned.
AVX2 static inline __m256 s8_to_f32(__m256i v, int k) {
    __m128i h = k < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    if (k & 1) h = _mm_srli_si128(h, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h));
}
AVX2 static inline __m256 u8_to_f32(__m256i v, int k) {
    __m128i h = k < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    if (k & 1) h = _mm_srli_si128(h, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(h));
}

/// The 16 bytes at p as 32 nibbles: low nibbles (elements 0…15), then high nibbles (16…31).
AVX2 static inline __m256i nibbles_32(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/// Bit i of the 32 bits at p as byte i: 0x10 where set, 0 otherwise (Q5's fifth bits).
AVX2 static inline __m256i fifth_bits_32(const uint8_t *p) {
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)load_u32(p)),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                          _mm256_set1_epi64x(-1));
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/// Bytes of v shifted right by `count` bits and masked to `mask` (count < 8).
AVX2 static inline __m256i shifted_bits(__m256i v, int count, int mask) {
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(count)), _mm256_set1_epi8((char)mask));
}

/// The levels of K-quant sub-blocks 2c and 2c+1 (Q4_K, or Q5_K with its fifth bits in `high`, the
/// block's 32 qh bytes): 32 unsigned levels each, for elements 64c … 64c+31 and 64c+32 … 64c+63.
AVX2 static inline void k_levels(const uint8_t *qs, __m256i high, int five, int c, __m256i *lo, __m256i *hi) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    *lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
    *hi = shifted_bits(q, 4, 0x0f);
    if (five) {
        *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(shifted_bits(high, 2 * c, 1), 4));
        *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(shifted_bits(high, 2 * c + 1, 1), 4));
    }
}

/// The signed levels (q − 32) of half h of a Q6_K block at p: q[g] holds elements
/// 128h + 32g … 128h + 32g + 31.
AVX2 static inline void q6_k_levels(const uint8_t *p, int h, __m256i q[4]) {
    const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
    const __m256i a = _mm256_loadu_si256((const __m256i *)ql), b = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)qh), bias = _mm256_set1_epi8(32);
    q[0] = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi8(0x0f)), _mm256_slli_epi16(shifted_bits(hb, 0, 3), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi8(0x0f)), _mm256_slli_epi16(shifted_bits(hb, 2, 3), 4));
    q[2] = _mm256_or_si256(shifted_bits(a, 4, 0x0f), _mm256_slli_epi16(shifted_bits(hb, 4, 3), 4));
    q[3] = _mm256_or_si256(shifted_bits(b, 4, 0x0f), _mm256_slli_epi16(shifted_bits(hb, 6, 3), 4));
    for (int g = 0; g < 4; g++) q[g] = _mm256_sub_epi8(q[g], bias);
}

/// The values v_k = scale·q_k [+ offset] of the 4 chunks of 8 of a 32-value group q at `off`
/// within the block, stored to out + off + 8k. `offset` is added after the product (Q4_1/Q5_1:
/// + m; K-quants: − dmin·m as a negative), as the scalar decoders do; `has_offset` 0 leaves the
/// product alone.
#define GROUP32(CONVERT, q, scale, offset, has_offset, off)                                      \
    for (int k = 0; k < 4; k++) {                                                               \
        __m256 v = _mm256_mul_ps(scale, CONVERT(q, k));                                         \
        if (has_offset) v = _mm256_add_ps(v, offset);                                           \
        _mm256_storeu_ps(out + (off) + 8 * k, v);                                               \
    }

/// One block of `type` at p decoded into `out` (its block-size values), 8 at a time with the
/// portable decoders' operations: the same floats. Called with a constant `type`, so each type
/// compiles to its own straight-line code.
AVX2 static inline __attribute__((always_inline)) void block_avx2(steertool_ggml_type type, const uint8_t *p, float *out) {
    const __m256 none = _mm256_setzero_ps();
    switch (type) {
    case STEERTOOL_GGML_Q4_0: {
        __m256i q = _mm256_sub_epi8(nibbles_32(p + 2), _mm256_set1_epi8(8));
        __m256 d = _mm256_set1_ps(f16c(p));
        GROUP32(s8_to_f32, q, d, none, 0, 0)
        break;
    }
    case STEERTOOL_GGML_Q4_1: {
        __m256i q = nibbles_32(p + 4);
        __m256 d = _mm256_set1_ps(f16c(p)), m = _mm256_set1_ps(f16c(p + 2));
        GROUP32(u8_to_f32, q, d, m, 1, 0)
        break;
    }
    case STEERTOOL_GGML_Q5_0: {
        __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles_32(p + 6), fifth_bits_32(p + 2)), _mm256_set1_epi8(16));
        __m256 d = _mm256_set1_ps(f16c(p));
        GROUP32(s8_to_f32, q, d, none, 0, 0)
        break;
    }
    case STEERTOOL_GGML_Q5_1: {
        __m256i q = _mm256_or_si256(nibbles_32(p + 8), fifth_bits_32(p + 4));
        __m256 d = _mm256_set1_ps(f16c(p)), m = _mm256_set1_ps(f16c(p + 2));
        GROUP32(u8_to_f32, q, d, m, 1, 0)
        break;
    }
    case STEERTOOL_GGML_Q8_0: {
        __m256i q = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256 d = _mm256_set1_ps(f16c(p));
        GROUP32(s8_to_f32, q, d, none, 0, 0)
        break;
    }
    case STEERTOOL_GGML_Q4_K:
    case STEERTOOL_GGML_Q5_K: {
        const int five = type == STEERTOOL_GGML_Q5_K;
        const float d = f16c(p), dmin = f16c(p + 2);
        const uint8_t *s = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
        const __m256i high = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            scale_min(s, 2 * c, &sc0, &m0);
            scale_min(s, 2 * c + 1, &sc1, &m1);
            // x = (d·sc)·q − dmin·m: the subtraction is an add of the negated product (exact).
            const __m256 d0 = _mm256_set1_ps(d * (float)sc0), dm0 = _mm256_set1_ps(-(dmin * (float)m0));
            const __m256 d1 = _mm256_set1_ps(d * (float)sc1), dm1 = _mm256_set1_ps(-(dmin * (float)m1));
            __m256i lo, hi;
            k_levels(qs, high, five, c, &lo, &hi);
            GROUP32(u8_to_f32, lo, d0, dm0, 1, 64 * c)
            GROUP32(u8_to_f32, hi, d1, dm1, 1, 64 * c + 32)
        }
        break;
    }
    case STEERTOOL_GGML_Q6_K: {
        const int8_t *sc = (const int8_t *)(p + 192);
        const float d = f16c(p + 208);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_k_levels(p, h, q);
            for (int g = 0; g < 4; g++) {
                const __m256i v = q[g];
                const int off = 128 * h + 32 * g;
                // Elements 0…15 of the group take scale 8h + 2g, 16…31 scale 8h + 2g + 1.
                const __m256 s0 = _mm256_set1_ps(d * (float)sc[8 * h + 2 * g]);
                const __m256 s1 = _mm256_set1_ps(d * (float)sc[8 * h + 2 * g + 1]);
                for (int k = 0; k < 4; k++) {
                    __m256 w = _mm256_mul_ps(k < 2 ? s0 : s1, s8_to_f32(v, k));
                    _mm256_storeu_ps(out + off + 8 * k, w);
                }
            }
        }
        break;
    }
    }
}

/// t = Σ_k q_k · x[8k …] over the 4 chunks of 8 of a 32-value group q (one 8-lane vector).
#define GROUP_DOT(CONVERT, q, xp)                                                                \
    _mm256_fmadd_ps(CONVERT(q, 3), _mm256_loadu_ps((xp) + 24),                                  \
        _mm256_fmadd_ps(CONVERT(q, 2), _mm256_loadu_ps((xp) + 16),                              \
            _mm256_fmadd_ps(CONVERT(q, 1), _mm256_loadu_ps((xp) + 8),                           \
                _mm256_mul_ps(CONVERT(q, 0), _mm256_loadu_ps(xp)))))

/// One block's share of a row's dot product with the scale and offset factored out of the sum:
/// Σ_j (s·q_j + o)·x_j = s·Σ_j q_j·x_j + o·Σ_j x_j, the integer levels q converted exactly, the
/// block scales s formed as the decoders form them. `xs[g]` holds the 8-lane partial sums of x
/// over 16-value group g (only the offset formats read it). acc gets the scaled sums, accm the
/// offsets' share.
AVX2 static inline __attribute__((always_inline)) void dot_block_factored(
    steertool_ggml_type type, const uint8_t *p, const float *x, const __m256 *xs, __m256 *acc, __m256 *accm) {
#define XSUM32(g16) _mm256_add_ps(xs[(g16)], xs[(g16) + 1])
    switch (type) {
    case STEERTOOL_GGML_Q4_0: {
        __m256i q = _mm256_sub_epi8(nibbles_32(p + 2), _mm256_set1_epi8(8));
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p)), GROUP_DOT(s8_to_f32, q, x), *acc);
        break;
    }
    case STEERTOOL_GGML_Q4_1: {
        __m256i q = nibbles_32(p + 4);
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p)), GROUP_DOT(u8_to_f32, q, x), *acc);
        *accm = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p + 2)), XSUM32(0), *accm);
        break;
    }
    case STEERTOOL_GGML_Q5_0: {
        __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles_32(p + 6), fifth_bits_32(p + 2)), _mm256_set1_epi8(16));
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p)), GROUP_DOT(s8_to_f32, q, x), *acc);
        break;
    }
    case STEERTOOL_GGML_Q5_1: {
        __m256i q = _mm256_or_si256(nibbles_32(p + 8), fifth_bits_32(p + 4));
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p)), GROUP_DOT(u8_to_f32, q, x), *acc);
        *accm = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p + 2)), XSUM32(0), *accm);
        break;
    }
    case STEERTOOL_GGML_Q8_0: {
        __m256i q = _mm256_loadu_si256((const __m256i *)(p + 2));
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16c(p)), GROUP_DOT(s8_to_f32, q, x), *acc);
        break;
    }
    case STEERTOOL_GGML_Q4_K:
    case STEERTOOL_GGML_Q5_K: {
        const int five = type == STEERTOOL_GGML_Q5_K;
        const float d = f16c(p), dmin = f16c(p + 2);
        const uint8_t *sc = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
        const __m256i high = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            scale_min(sc, 2 * c, &sc0, &m0);
            scale_min(sc, 2 * c + 1, &sc1, &m1);
            __m256i lo, hi;
            k_levels(qs, high, five, c, &lo, &hi);
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc0), GROUP_DOT(u8_to_f32, lo, x + 64 * c), *acc);
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc1), GROUP_DOT(u8_to_f32, hi, x + 64 * c + 32), *acc);
            *accm = _mm256_fmadd_ps(_mm256_set1_ps(-(dmin * (float)m0)), XSUM32(4 * c), *accm);
            *accm = _mm256_fmadd_ps(_mm256_set1_ps(-(dmin * (float)m1)), XSUM32(4 * c + 2), *accm);
        }
        break;
    }
    case STEERTOOL_GGML_Q6_K: {
        const int8_t *sc = (const int8_t *)(p + 192);
        const float d = f16c(p + 208);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_k_levels(p, h, q);
            for (int g = 0; g < 4; g++) {
                const __m256i v = q[g];
                const float *xg = x + 128 * h + 32 * g;
                // Elements 0…15 of the group take scale 8h + 2g, 16…31 scale 8h + 2g + 1.
                __m256 t0 = _mm256_fmadd_ps(s8_to_f32(v, 1), _mm256_loadu_ps(xg + 8), _mm256_mul_ps(s8_to_f32(v, 0), _mm256_loadu_ps(xg)));
                __m256 t1 = _mm256_fmadd_ps(s8_to_f32(v, 3), _mm256_loadu_ps(xg + 24), _mm256_mul_ps(s8_to_f32(v, 2), _mm256_loadu_ps(xg + 16)));
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[8 * h + 2 * g]), t0, *acc);
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[8 * h + 2 * g + 1]), t1, *acc);
            }
        }
        break;
    }
    }
#undef XSUM32
}

/// The rows' sums for one block type, `type` a constant where it is called so that each type's
/// loop is compiled on its own (no dispatch per block). `xs` as for `dot_block_factored`.
AVX2 static inline __attribute__((always_inline)) void matvec_avx2_rows(
    const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end, const float *x, float *y,
    const __m256 *xs, steertool_ggml_type type) {
    const size_t values = block_values(type), bytes = block_bytes(type);
    const size_t blocks = k / values, row_bytes = blocks * bytes;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, accm = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            dot_block_factored(type, row + b * bytes, x + b * values, xs + b * (values / 16), &acc[b & 1], &accm);
        }
        y[r - row_begin] = hsum_avx2(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), accm));
    }
}

/// Rows widened to f32 for one block type (`type` constant where called).
AVX2 static inline __attribute__((always_inline)) void widen_avx2_rows(
    const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end, float *out, size_t ldo,
    steertool_ggml_type type) {
    const size_t values = block_values(type), bytes = block_bytes(type);
    const size_t blocks = k / values, row_bytes = blocks * bytes;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        float *o = out + (r - row_begin) * ldo;
        for (size_t b = 0; b < blocks; b++) block_avx2(type, row + b * bytes, o + b * values);
    }
}

AVX2 static void widen_avx2(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                            float *out, size_t ldo, steertool_ggml_type type) {
    switch (type) {
#define CASE(T) case T: widen_avx2_rows(w, k, row_index, row_begin, row_end, out, ldo, T); break;
    CASE(STEERTOOL_GGML_Q4_0) CASE(STEERTOOL_GGML_Q4_1) CASE(STEERTOOL_GGML_Q5_0) CASE(STEERTOOL_GGML_Q5_1) CASE(STEERTOOL_GGML_Q8_0)
    CASE(STEERTOOL_GGML_Q4_K) CASE(STEERTOOL_GGML_Q5_K) CASE(STEERTOOL_GGML_Q6_K)
#undef CASE
    }
}

AVX2 static void matvec_avx2(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                             const float *x, float *y, steertool_ggml_type type) {
    // 8-lane partial sums of x over each 16-value group (the offsets' share of every row), for
    // the formats with an offset only.
    enum { STACK_GROUPS = 1024 };
    __m256 stack[STACK_GROUPS];
    const int offsets = type == STEERTOOL_GGML_Q4_1 || type == STEERTOOL_GGML_Q5_1 || type == STEERTOOL_GGML_Q4_K ||
                        type == STEERTOOL_GGML_Q5_K;
    const size_t groups = offsets ? k / 16 : 0;
    __m256 *xs = groups <= STACK_GROUPS ? stack : (__m256 *)_mm_malloc(groups * sizeof(__m256), 32);
    if (!xs) {  // no memory for the sums: the portable path needs none
        matvec_generic(w, k, row_index, row_begin, row_end, x, y, type);
        return;
    }
    for (size_t g = 0; g < groups; g++) xs[g] = _mm256_add_ps(_mm256_loadu_ps(x + 16 * g), _mm256_loadu_ps(x + 16 * g + 8));
    switch (type) {
#define CASE(T) case T: matvec_avx2_rows(w, k, row_index, row_begin, row_end, x, y, xs, T); break;
    CASE(STEERTOOL_GGML_Q4_0) CASE(STEERTOOL_GGML_Q4_1) CASE(STEERTOOL_GGML_Q5_0) CASE(STEERTOOL_GGML_Q5_1) CASE(STEERTOOL_GGML_Q8_0)
    CASE(STEERTOOL_GGML_Q4_K) CASE(STEERTOOL_GGML_Q5_K) CASE(STEERTOOL_GGML_Q6_K)
#undef CASE
    }
    if (xs != stack) _mm_free(xs);
}

/// 16 signed bytes at p as 16 floats.
__attribute__((target("avx512f,f16c"))) static inline __m512 s8x16_to_f32(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/// acc + d·Σ q·x over one Q8_0 block at p (x its 32 activations), 16 lanes.
__attribute__((target("avx512f,f16c"))) static inline __m512 q8_0_block_avx512(const uint8_t *p, const float *x, __m512 acc) {
    __m512 s = _mm512_mul_ps(s8x16_to_f32(p + 2), _mm512_loadu_ps(x));
    s = _mm512_fmadd_ps(s8x16_to_f32(p + 18), _mm512_loadu_ps(x + 16), s);
    return _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(steertool_load_u16(p))), s, acc);
}

/// Q8_0 rows on AVX-512: each block's Σ q·x in 16 lanes (two halves), scaled by d, blocks
/// alternating between two accumulators; the one format whose decode is a plain conversion, so
/// the wider registers pay.
__attribute__((target("avx512f,f16c"))) static void matvec_q8_0_avx512(
    const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end, const float *x, float *y) {
    const size_t blocks = k / 32, row_bytes = blocks * 34;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        size_t b = 0;
        for (; b + 1 < blocks; b += 2) {   // even blocks into acc0, odd into acc1, in registers
            acc0 = q8_0_block_avx512(row + b * 34, x + 32 * b, acc0);
            acc1 = q8_0_block_avx512(row + (b + 1) * 34, x + 32 * (b + 1), acc1);
        }
        if (b < blocks) acc0 = q8_0_block_avx512(row + b * 34, x + 32 * b, acc0);
        y[r - row_begin] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}
#endif

void steertool_ggml_widen_rows(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                               float *out, size_t ldo, steertool_ggml_type type, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#if defined(__x86_64__) || defined(__i386__)
    if (level >= STEERTOOL_KERNEL_AVX2) {
        widen_avx2(w, k, row_index, row_begin, row_end, out, ldo, type);
        return;
    }
#endif
    widen_generic(w, k, row_index, row_begin, row_end, out, ldo, type);
}

void steertool_ggml_matvec(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                           const float *x, float *y, steertool_ggml_type type, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#if defined(__x86_64__) || defined(__i386__)
    if (level >= STEERTOOL_KERNEL_AVX512 && type == STEERTOOL_GGML_Q8_0) {
        matvec_q8_0_avx512(w, k, row_index, row_begin, row_end, x, y);
        return;
    }
    if (level >= STEERTOOL_KERNEL_AVX2) {
        matvec_avx2(w, k, row_index, row_begin, row_end, x, y, type);
        return;
    }
#endif
    matvec_generic(w, k, row_index, row_begin, row_end, x, y, type);
}
