internal import CLAPACKE

/// Working precision of a LAPACK call. Inputs and outputs are Float32 tensors either way;
/// `.double` converts to Float64, calls the `d…` routine and rounds the results back, which costs
/// 2× memory and is worth it for ill-conditioned least-squares and small decompositions.
public enum LinalgPrecision: Sendable { case single, double }

/// Thin singular value decomposition `A = U · diag(S) · Vᵀ` of an `[m, n]` matrix with
/// `k = min(m, n)`: `u` is `[m, k]`, `singularValues` has `k` entries in descending order, `vt`
/// is `[k, n]` (rows are right singular vectors).
public struct SingularValueDecomposition: Sendable {
    public let u: Tensor
    public let singularValues: [Float]
    public let vt: Tensor
}

/// Thin SVD via LAPACK `gesdd` (divide and conquer).
/// - Throws: `TensorsError.lapackFailure` if the routine does not converge.
public func svd(_ a: Tensor, precision: LinalgPrecision = .single) throws -> SingularValueDecomposition {
    precondition(a.rank == 2, "svd needs a matrix, got \(a.shape)")
    let m = a.rows, n = a.columns, k = min(m, n)
    if k == 0 {
        return SingularValueDecomposition(u: Tensor(shape: [m, 0]), singularValues: [], vt: Tensor(shape: [0, n]))
    }
    let jobz = CChar(UInt8(ascii: "S"))
    switch precision {
    case .single:
        var work = a.scalars
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: m * k)
        var vt = [Float](repeating: 0, count: k * n)
        let info = LAPACKE_sgesdd(
            LAPACK_ROW_MAJOR, jobz, Int32(m), Int32(n), &work, Int32(n), &s, &u, Int32(k), &vt, Int32(n))
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "sgesdd", info: info, shape: "\(a.shape)") }
        return SingularValueDecomposition(u: Tensor(shape: [m, k], scalars: u), singularValues: s, vt: Tensor(shape: [k, n], scalars: vt))
    case .double:
        var work = a.scalars.map(Double.init)
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: m * k)
        var vt = [Double](repeating: 0, count: k * n)
        let info = LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, jobz, Int32(m), Int32(n), &work, Int32(n), &s, &u, Int32(k), &vt, Int32(n))
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dgesdd", info: info, shape: "\(a.shape)") }
        return SingularValueDecomposition(
            u: Tensor(shape: [m, k], scalars: u.map(Float.init)), singularValues: s.map(Float.init),
            vt: Tensor(shape: [k, n], scalars: vt.map(Float.init)))
    }
}

/// Singular values (descending) and right singular vectors of an `[m, n]` matrix, without U:
/// `vt` is `[k, n]`, `k = min(m, n)`, rows are right singular vectors (the same as `svd(a).vt`
/// up to the sign of each row). Float64 `gesvd` on the row-major buffer read as the column-major
/// `[n, m]` matrix Aᵀ = V·S·Uᵀ, whose left singular vectors (column-major `[n, k]`) are already
/// `vt` in row-major order, so nothing is transposed; for m ≫ n LAPACK works on the `[n, n]`
/// factor of an LQ decomposition and never forms an `[m, k]` matrix (about a third of the work
/// of `svd` on a tall matrix).
/// - Throws: `TensorsError.lapackFailure` if the routine does not converge.
public func rightSingularVectors(_ a: Tensor) throws -> (singularValues: [Float], vt: Tensor) {
    precondition(a.rank == 2, "rightSingularVectors needs a matrix, got \(a.shape)")
    let m = a.rows, n = a.columns, k = min(m, n)
    if k == 0 { return ([], Tensor(shape: [0, n])) }
    var work = a.scalars.map(Double.init)
    var s = [Double](repeating: 0, count: k)
    var v = [Double](repeating: 0, count: n * k)
    var unusedVt = [Double](repeating: 0, count: 1)
    var superb = [Double](repeating: 0, count: max(k - 1, 1))
    let info = LAPACKE_dgesvd(
        LAPACK_COL_MAJOR, CChar(UInt8(ascii: "S")), CChar(UInt8(ascii: "N")), Int32(n), Int32(m),
        &work, Int32(n), &s, &v, Int32(n), &unusedVt, 1, &superb)
    guard info == 0 else { throw TensorsError.lapackFailure(routine: "dgesvd", info: info, shape: "\(a.shape)") }
    return (s.map(Float.init), Tensor(shape: [k, n], scalars: v.map(Float.init)))
}

/// Singular values only (descending), via `gesdd` with `jobz = 'N'`.
public func singularValues(_ a: Tensor, precision: LinalgPrecision = .single) throws -> [Float] {
    precondition(a.rank == 2, "singularValues needs a matrix, got \(a.shape)")
    let m = a.rows, n = a.columns, k = min(m, n)
    if k == 0 { return [] }
    let jobz = CChar(UInt8(ascii: "N"))
    // Row-major gesdd checks ldu/ldvt even when it does not write U/Vᵀ, so pass the real ones.
    switch precision {
    case .single:
        var work = a.scalars
        var s = [Float](repeating: 0, count: k)
        var dummyU = [Float](repeating: 0, count: 1), dummyVt = [Float](repeating: 0, count: 1)
        let info = LAPACKE_sgesdd(
            LAPACK_ROW_MAJOR, jobz, Int32(m), Int32(n), &work, Int32(n), &s, &dummyU, Int32(m), &dummyVt, Int32(n))
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "sgesdd", info: info, shape: "\(a.shape)") }
        return s
    case .double:
        var work = a.scalars.map(Double.init)
        var s = [Double](repeating: 0, count: k)
        var dummyU = [Double](repeating: 0, count: 1), dummyVt = [Double](repeating: 0, count: 1)
        let info = LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, jobz, Int32(m), Int32(n), &work, Int32(n), &s, &dummyU, Int32(m), &dummyVt, Int32(n))
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dgesdd", info: info, shape: "\(a.shape)") }
        return s.map(Float.init)
    }
}

