internal import COpenBLAS

/// Thin wrappers over OpenBLAS (CBLAS, row-major). C symbols stay inside this module.
public enum BLAS {
    /// Threads OpenBLAS uses for level-3 routines.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the OpenBLAS thread count (≥ 1). Results of `sgemm` are deterministic for a fixed count.
    public static func setThreadCount(_ n: Int) {
        precondition(n >= 1, "thread count must be ≥ 1")
        openblas_set_num_threads(Int32(n))
    }

    /// Runs `body` with OpenBLAS on one thread, then restores the count: for runs of thin
    /// products (a LoRA's rank-r factors), which several threads split into slivers and spend
    /// more time synchronising than multiplying.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        let n = threadCount
        if n == 1 { return try body() }
        setThreadCount(1)
        defer { setThreadCount(n) }
        return try body()
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on row-major buffers, with `op(A)` of shape `[m, k]`,
    /// `op(B)` of shape `[k, n]` and `C` of shape `[m, n]`; `lda`, `ldb`, `ldc` are the row strides
    /// of the buffers as stored (before `op`). Zero-sized products only scale `C` by `beta`.
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// `y = alpha · op(A) · x + beta · y` with row-major `A` of stored shape `[rows, cols]`.
    public static func sgemv(
        transposeA: Bool = false, rows: Int, cols: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>,
        beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        if rows == 0 || cols == 0 { return }
        cblas_sgemv(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, blasint(rows), blasint(cols),
            alpha, a, blasint(lda), x, 1, beta, y, 1)
    }

    /// Dot product of two length-`n` vectors.
    public static func sdot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        n == 0 ? 0 : cblas_sdot(blasint(n), x, 1, y, 1)
    }

    /// `y += alpha · x` for length-`n` vectors.
    public static func saxpy(_ n: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        if n > 0 { cblas_saxpy(blasint(n), alpha, x, 1, y, 1) }
    }
}

/// Matrix product `op(a) · op(b)` of two matrices, where `op` transposes when asked:
/// `op(a)` is `[m, k]`, `op(b)` is `[k, n]`, the result `[m, n]`. Traps on mismatched inner
/// dimensions (programmer error: callers validate shapes that come from files).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
    let m = transposeA ? a.columns : a.rows
    let k = transposeA ? a.rows : a.columns
    let kb = transposeB ? b.columns : b.rows
    let n = transposeB ? b.rows : b.columns
    precondition(k == kb, "matmul: inner dimensions differ (\(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : ""))")
    return Tensor(shape: [m, n]) { c in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                guard let ca = c.baseAddress, let aa = pa.baseAddress, let bb = pb.baseAddress else { return }
                BLAS.sgemm(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                    a: aa, lda: a.columns, b: bb, ldb: b.columns, beta: 0, c: ca, ldc: n)
            }
        }
    }
}
