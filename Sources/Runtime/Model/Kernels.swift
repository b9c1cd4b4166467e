#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Elementwise and row-wise kernels of the forward pass, on raw row-major buffers (the O(T·d)
/// parts), and `linear`, which sends each projection to BLAS or to the runtime's own matrix
/// kernels (`TokenPanelGemm`, `F32MatrixVector`, the half and GGML-block kernels).
enum Kernels {
    /// y += x elementwise over `n` values.
    static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// Causal softmax of one attention score row of `width` entries in place: entries
    /// 0..<visible become softmax (row maximum subtracted, e^x through `VectorMath.exp`), the
    /// masked rest 0.
    static func causalSoftmax(_ row: UnsafeMutablePointer<Float>, visible: Int, width: Int) {
        var m = -Float.infinity
        for j in 0..<visible { m = max(m, row[j]) }
        for j in 0..<visible { row[j] -= m }
        VectorMath.exp(row, into: row, count: visible)
        var sum: Float = 0
        for j in 0..<visible { sum += row[j] }
        let inv = 1 / sum
        for j in 0..<visible { row[j] *= inv }
        for j in visible..<width { row[j] = 0 }
    }

    /// out[t] = x[t]·Wᵀ (+ bias) (+ Σ scale·(x[t]·Aᵀ)·Bᵀ) for `rows` rows; W `[out, in]` held f32,
    /// bf16/f16 or in GGML blocks, `out` rows `ldo` apart; `scratch` holds ≥ rows·max rank floats.
    /// GGML blocks (`GGMLMatrix`): one row (Q8_0: up to two) runs `steertool_ggml_matvec` on
    /// `BLAS.threadCount` threads (no f32 copy of W); more rows widen W a tile of rows at a time
    /// into a transient buffer and multiply each tile as an f32 weight (the weights are read once
    /// per call either way). bf16/f16 (`HalfMatrix`): one row runs the half matrix-vector kernel;
    /// more rows widen a few rows at a time into per-thread scratch and multiply them with the
    /// token-panel gemm (or sgemm over widened tiles), never an f32 copy of the matrix.
    ///
    /// On an AVX2 CPU (`TokenPanelGemm.preferred`) several rows go through `TokenPanelGemm`, the
    /// LoRA products included, with x packed into token panels: `packed` when the caller already
    /// packed this x (q/k/v and gate/up share one input), else packed here; one row through
    /// `F32MatrixVector`. Otherwise, or with `useBLAS`, sgemm and sgemv: a pass that makes BLAS
    /// calls of its own between projections (the training tape) sets it, since OpenBLAS's threads
    /// spin after each call and would compete with the worker pool's.
    static func linear(_ x: UnsafePointer<Float>, rows: Int, weight: ProjectionWeight, bias: Tensor?, loras: [LoRAFactors],
                       out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>,
                       packed: PackedTokens? = nil, useBLAS: Bool = false) {
        let nOut = weight.rows, nIn = weight.columns
        let ownKernels = TokenPanelGemm.preferred && !useBLAS
        // Row by row through a matrix-vector kernel (one row; Q8_0: up to two), else one gemm.
        let rowByRow: Bool
        if case .quantized(let m) = weight, m.type == .q8_0 { rowByRow = rows <= 2 } else { rowByRow = rows == 1 }
        let panelGemm = !rowByRow && ownKernels
        if panelGemm, packed == nil {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: TokenPanelGemm.panelFloats(rows: rows, columns: nIn)) {
                let p = TokenPanelGemm.pack(x, rows: rows, columns: nIn, ldx: nIn, into: $0.baseAddress!)
                linear(x, rows: rows, weight: weight, bias: bias, loras: loras, out: out, ldo: ldo, scratch: scratch, packed: p)
            }
            return
        }
        /// x · Wᵀ of `n` weight rows at `wp` into `o` (rows ldo apart), for several rows.
        func multiplyRows(_ wp: UnsafePointer<Float>, _ n: Int, _ o: UnsafeMutablePointer<Float>) {
            if panelGemm, let packed {
                precondition(packed.rows == rows && packed.columns == nIn, "linear: packed tokens of another shape")
                TokenPanelGemm.multiply(packed, weight: wp, outFeatures: n, out: o, ldo: ldo, threads: BLAS.threadCount)
            } else {
                BLAS.sgemm(transposeB: true, m: rows, n: n, k: nIn, a: x, lda: nIn, b: wp, ldb: nIn, c: o, ldc: ldo)
            }
        }
        switch weight {
        case .f32(let w):
            w.withUnsafeBufferPointer { w in
                guard let wp = w.baseAddress else { return }
                if rowByRow, ownKernels {
                    F32MatrixVector.multiply(wp, rows: nOut, columns: nIn, x: x, into: out, threads: BLAS.threadCount)
                } else if rowByRow {
                    BLAS.sgemv(rows: nOut, cols: nIn, a: wp, lda: nIn, x: x, y: out)
                } else {
                    multiplyRows(wp, nOut, out)
                }
            }
        case .half(let m) where rowByRow:
            m.multiply(vector: x, into: out, threads: BLAS.threadCount)
        case .half(let m) where panelGemm && packed != nil:
            precondition(packed!.rows == rows && packed!.columns == nIn, "linear: packed tokens of another shape")
            m.multiply(packed!, out: out, ldo: ldo, threads: BLAS.threadCount)
        case .quantized(let m) where rowByRow:
            for t in 0..<rows { m.multiply(vector: x + t * nIn, into: out + t * ldo, threads: BLAS.threadCount) }
        case .half, .quantized:
            weight.forEachWidenedTile { r, tile in multiplyRows(tile, r.count, out + r.lowerBound) }
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for t in 0..<rows { add(bp, into: out + t * ldo, count: nOut) }
            }
        }
        for f in loras where f.rank > 0 {
            let r = f.rank
            Tensor.withPointers([f.a, f.b]) { p in
                let (ap, bp) = (p[0], p[1])
                // scratch [rows, r] = x · Aᵀ; out += scale · scratch · Bᵀ.
                if panelGemm, let packed {
                    TokenPanelGemm.multiply(packed, weight: ap, outFeatures: r, out: scratch, ldo: r, threads: BLAS.threadCount)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: TokenPanelGemm.panelFloats(rows: rows, columns: r)) {
                        let s = TokenPanelGemm.pack(scratch, rows: rows, columns: r, ldx: r, into: $0.baseAddress!)
                        TokenPanelGemm.multiply(s, weight: bp, outFeatures: nOut, out: out, ldo: ldo, alpha: f.scale,
                                                accumulate: true, threads: BLAS.threadCount)
                    }
                } else {
                    BLAS.singleThreaded {
                        BLAS.sgemm(transposeB: true, m: rows, n: r, k: nIn, a: x, lda: nIn, b: ap, ldb: nIn, c: scratch, ldc: r)
                        BLAS.sgemm(transposeB: true, m: rows, n: nOut, k: r, alpha: f.scale, a: scratch, lda: r,
                                   b: bp, ldb: r, beta: 1, c: out, ldc: ldo)
                    }
                }
            }
        }
    }
}
