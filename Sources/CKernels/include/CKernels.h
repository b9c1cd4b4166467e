// Hand-vectorised CPU kernels the runtime calls where BLAS has no routine or its call overhead
// dominates: matrix-vector products on GGML quantized blocks and on bf16/f16 matrices read in
// place (with their widening to f32), the LoRA merge,
// e^x, SwiGLU, per-head causal attention, and on AVX2 CPUs the forward pass's f32 projections
// (a token-panel gemm and a matrix-vector product over weights read in place) with the worker
// pool they run on. Plain C with runtime CPU dispatch: an AVX-512 or AVX2+FMA+F16C path where
// the CPU has it, a portable scalar path otherwise.
#ifndef STEERTOOL_CKERNELS_H
#define STEERTOOL_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which code path a kernel takes: the best this CPU has (`steertool_kernel_best_level`) or a
/// lower one a caller forces (tests).
typedef enum {
    STEERTOOL_KERNEL_SCALAR = 0,
    STEERTOOL_KERNEL_AVX2 = 1,
    STEERTOOL_KERNEL_AVX512 = 2,
} steertool_kernel_level;

/// The best path this CPU supports (checked once with cpuid).
steertool_kernel_level steertool_kernel_best_level(void);

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

/// out[i] = gate[i] / (1 + e^{-gate[i]}) · up[i] for n floats (SwiGLU: SiLU(gate) · up), e^x
/// exactly as `steertool_exp` at the same level. `out` may be `gate` itself (no other overlap).
void steertool_swiglu(const float *gate, const float *up, float *out, size_t n, steertool_kernel_level level);

/// Causal attention of one head for `rows` queries at absolute positions start..start+rows-1
/// over keys/values at positions 0..start+rows-1: query i (0-based in this call) sees keys
/// 0...start+i, or with a sliding `window` > 0 only the last `window` of them,
/// max(0, start+i+1−window)...start+i (transformers' sliding-window mask; 0: no window). Row-major with strides in floats: query i at q + i·q_stride, key and value j at
/// k + j·kv_stride and v + j·kv_stride, output i at out + i·out_stride, each `head_dim` floats.
/// Per query: s_j = scale·(q·k_j) for the visible j, p = softmax(s) (maximum subtracted, e^x as
/// `steertool_exp`), out = Σ_j p_j·v_j. `scores` is scratch of ≥ 2·(start+rows) floats.
/// The portable path sums e^x sequentially and normalises p before the weighted sum; the AVX2 path
/// (also taken at level AVX-512; head_dim % 8 == 0, else the portable loops) takes query rows in
/// pairs that share each key and value load, sums e^x in eight lanes and scales the weighted sum
/// by 1/Σ once: the paths agree up to f32 rounding, not bit for bit.
void steertool_causal_attention_head(const float *q, size_t q_stride, const float *k, const float *v,
                                     size_t kv_stride, size_t head_dim, size_t rows, size_t start, size_t window,
                                     float scale, float *scores, float *out, size_t out_stride,
                                     steertool_kernel_level level);

/// y[r - row_begin] = Σ_j w[r·ldw + j]·x[j] for rows r in [row_begin, row_end) of a row-major f32
/// matrix with k columns. Each output is one f32 sum: on the AVX2 path (also taken at level
/// AVX-512) in 8 lanes over the first k − k % 8 columns, the lanes added pairwise, then the rest
/// in order; the portable path sums in order. A result does not depend on the row range.
void steertool_f32_matvec(const float *w, size_t ldw, size_t k, size_t row_begin, size_t row_end, const float *x,
                          float *y, steertool_kernel_level level);

/// Element type of a matrix read by `steertool_half_matvec` / `steertool_half_widen_rows`:
/// bfloat16 (the high 16 bits of an f32) or IEEE binary16, little-endian, any alignment.
typedef enum {
    STEERTOOL_HALF_BF16 = 0,
    STEERTOOL_HALF_F16 = 1,
} steertool_half_format;

/// y[r - row_begin] = Σ_j W[r, j]·x[j] for rows r in [row_begin, row_end) of a row-major matrix of
/// 16-bit values (`format`) with k columns, rows ldw elements apart, read in place: row r is
/// stored row `row_index[r]` when `row_index` is non-null (a row permutation without a copy),
/// else row r. Each W value is widened to f32 exactly and the sum is the one
/// `steertool_f32_matvec` forms on the widened matrix (same order on the same path), so the
/// result equals that kernel's on a dequantized copy. `level` as for the other kernels (AVX2
/// widens f16 with F16C; AVX-512 takes the AVX2 path).
void steertool_half_matvec(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t row_begin,
                           size_t row_end, const float *x, float *y, steertool_half_format format,
                           steertool_kernel_level level);

/// Widens rows [row_begin, row_end) of the same kind of matrix to f32: row r into
/// out + (r - row_begin)·ldo, k floats, exactly (every path gives the same bits).
void steertool_half_widen_rows(const void *w, size_t ldw, size_t k, const uint32_t *row_index, size_t row_begin,
                               size_t row_end, float *out, size_t ldo, steertool_half_format format,
                               steertool_kernel_level level);

