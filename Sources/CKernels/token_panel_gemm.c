// x · Wᵀ over token panels, with W read in place; see include/CKernels.h.
#include "CKernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STEERTOOL_X86 1
#endif

#define PANEL STEERTOOL_TOKEN_PANEL_WIDTH

size_t steertool_token_panels_floats(size_t rows, size_t k) {
    return (rows + PANEL - 1) / PANEL * PANEL * k;
}

/// Panel p, columns [k0, k1) of it, from `count` ≤ PANEL rows of x (the rest zero).
static void pack_panel_scalar(const float *x, size_t ldx, size_t count, size_t k0, size_t k1, float *panel) {
    for (size_t kk = k0; kk < k1; kk++) {
        float *dst = panel + kk * PANEL;
        for (size_t j = 0; j < count; j++) dst[j] = x[j * ldx + kk];
        for (size_t j = count; j < PANEL; j++) dst[j] = 0;
    }
}

#ifdef STEERTOOL_X86
/// A full panel (PANEL rows of x) in 8×8 blocks transposed in registers; columns past the last
/// multiple of 8 by the scalar loop.
__attribute__((target("avx2,fma")))
static void pack_panel_avx2(const float *x, size_t ldx, size_t k, float *panel) {
    size_t k8 = k / 8 * 8;
    for (size_t half = 0; half < PANEL; half += 8) {
        const float *src = x + half * ldx;
        for (size_t kk = 0; kk < k8; kk += 8) {
            __m256 r0 = _mm256_loadu_ps(src + 0 * ldx + kk), r1 = _mm256_loadu_ps(src + 1 * ldx + kk);
            __m256 r2 = _mm256_loadu_ps(src + 2 * ldx + kk), r3 = _mm256_loadu_ps(src + 3 * ldx + kk);
            __m256 r4 = _mm256_loadu_ps(src + 4 * ldx + kk), r5 = _mm256_loadu_ps(src + 5 * ldx + kk);
            __m256 r6 = _mm256_loadu_ps(src + 6 * ldx + kk), r7 = _mm256_loadu_ps(src + 7 * ldx + kk);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *dst = panel + kk * PANEL + half;
            _mm256_storeu_ps(dst + 0 * PANEL, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(dst + 1 * PANEL, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(dst + 2 * PANEL, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(dst + 3 * PANEL, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(dst + 4 * PANEL, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(dst + 5 * PANEL, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(dst + 6 * PANEL, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(dst + 7 * PANEL, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
    }
    pack_panel_scalar(x, ldx, PANEL, k8, k, panel);
}
#endif

void steertool_pack_token_panels(const float *x, size_t rows, size_t k, size_t ldx, float *panels,
                                 steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
    for (size_t p = 0; p * PANEL < rows; p++) {
        size_t count = rows - p * PANEL < PANEL ? rows - p * PANEL : PANEL;
        float *panel = panels + p * PANEL * k;
        const float *src = x + p * PANEL * ldx;
#ifdef STEERTOOL_X86
        if (level >= STEERTOOL_KERNEL_AVX2 && count == PANEL) { pack_panel_avx2(src, ldx, k, panel); continue; }
#endif
        pack_panel_scalar(src, ldx, count, 0, k, panel);
    }
}

/// out[m·ldo + n] for m < tokens, n < wrows of one tile: the PANEL × 6 block `acc` (acc[n][m]),
/// transposed into the row-major output, times alpha, plus the old value when accumulating.
static inline void store_tile(const float acc[6][PANEL], size_t wrows, size_t tokens, float *out, size_t ldo,
                              float alpha, int accumulate) {
    if (!accumulate && alpha == 1.0f) {
        for (size_t m = 0; m < tokens; m++)
            for (size_t n = 0; n < wrows; n++) out[m * ldo + n] = acc[n][m];
        return;
    }
    for (size_t m = 0; m < tokens; m++)
        for (size_t n = 0; n < wrows; n++) {
            float v = alpha * acc[n][m];
            out[m * ldo + n] = accumulate ? out[m * ldo + n] + v : v;
        }
}

static void gemm_scalar(const float *panels, size_t rows, size_t k, const float *w, size_t ldw,
                        size_t n_begin, size_t n_end, float *out, size_t ldo, float alpha, int accumulate) {
    for (size_t n0 = n_begin; n0 < n_end; n0 += 6) {
        size_t wrows = n_end - n0 < 6 ? n_end - n0 : 6;
        for (size_t p = 0; p * PANEL < rows; p++) {
            size_t tokens = rows - p * PANEL < PANEL ? rows - p * PANEL : PANEL;
            const float *panel = panels + p * PANEL * k;
            float acc[6][PANEL] = {{0}};
            for (size_t n = 0; n < wrows; n++) {
                const float *wr = w + (n0 + n) * ldw;
                for (size_t kk = 0; kk < k; kk++)
                    for (size_t m = 0; m < PANEL; m++) acc[n][m] += wr[kk] * panel[kk * PANEL + m];
            }
            store_tile((const float (*)[PANEL])acc, wrows, tokens, out + p * PANEL * ldo + n0, ldo, alpha, accumulate);
        }
    }
}

#ifdef STEERTOOL_X86
/// One tile: 6 weight rows (fewer at the end: the missing rows repeat row 0 and are not stored)
/// against one panel of 16 tokens, 12 accumulators; each step broadcasts one weight per row and
/// loads the panel's 16 activations of that input feature.
__attribute__((target("avx2,fma")))
static void gemm_avx2(const float *panels, size_t rows, size_t k, const float *w, size_t ldw,
                      size_t n_begin, size_t n_end, float *out, size_t ldo, float alpha, int accumulate) {
    for (size_t n0 = n_begin; n0 < n_end; n0 += 6) {
        size_t wrows = n_end - n0 < 6 ? n_end - n0 : 6;
        const float *w0 = w + n0 * ldw;
        const float *w1 = w0 + (wrows > 1 ? ldw : 0), *w2 = w0 + (wrows > 2 ? 2 * ldw : 0);
        const float *w3 = w0 + (wrows > 3 ? 3 * ldw : 0), *w4 = w0 + (wrows > 4 ? 4 * ldw : 0);
        const float *w5 = w0 + (wrows > 5 ? 5 * ldw : 0);
        for (size_t p = 0; p * PANEL < rows; p++) {
            size_t tokens = rows - p * PANEL < PANEL ? rows - p * PANEL : PANEL;
            const float *xp = panels + p * PANEL * k;
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
            __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
            __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
            __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
            __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
            for (size_t kk = 0; kk < k; kk++, xp += PANEL) {
                __m256 b0 = _mm256_loadu_ps(xp), b1 = _mm256_loadu_ps(xp + 8), s;
                s = _mm256_broadcast_ss(w0 + kk); c00 = _mm256_fmadd_ps(s, b0, c00); c01 = _mm256_fmadd_ps(s, b1, c01);
                s = _mm256_broadcast_ss(w1 + kk); c10 = _mm256_fmadd_ps(s, b0, c10); c11 = _mm256_fmadd_ps(s, b1, c11);
                s = _mm256_broadcast_ss(w2 + kk); c20 = _mm256_fmadd_ps(s, b0, c20); c21 = _mm256_fmadd_ps(s, b1, c21);
                s = _mm256_broadcast_ss(w3 + kk); c30 = _mm256_fmadd_ps(s, b0, c30); c31 = _mm256_fmadd_ps(s, b1, c31);
                s = _mm256_broadcast_ss(w4 + kk); c40 = _mm256_fmadd_ps(s, b0, c40); c41 = _mm256_fmadd_ps(s, b1, c41);
                s = _mm256_broadcast_ss(w5 + kk); c50 = _mm256_fmadd_ps(s, b0, c50); c51 = _mm256_fmadd_ps(s, b1, c51);
            }
            float acc[6][PANEL];
            _mm256_storeu_ps(acc[0], c00); _mm256_storeu_ps(acc[0] + 8, c01);
            _mm256_storeu_ps(acc[1], c10); _mm256_storeu_ps(acc[1] + 8, c11);
            _mm256_storeu_ps(acc[2], c20); _mm256_storeu_ps(acc[2] + 8, c21);
            _mm256_storeu_ps(acc[3], c30); _mm256_storeu_ps(acc[3] + 8, c31);
            _mm256_storeu_ps(acc[4], c40); _mm256_storeu_ps(acc[4] + 8, c41);
            _mm256_storeu_ps(acc[5], c50); _mm256_storeu_ps(acc[5] + 8, c51);
            store_tile((const float (*)[PANEL])acc, wrows, tokens, out + p * PANEL * ldo + n0, ldo, alpha, accumulate);
        }
    }
}
#endif

void steertool_token_panel_gemm(const float *panels, size_t rows, size_t k, const float *w, size_t ldw,
                                size_t n_begin, size_t n_end, float *out, size_t ldo, float alpha, int accumulate,
                                steertool_kernel_level level) {
    steertool_kernel_level best = steertool_kernel_best_level();
    if (level > best) level = best;
#ifdef STEERTOOL_X86
    if (level >= STEERTOOL_KERNEL_AVX2) { gemm_avx2(panels, rows, k, w, ldw, n_begin, n_end, out, ldo, alpha, accumulate); return; }
#endif
    gemm_scalar(panels, rows, k, w, ldw, n_begin, n_end, out, ldo, alpha, accumulate);
}
