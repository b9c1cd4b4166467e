import CKernels

/// Activations `[rows, columns]` packed into token panels (`TokenPanelGemm.pack`), so that
/// several projections of the same input (q, k and v; gate and up) share one packing.
public struct PackedTokens {
    /// `TokenPanelGemm.panelFloats(rows:columns:)` floats, owned by the caller.
    public let panels: UnsafePointer<Float>
    /// Tokens.
    public let rows: Int
    /// Features per token.
    public let columns: Int
}

/// `x · Wᵀ` for several tokens at once with the weight read in place (PyTorch orientation
/// `[out, in]`, row-major, never copied or repacked): the activations are packed into panels of
/// 16 tokens, feature-major, and the C kernel (`steertool_token_panel_gemm`) multiplies tiles of
/// 6 weight rows by one panel with 12 AVX2 accumulators. Output features are split over threads
/// in whole tiles.
///
/// On the forward pass's shapes (measured: 128 tokens, d 576 and 768) this beats OpenBLAS 0.3.21's
/// sgemm on AVX2 CPUs, which packs both operands on every call: a C harness over SmolLM2's seven
/// projection shapes read 85–88 against 70–81 GFLOP/s on one AMD Zen 3 core (see the README's
/// speed notes for whole forward passes). An AVX-512 CPU keeps OpenBLAS, whose kernels there use
/// the wider registers.
public enum TokenPanelGemm {
    /// Whether the forward pass multiplies multi-token activations with this kernel on this CPU:
    /// true on AVX2 CPUs without AVX-512.
    public static let preferred = CPUKernelLevel.best == .avx2

    /// Floats of the panels for `rows` tokens of `columns` features: ⌈rows/16⌉·16·columns.
    public static func panelFloats(rows: Int, columns: Int) -> Int {
        steertool_token_panels_floats(rows, columns)
    }

    /// Packs `x` `[rows, columns]` (rows `ldx` floats apart) into `panels`
    /// (`panelFloats(rows:columns:)` floats).
    public static func pack(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ldx: Int,
                            into panels: UnsafeMutablePointer<Float>, level: CPUKernelLevel = .best) -> PackedTokens {
        steertool_pack_token_panels(x, rows, columns, ldx, panels, level.cValue)
        return PackedTokens(panels: panels, rows: rows, columns: columns)
    }

    /// out[m, n] = alpha·Σ_j x[m, j]·W[n, j] (+ out[m, n] when `accumulate`) for the packed
    /// tokens m and the `outFeatures` rows n of W `[outFeatures, x.columns]` (row-major); out rows
    /// `ldo` floats apart.
    /// `threads`: output features are split into that many ranges of whole 6-row tiles (small
    /// products stay on the calling thread); every output is the same sum on any split.
    /// `level` forces a kernel path (tests).
    public static func multiply(_ x: PackedTokens, weight: UnsafePointer<Float>, outFeatures: Int,
                                out: UnsafeMutablePointer<Float>, ldo: Int, alpha: Float = 1, accumulate: Bool = false,
                                threads: Int = 1, level: CPUKernelLevel = .best) {
        guard x.rows > 0, outFeatures > 0 else { return }
        let tiles = (outFeatures + 5) / 6
        let chunks = WorkerPool.chunks(work: x.rows * x.columns * outFeatures, units: tiles, threads: threads)
        let path = level.cValue, accumulateFlag: Int32 = accumulate ? 1 : 0
        let panelsAddress = UInt(bitPattern: x.panels), weightAddress = UInt(bitPattern: weight)
        let outAddress = UInt(bitPattern: out)
        let rows = x.rows, columns = x.columns
        WorkerPool.run(splitting: outFeatures, into: chunks, alignment: 6) { range in
            steertool_token_panel_gemm(UnsafePointer(bitPattern: panelsAddress), rows, columns,
                                       UnsafePointer(bitPattern: weightAddress), columns, range.lowerBound, range.upperBound,
                                       UnsafeMutablePointer(bitPattern: outAddress), ldo, alpha, accumulateFlag, path)
        }
    }
}
