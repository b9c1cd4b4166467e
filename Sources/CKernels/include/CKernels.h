// Hand-vectorised CPU kernels the runtime calls where BLAS has no routine: matrix-vector
// products on GGML Q8_0 blocks (weights kept quantized). Plain C with runtime CPU dispatch:
// an AVX-512 or AVX2+FMA+F16C path where the CPU has it, a portable scalar path otherwise.
#ifndef STEERTOOL_CKERNELS_H
#define STEERTOOL_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Bytes of one Q8_0 block: an IEEE half scale d followed by 32 signed 8-bit quants q;
/// the block's values are d·q[i] (GGML's block_q8_0).
#define STEERTOOL_Q8_0_BLOCK_BYTES 34
/// Values per Q8_0 block.
#define STEERTOOL_Q8_0_BLOCK_VALUES 32

/// Which code path `steertool_q8_0_matvec` takes on this CPU.
typedef enum {
    STEERTOOL_KERNEL_SCALAR = 0,
    STEERTOOL_KERNEL_AVX2 = 1,
    STEERTOOL_KERNEL_AVX512 = 2,
} steertool_kernel_level;

/// The best path this CPU supports (checked once with cpuid).
steertool_kernel_level steertool_kernel_best_level(void);

/// y[r - row_begin] = Σ_b d[r,b] · Σ_i q[r,b,i] · x[32·b + i] for rows r in [row_begin, row_end)
/// of a row-major Q8_0 matrix whose rows each hold `blocks_per_row` consecutive blocks
/// (`blocks` points at row 0). x holds 32·blocks_per_row floats. Accumulates in f32.
/// `level` picks the path; a level above `steertool_kernel_best_level()` is lowered to it.
void steertool_q8_0_matvec(const uint8_t *blocks, size_t blocks_per_row, size_t row_begin, size_t row_end,
                           const float *x, float *y, steertool_kernel_level level);

/// Dequantizes rows [row_begin, row_end) of the same matrix into `out` (row-major,
/// 32·blocks_per_row floats per row, row r at out + (r - row_begin)·32·blocks_per_row).
void steertool_q8_0_dequantize_rows(const uint8_t *blocks, size_t blocks_per_row, size_t row_begin,
                                    size_t row_end, float *out);

/// LoRA merge of rows [row_begin, row_end) of a row-major weight W `[out, in]` (row o at
/// w + o·in): W[o,i] ← W[o,i] + s·Σ_k B[o,k]·A[k,i], with B `[out, r]` and A `[r, in]` row-major.
/// Bit-reproducible on every CPU and code path: each product and sum is rounded in f32 in a fixed
/// order (k ascending, multiply then add, never fused), then scaled by s and added to W.
/// `level` picks the path (lowered to what the CPU has); every path gives the same bits.
void steertool_lora_merge_rows(float *w, size_t in, const float *b, const float *a, size_t r, float s,
                               size_t row_begin, size_t row_end, steertool_kernel_level level);

/// y[i] = e^{x[i]} for n floats (x and y may be the same array), x clamped to [-87.3, 88]
/// (e^-87.3 ≈ 1.2e-38 below, e^88 above). Vector paths: Cephes' expf polynomial, within 2 ulp
/// of libm's expf; the scalar path is libm's expf.
void steertool_exp(const float *x, float *y, size_t n, steertool_kernel_level level);

#ifdef __cplusplus
}
#endif

#endif