/// GGML block-quantized types a matrix can be read in place as (values are GGML's type ids).
typedef enum {
    STEERTOOL_GGML_Q4_0 = 2,
    STEERTOOL_GGML_Q4_1 = 3,
    STEERTOOL_GGML_Q5_0 = 6,
    STEERTOOL_GGML_Q5_1 = 7,
    STEERTOOL_GGML_Q8_0 = 8,
    STEERTOOL_GGML_Q4_K = 12,
    STEERTOOL_GGML_Q5_K = 13,
    STEERTOOL_GGML_Q6_K = 14,
} steertool_ggml_type;

/// Values per block of `type` (32, or 256 for the K-quants).
size_t steertool_ggml_block_values(steertool_ggml_type type);
/// Bytes per block of `type`.
size_t steertool_ggml_block_bytes(steertool_ggml_type type);

/// Widens rows [row_begin, row_end) of a row-major matrix of `type` blocks with k columns (a
/// multiple of the block size; a row is k / block values blocks, rows stored back to back) to
/// f32: row r into out + (r - row_begin)·ldo. Row r is stored row `row_index[r]` when
/// `row_index` is non-null. Each block is decoded with gguf-py's float operations in its order, so
/// the values equal gguf-py's dequantization bit for bit on every path (`level` as for the other
/// kernels; AVX2 forms 8 values at a time with the same operations).
void steertool_ggml_widen_rows(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                               float *out, size_t ldo, steertool_ggml_type type, steertool_kernel_level level);

/// y[r - row_begin] = Σ_j W[r, j]·x[j] for rows [row_begin, row_end) of the same kind of matrix,
/// read in place, each block once. The portable path forms the block's values as
/// `steertool_ggml_widen_rows` does and multiplies them with x in 8 lanes; the AVX2 path factors
/// each block's scale and offset out of its sum (s·Σ q_j·x_j + o·Σ x_j, f32 throughout, fused
/// multiply-adds; Q8_0 on AVX-512 sums 16 lanes at a time). Each row's sum runs in a fixed order
/// per path, so any split of the rows gives the same bits on a path; paths agree to rounding. `level` as for the other kernels.
void steertool_ggml_matvec(const void *w, size_t k, const uint32_t *row_index, size_t row_begin, size_t row_end,
                           const float *x, float *y, steertool_ggml_type type, steertool_kernel_level level);

/// A task of `steertool_parallel_for`: runs task `index` of the job with its `context`.
typedef void (*steertool_task_fn)(void *context, size_t index);

/// Runs fn(context, i) for every i in [0, count), each exactly once, on up to `threads` threads:
/// the caller and persistent workers (started on first use, at most 63), which spin for about a
/// millisecond after a job (yielding the CPU every 64 pauses) before they sleep, so the kernels of
/// one forward pass find them awake. Returns when every task has finished (their writes are
/// visible to the caller); it never waits for a worker that has not joined the job, so on a busy
/// machine the caller runs the tasks itself. Tasks are taken in index order but may run
/// concurrently in any interleaving. One job runs at a time: a call made while another is running
/// (from another thread, or from inside a task) runs its tasks inline.
void steertool_parallel_for(size_t count, size_t threads, steertool_task_fn fn, void *context);

/// Tokens per panel of `steertool_pack_token_panels`.
#define STEERTOOL_TOKEN_PANEL_WIDTH 16

/// Floats that `steertool_pack_token_panels` writes for `rows` rows of `k` features:
/// ⌈rows/16⌉·16·k.
size_t steertool_token_panels_floats(size_t rows, size_t k);

/// Packs activations x `[rows, k]` (row i at x + i·ldx) into token panels for
/// `steertool_token_panel_gemm`: panel p (16 tokens, rows 16p..16p+15) at panels + 16p·k holds
/// feature j of its token i at [16j + i], rows past the end zero. The same values on every path.
void steertool_pack_token_panels(const float *x, size_t rows, size_t k, size_t ldx, float *panels,
                                 steertool_kernel_level level);

/// out[m·ldo + n] = alpha·Σ_j x[m, j]·w[n·ldw + j] (x · Wᵀ), plus the old out[m·ldo + n] when
/// `accumulate` is nonzero, for tokens m < rows and output features n in [n_begin, n_end), with x
/// given as token panels (`steertool_pack_token_panels`) and the weight W `[out, k]` read in place,
/// row-major (PyTorch's orientation). The sum is one f32 accumulation over j ascending (fused
/// multiply-adds on the AVX2 path, which level AVX-512 also takes), so a result does not depend
/// on how the n range is split over calls.
void steertool_token_panel_gemm(const float *panels, size_t rows, size_t k, const float *w, size_t ldw,
                                size_t n_begin, size_t n_end, float *out, size_t ldo, float alpha, int accumulate,
                                steertool_kernel_level level);

#ifdef __cplusplus
}
#endif

#endif
