#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Elementwise and row-wise kernels of the forward pass, on raw row-major buffers. Everything
/// matrix-shaped goes through BLAS; these are the O(T·d) parts.
enum Kernels {
    /// out[t] = w ⊙ (x[t] · 1/√(mean(x[t]²) + eps)) for `rows` rows of width `d` (transformers'
    /// LlamaRMSNorm in f32; the mean of squares is accumulated in Double). With `inverseRMS`, each
    /// row's 1/√(mean(x²)+eps) is also stored there `[rows]` (what the backward pass needs).
    static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>, eps: Float,
                        out: UnsafeMutablePointer<Float>, inverseRMS: UnsafeMutablePointer<Float>? = nil) {
        for t in 0..<rows {
            let xr = x + t * d, o = out + t * d
            var s0 = 0.0, s1 = 0.0
            var i = 0
            while i + 1 < d {
                s0 += Double(xr[i]) * Double(xr[i])
                s1 += Double(xr[i + 1]) * Double(xr[i + 1])
                i += 2
            }
            if i < d { s0 += Double(xr[i]) * Double(xr[i]) }
            let variance = Float((s0 + s1) / Double(d))
            let r = 1 / (variance + eps).squareRoot()
            inverseRMS?[t] = r
            for j in 0..<d { o[j] = weight[j] * (xr[j] * r) }
        }
    }

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

    /// out[t] = x[t]·Wᵀ (+ bias) (+ Σ scale·(x[t]·Aᵀ)·Bᵀ) for `rows` rows; W `[out, in]`,
    /// `out` rows `ldo` apart. `scratch` holds ≥ rows·max rank floats.
    static func linear(_ x: UnsafePointer<Float>, rows: Int, weight: Tensor, bias: Tensor?, loras: [LoRAFactors],
                       out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>) {
        linear(x, rows: rows, weight: .f32(weight), bias: bias, loras: loras, out: out, ldo: ldo, scratch: scratch)
    }

    /// As above for a weight held f32 or Q8_0. Q8_0: one row runs the Q8_0 matrix-vector kernel on
    /// `BLAS.threadCount` threads (no f32 copy of W); more rows dequantize W a tile of rows at a
    /// time into a transient buffer and multiply each tile with sgemm (the weights are read once
    /// per call either way).
    static func linear(_ x: UnsafePointer<Float>, rows: Int, weight: ProjectionWeight, bias: Tensor?, loras: [LoRAFactors],
                       out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>) {
        let nOut = weight.rows, nIn = weight.columns
        switch weight {
        case .f32(let w):
            w.withUnsafeBufferPointer { w in
                guard let wp = w.baseAddress else { return }
                if rows == 1 {
                    BLAS.sgemv(rows: nOut, cols: nIn, a: wp, lda: nIn, x: x, y: out)
                } else {
                    BLAS.sgemm(transposeB: true, m: rows, n: nOut, k: nIn, a: x, lda: nIn, b: wp, ldb: nIn,
                               c: out, ldc: ldo)
                }
            }
        case .q8_0(let m):
            if rows <= 2 {
                for t in 0..<rows { m.multiply(vector: x + t * nIn, into: out + t * ldo, threads: BLAS.threadCount) }
            } else {
                let tileRows = max(16, min(nOut, (1 << 20) / max(nIn, 1)))   // ≤ ~4 MB of f32 per tile
                let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * nIn)
                defer { tile.deallocate() }
                var r0 = 0
                while r0 < nOut {
                    let r1 = min(nOut, r0 + tileRows)
                    m.dequantizeRows(r0..<r1, into: tile)
                    BLAS.sgemm(transposeB: true, m: rows, n: r1 - r0, k: nIn, a: x, lda: nIn, b: tile, ldb: nIn,
                               c: out + r0, ldc: ldo)
                    r0 = r1
                }
            }
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for t in 0..<rows { add(bp, into: out + t * ldo, count: nOut) }
            }
        }
        for f in loras {
            let r = f.rank
            f.a.withUnsafeBufferPointer { a in
                f.b.withUnsafeBufferPointer { b in
                    guard let ap = a.baseAddress, let bp = b.baseAddress else { return }
                    // scratch [rows, r] = x · Aᵀ; out += scale · scratch · Bᵀ.
                    BLAS.sgemm(transposeB: true, m: rows, n: r, k: nIn, a: x, lda: nIn, b: ap, ldb: nIn,
                               c: scratch, ldc: r)
                    BLAS.sgemm(transposeB: true, m: rows, n: nOut, k: r, alpha: f.scale, a: scratch, lda: r,
                               b: bp, ldb: r, beta: 1, c: out, ldc: ldo)
                }
            }
        }
    }
}