/// Minimum-norm least-squares solution of `A · X ≈ B` for `A` `[m, n]` and `B` `[m, p]`:
/// `solution` is `[n, p]`; `rank` is the effective rank of `A` (singular values below
/// `rcond · σ₁` count as zero; `rcond < 0` uses machine precision); `singularValues` of `A`.
public struct LeastSquaresSolution: Sendable {
    public let solution: Tensor
    public let rank: Int
    public let singularValues: [Float]
}

/// Solves `min ‖A·X − B‖_F` with LAPACK `gelsd` (SVD-based, handles rank deficiency and both
/// over- and under-determined systems).
/// - Throws: `TensorsError.lapackFailure` if the SVD does not converge.
public func leastSquares(_ a: Tensor, _ b: Tensor, rcond: Float = -1, precision: LinalgPrecision = .double) throws -> LeastSquaresSolution {
    precondition(a.rank == 2 && b.rank == 2 && a.rows == b.rows, "leastSquares: A \(a.shape) and B \(b.shape) do not match")
    let m = a.rows, n = a.columns, p = b.columns
    let ldb = max(p, 1)
    let mb = max(m, n)
    if m == 0 || n == 0 || p == 0 {
        return LeastSquaresSolution(solution: Tensor(shape: [n, p]), rank: 0, singularValues: [])
    }
    var rank: Int32 = 0
    switch precision {
    case .single:
        var aw = a.scalars
        var bw = [Float](repeating: 0, count: mb * ldb)
        bw.replaceSubrange(0..<(m * p), with: b.scalars)
        var s = [Float](repeating: 0, count: min(m, n))
        let info = LAPACKE_sgelsd(
            LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(p), &aw, Int32(n), &bw, Int32(ldb), &s, rcond, &rank)
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "sgelsd", info: info, shape: "\(a.shape)") }
        return LeastSquaresSolution(solution: Tensor(shape: [n, p], scalars: Array(bw[0..<(n * p)])), rank: Int(rank), singularValues: s)
    case .double:
        var aw = a.scalars.map(Double.init)
        var bw = [Double](repeating: 0, count: mb * ldb)
        for i in 0..<(m * p) { bw[i] = Double(b.scalars[i]) }
        var s = [Double](repeating: 0, count: min(m, n))
        let info = LAPACKE_dgelsd(
            LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(p), &aw, Int32(n), &bw, Int32(ldb), &s, Double(rcond), &rank)
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dgelsd", info: info, shape: "\(a.shape)") }
        return LeastSquaresSolution(
            solution: Tensor(shape: [n, p], scalars: bw[0..<(n * p)].map(Float.init)), rank: Int(rank), singularValues: s.map(Float.init))
    }
}

/// Thin QR decomposition `A = Q · R` of an `[m, n]` matrix with `k = min(m, n)`: `q` is `[m, k]`
/// with orthonormal columns, `r` is `[k, n]` upper trapezoidal (LAPACK `geqrf` + `orgqr`).
public func qr(_ a: Tensor) throws -> (q: Tensor, r: Tensor) {
    precondition(a.rank == 2, "qr needs a matrix, got \(a.shape)")
    let m = a.rows, n = a.columns, k = min(m, n)
    if k == 0 { return (Tensor(shape: [m, 0]), Tensor(shape: [0, n])) }
    var w = a.scalars.map(Double.init)
    var tau = [Double](repeating: 0, count: k)
    var info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), &w, Int32(n), &tau)
    guard info == 0 else { throw TensorsError.lapackFailure(routine: "dgeqrf", info: info, shape: "\(a.shape)") }
    var r = Tensor(shape: [k, n])
    for i in 0..<k {
        for j in i..<n { r[i, j] = Float(w[i * n + j]) }
    }
    // orgqr builds Q in the first k columns of the m×n buffer (leading dimension n).
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, Int32(m), Int32(k), Int32(k), &w, Int32(n), &tau)
    guard info == 0 else { throw TensorsError.lapackFailure(routine: "dorgqr", info: info, shape: "\(a.shape)") }
    var q = Tensor(shape: [m, k])
    for i in 0..<m {
        for j in 0..<k { q[i, j] = Float(w[i * n + j]) }
    }
    return (q, r)
}

/// Eigen-decomposition of a symmetric `[n, n]` matrix (only its upper triangle is read):
/// `values` ascending, `vectors` `[n, n]` with eigenvector `i` in column `i`. Computed in Float64
/// (LAPACK `syevd`).
public func symmetricEigen(_ a: Tensor) throws -> (values: [Float], vectors: Tensor) {
    precondition(a.rank == 2 && a.rows == a.columns, "symmetricEigen needs a square matrix, got \(a.shape)")
    let n = a.rows
    // `DoubleMatrix.symmetricEigen` (the same dsyevd call) orders descending; reverse it.
    let e = try DoubleMatrix(a).symmetricEigen()
    let vectors = Tensor(shape: [n, n]) { o in
        for i in 0..<n { for j in 0..<n { o[i * n + j] = Float(e.vectors[i, n - 1 - j]) } }
    }
    return (e.values.reversed().map(Float.init), vectors)
}
