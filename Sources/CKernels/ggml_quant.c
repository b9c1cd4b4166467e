// GGML block-quantized matrices read in place: row widening and the matrix-vector product for
// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K; see include/CKernels.h.
//
// Every block is decoded with gguf-py's float operations in its order (f32 products, a separate
// add, never a fused multiply-add: FP_CONTRACT is off), so a widened row equals gguf-py's
// dequantization bit for bit. The product decodes a block into a small buffer and multiplies it
// with x there: the weights are read once, never widened to memory.
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
    case STEERTOOL_GGML_Q4_K: block_q4_K(p, y); break;
    case STEERTOOL_GGML_Q5_K: block_q5_K(p, y); break;
    case STEERTOOL_GGML_Q6_K: block_q6_K(p, y); break;
    }
}

size_t steertool_ggml_block_values(steertool_ggml_type type) {
    switch (type) {
    case STEERTOOL_GGML_Q4_0: case STEERTOOL_GGML_Q4_1: case STEERTOOL_GGML_Q5_0: case STEERTOOL_GGML_Q5_1: return 32;
    case STEERTOOL_GGML_Q4_K: case STEERTOOL_GGML_Q5_K: case STEERTOOL_GGML_Q6_K: return 256;
    }
    return 0;
}

size_t steertool_ggml_block_bytes(steertool_ggml_type type) {
    switch (type) {
    case STEERTOOL_GGML_Q4_0: return 18;
    case STEERTOOL_GGML_Q4_1: return 20;
    case STEERTOOL_GGML_Q5_0: return 22;
    case STEERTOOL_GGML_Q5_1: return 24;
    case STEERTOOL_GGML_Q4_K: return 144;
    case STEERTOOL_GGML_Q5_K: return 176;
    case STEERTOOL_GGML_Q6_K: return 210;
    }
    return 0;
}

static inline const uint8_t *row_at(const void *w, size_t row_bytes, const uint32_t *row_index, size_t r) {
    return (const uint8_t *)w + (row_index ? (size_t)row_index[r] : r) * row_bytes;
}

void steertool_ggml_widen_rows(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                               float *out, size_t ldo, steertool_ggml_type type) {
    const size_t values = steertool_ggml_block_values(type), bytes = steertool_ggml_block_bytes(type);
    const size_t blocks = k / values, row_bytes = blocks * bytes;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = row_at(w, row_bytes, row_index, r);
        float *o = out + (r - row_begin) * ldo;
        for (size_t b = 0; b < blocks; b++) decode_block(type, row + b * bytes, o + b * values);
    }
}

/// Σ_j y[j]·x[j] over one decoded block of n (32 or 256) values, in 8 running lanes summed
/// pairwise at the end: the same order on every path, so paths agree bit for bit.
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
    const size_t values = steertool_ggml_block_values(type), bytes = steertool_ggml_block_bytes(type);
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
// The same code compiled for AVX2: the decoders and the lane sums vectorise (no FMA: contraction is off).
__attribute__((target("avx2,f16c")))
static void matvec_avx2(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                        const float *x, float *y, steertool_ggml_type type) {
    matvec_rows(w, k, row_index, row_begin, row_end, x, y, type);
}
#endif

void steertool_ggml_matvec(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                           const float *x, float *y, steertool_ggml_type type, steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#if defined(__x86_64__) || defined(__i386__)
    if (level >= STEERTOOL_KERNEL_AVX2) {
        matvec_avx2(w, k, row_index, row_begin, row_end, x, y, type);
        return;
    }
#endif
    matvec_generic(w, k, row_index, row_begin, row_end, x, y, type);
}
