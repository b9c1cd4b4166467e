internal import COpenBLAS
internal import CLAPACKE

/// A dense row-major Float64 matrix `[rows, columns]` (element (i, j) at `i · columns + j`), for
/// the closed-form analysis: Gram matrices accumulated over many tokens and the small
/// decompositions done on them. Products go to OpenBLAS `dgemm`/`dsyrk`, decompositions to LAPACK
/// in Float64.
public struct DoubleMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    /// Row-major elements, `rows · columns` of them.
    public var scalars: [Double]

    /// A matrix of `rows × columns` copies of `value`.
    public init(rows: Int, columns: Int, repeating value: Double = 0) {
        precondition(rows >= 0 && columns >= 0, "DoubleMatrix: negative shape \(rows)×\(columns)")
        self.rows = rows; self.columns = columns
        scalars = [Double](repeating: value, count: rows * columns)
    }

    /// A matrix over row-major `scalars` (count must be `rows · columns`).
    public init(rows: Int, columns: Int, scalars: [Double]) {
        precondition(rows >= 0 && columns >= 0 && scalars.count == rows * columns,
                     "DoubleMatrix: \(scalars.count) scalars for \(rows)×\(columns)")
        self.rows = rows; self.columns = columns; self.scalars = scalars
    }

    /// The Float32 matrix `t` `[rows, columns]` widened exactly to Float64.
    public init(_ t: Tensor) {
        precondition(t.rank == 2, "DoubleMatrix needs a matrix, got \(t.shape)")
        self.init(rows: t.rows, columns: t.columns, scalars: t.withUnsafeBufferPointer { $0.map(Double.init) })
    }

    /// The `n × n` identity.
    public static func identity(_ n: Int) -> DoubleMatrix {
        var m = DoubleMatrix(rows: n, columns: n)
        for i in 0..<n { m.scalars[i * n + i] = 1 }
        return m
    }

    /// Element (i, j).
    public subscript(i: Int, j: Int) -> Double {
        get { scalars[i * columns + j] }
        set { scalars[i * columns + j] = newValue }
    }

    /// The transpose `[columns, rows]`.
    public var transposed: DoubleMatrix {
        var out = DoubleMatrix(rows: columns, columns: rows)
        for i in 0..<rows { for j in 0..<columns { out.scalars[j * rows + i] = scalars[i * columns + j] } }
        return out
    }

    /// Rounded to a Float32 tensor `[rows, columns]`.
    public var tensor: Tensor { Tensor(shape: [rows, columns], scalars: scalars.map(Float.init)) }

    /// Σᵢ aᵢᵢ of a square matrix.
    public var trace: Double {
        precondition(rows == columns, "trace of a \(rows)×\(columns) matrix")
        var s = 0.0
        for i in 0..<rows { s += scalars[i * columns + i] }
        return s
    }

    /// ‖A‖²_F.
    public var sumOfSquares: Double { scalars.reduce(0) { $0 + $1 * $1 } }

    /// The leading `k` columns `[rows, k]`.
    public func leadingColumns(_ k: Int) -> DoubleMatrix {
        precondition(k >= 0 && k <= columns, "leadingColumns(\(k)) of \(columns)")
        var out = DoubleMatrix(rows: rows, columns: k)
        for i in 0..<rows { for j in 0..<k { out.scalars[i * k + j] = scalars[i * columns + j] } }
        return out
    }

    /// The Gram matrix AᵀA `[columns, columns]` (`dsyrk` on the upper triangle, mirrored).
    public func gram() -> DoubleMatrix { symmetricProduct(transposed: true) }

    /// The row Gram matrix A·Aᵀ `[rows, rows]` (`dsyrk` on the upper triangle, mirrored): the
    /// tokens' inner products when rows are tokens.
    public func rowGram() -> DoubleMatrix { symmetricProduct(transposed: false) }

    /// AᵀA (`transposed`) or AAᵀ through `dsyrk`, the upper triangle mirrored.
    private func symmetricProduct(transposed: Bool) -> DoubleMatrix {
        let n = transposed ? columns : rows, k = transposed ? rows : columns
        var out = DoubleMatrix(rows: n, columns: n)
        if n == 0 || k == 0 { return out }
        scalars.withUnsafeBufferPointer { a in
            out.scalars.withUnsafeMutableBufferPointer { c in
                cblas_dsyrk(CblasRowMajor, CblasUpper, transposed ? CblasTrans : CblasNoTrans, blasint(n), blasint(k), 1,
                            a.baseAddress, blasint(columns), 0, c.baseAddress, blasint(n))
            }
        }
        for i in 0..<n { for j in 0..<i { out.scalars[i * n + j] = out.scalars[j * n + i] } }
        return out
    }

    /// `op(self) · op(other)` (`dgemm`), `op` transposing when asked; shapes must agree.
    public func multiplied(by other: DoubleMatrix, transposeSelf: Bool = false, transposeOther: Bool = false) -> DoubleMatrix {
        let m = transposeSelf ? columns : rows, k = transposeSelf ? rows : columns
        let k2 = transposeOther ? other.columns : other.rows, n = transposeOther ? other.rows : other.columns
        precondition(k == k2, "DoubleMatrix product: inner dimensions \(k) and \(k2) differ")
        var out = DoubleMatrix(rows: m, columns: n)
        if m == 0 || n == 0 || k == 0 { return out }
        scalars.withUnsafeBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                out.scalars.withUnsafeMutableBufferPointer { c in
                    cblas_dgemm(CblasRowMajor, transposeSelf ? CblasTrans : CblasNoTrans, transposeOther ? CblasTrans : CblasNoTrans,
                                blasint(m), blasint(n), blasint(k), 1, a.baseAddress, blasint(columns),
                                b.baseAddress, blasint(other.columns), 0, c.baseAddress, blasint(n))
                }
            }
        }
        return out
    }

    /// Adds `alpha · u vᵀ` (u `[rows]`, v `[columns]`).
    public mutating func addOuterProduct(_ u: [Double], _ v: [Double], alpha: Double = 1) {
        precondition(u.count == rows && v.count == columns, "outer product \(u.count)×\(v.count) into \(rows)×\(columns)")
        for i in 0..<rows where u[i] != 0 {
            let a = alpha * u[i]
            for j in 0..<columns { scalars[i * columns + j] += a * v[j] }
        }
    }

    /// D·A·D for the diagonal D = diag(`left`) on the left and diag(`right`) on the right.
    public func scaled(rows left: [Double], columns right: [Double]) -> DoubleMatrix {
        precondition(left.count == rows && right.count == columns, "scaled: \(left.count), \(right.count) for \(rows)×\(columns)")
        var out = self
        for i in 0..<rows { for j in 0..<columns { out.scalars[i * columns + j] *= left[i] * right[j] } }
        return out
    }

    /// Eigen-decomposition of a symmetric matrix (upper triangle read), LAPACK `dsyevd`:
    /// eigenvalues in **descending** order and the eigenvectors as the columns of `vectors`
    /// `[n, n]`, column i for value i.
    /// - Throws: `TensorsError.lapackFailure` when the routine does not converge.
    public func symmetricEigen() throws -> (values: [Double], vectors: DoubleMatrix) {
        precondition(rows == columns, "symmetricEigen of a \(rows)×\(columns) matrix")
        let n = rows
        if n == 0 { return ([], DoubleMatrix(rows: 0, columns: 0)) }
        var w = scalars
        var vals = [Double](repeating: 0, count: n)
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")), Int32(n), &w, Int32(n), &vals)
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dsyevd", info: info, shape: "[\(n), \(n)]") }
        // Ascending from LAPACK; reverse the order of values and of the vector columns.
        var out = DoubleMatrix(rows: n, columns: n)
        for i in 0..<n { for j in 0..<n { out.scalars[i * n + j] = w[i * n + (n - 1 - j)] } }
        return (vals.reversed(), out)
    }

    /// The `k` largest eigenvalues (descending) of a symmetric matrix (upper triangle read) and
    /// their eigenvectors as the columns of `vectors` `[n, k]` (LAPACK `dsyevr`, range by index:
    /// the reduction to tridiagonal form as in `symmetricEigen`, then only k vectors); `k ≥ n`
    /// is `symmetricEigen()`.
    /// - Throws: `TensorsError.lapackFailure` when the routine does not converge.
    public func symmetricEigen(largest k: Int) throws -> (values: [Double], vectors: DoubleMatrix) {
        precondition(rows == columns && k >= 0, "symmetricEigen(largest: \(k)) of a \(rows)×\(columns) matrix")
        let n = rows
        if k >= n { return try symmetricEigen() }
        if k == 0 { return ([], DoubleMatrix(rows: n, columns: 0)) }
        var a = scalars
        var found: Int32 = 0
        var vals = [Double](repeating: 0, count: n)
        var z = [Double](repeating: 0, count: n * k)
        var support = [Int32](repeating: 0, count: 2 * k)
        let info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(n), 0, 0, Int32(n - k + 1), Int32(n), 0, &found, &vals, &z, Int32(k), &support)
        guard info == 0, Int(found) == k else {
            throw TensorsError.lapackFailure(routine: "dsyevr", info: info == 0 ? -1 : info, shape: "[\(n), \(n)]")
        }
        var out = DoubleMatrix(rows: n, columns: k)
        for i in 0..<n { for j in 0..<k { out.scalars[i * k + j] = z[i * k + (k - 1 - j)] } }
        return (vals.prefix(k).reversed(), out)
    }

    /// The Cholesky factor of a symmetric positive-definite matrix (`self`, `[n, n]`, upper
    /// triangle read; LAPACK `dpotrf`). Returns nil when the matrix is not numerically positive
    /// definite or its reciprocal condition number (`dpocon` estimate, 1-norm) is below
    /// `minimumReciprocalCondition`.
    /// - Throws: `TensorsError.lapackFailure` on an argument error.
    public func cholesky(minimumReciprocalCondition: Double = 1e-12) throws -> CholeskyFactor? {
        precondition(rows == columns, "cholesky of a \(rows)×\(columns) matrix")
        let n = rows
        if n == 0 { return CholeskyFactor(upper: self) }
        var anorm = 0.0
        for j in 0..<n {
            var s = 0.0
            for i in 0..<n { s += abs(scalars[i * n + j]) }
            anorm = max(anorm, s)
        }
        var f = scalars
        var info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), Int32(n), &f, Int32(n))
        if info > 0 { return nil }
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dpotrf", info: info, shape: "[\(n), \(n)]") }
        var rcond = 0.0
        info = LAPACKE_dpocon(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), Int32(n), &f, Int32(n), anorm, &rcond)
        guard info == 0 else { throw TensorsError.lapackFailure(routine: "dpocon", info: info, shape: "[\(n), \(n)]") }
        if !(rcond >= minimumReciprocalCondition) { return nil }
        for i in 0..<n { for j in 0..<i { f[i * n + j] = 0 } }     // dpotrf leaves the lower triangle as it was
        return CholeskyFactor(upper: DoubleMatrix(rows: n, columns: n, scalars: f))
    }

    /// Solves A·X = B for a symmetric positive-definite A (`self`, `[n, n]`) and B `[n, m]` by
    /// Cholesky; nil when `cholesky(minimumReciprocalCondition:)` is.
    /// - Throws: `TensorsError.lapackFailure` on an argument error.
    public func choleskySolve(_ b: DoubleMatrix, minimumReciprocalCondition: Double = 1e-12) throws -> DoubleMatrix? {
        precondition(rows == columns && b.rows == rows, "choleskySolve: A \(rows)×\(columns), B \(b.rows)×\(b.columns)")
        guard let r = try cholesky(minimumReciprocalCondition: minimumReciprocalCondition) else { return nil }
        return r.solve(r.solveTransposed(b))
    }
}

/// The upper-triangular Cholesky factor R `[n, n]` of A = RᵀR.
public struct CholeskyFactor: Sendable {
    /// R, zeros below the diagonal.
    public let upper: DoubleMatrix

    /// R⁻ᵀ·B for B `[n, m]` (forward substitution, `dtrsm`).
    public func solveTransposed(_ b: DoubleMatrix) -> DoubleMatrix { triangularSolve(b, transpose: true) }

    /// R⁻¹·B for B `[n, m]` (back substitution, `dtrsm`).
    public func solve(_ b: DoubleMatrix) -> DoubleMatrix { triangularSolve(b, transpose: false) }

    private func triangularSolve(_ b: DoubleMatrix, transpose: Bool) -> DoubleMatrix {
        let n = upper.rows
        precondition(b.rows == n, "triangular solve: R \(n)×\(n), B \(b.rows)×\(b.columns)")
        var x = b
        if n == 0 || b.columns == 0 { return x }
        upper.scalars.withUnsafeBufferPointer { r in
            x.scalars.withUnsafeMutableBufferPointer { xs in
                cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, transpose ? CblasTrans : CblasNoTrans, CblasNonUnit,
                            blasint(n), blasint(b.columns), 1, r.baseAddress, blasint(n), xs.baseAddress, blasint(b.columns))
            }
        }
        return x
    }
}

/// Rows of a Float32 matrix widened to Float64 and, when asked, centred: `centred` `[N, d]` holds
/// X − 1·meanᵀ (or X itself), with the column means, the row count and ‖X‖²_F of the uncentred
/// rows (Float64 sums). Gram matrices of the analysis are products of these (`dsyrk`/`dgemm`
/// over the tokens, accumulated in Float64, so the Grams carry no Float32 rounding beyond the
/// data's own).
public struct CentredRows: Sendable {
    /// X − 1·meanᵀ `[N, d]` (X itself when not centred).
    public let centred: DoubleMatrix
    /// Column means of X (zeros when not centred), `[d]`.
    public let mean: [Double]
    /// ‖X‖²_F of the rows as given (uncentred).
    public let energy: Double
    /// Whether the means were subtracted (`init(_:centre:)`'s `centre`).
    public let isCentred: Bool
    /// N.
    public var count: Int { centred.rows }

    /// Widens (and centres when `centre`) the rows of `x` `[N, d]`.
    public init(_ x: Tensor, centre: Bool = true) {
        precondition(x.rank == 2, "CentredRows needs a matrix, got \(x.shape)")
        let n = x.rows, d = x.columns
        var m = [Double](repeating: 0, count: d)
        var e = 0.0
        var w = [Double](repeating: 0, count: n * d)
        x.withUnsafeBufferPointer { xs in
            for i in 0..<(n * d) { let v = Double(xs[i]); w[i] = v; e += v * v }
        }
        if centre && n > 0 {
            for i in 0..<n { for j in 0..<d { m[j] += w[i * d + j] } }
            for j in 0..<d { m[j] /= Double(n) }
            for i in 0..<n { for j in 0..<d { w[i * d + j] -= m[j] } }
        }
        centred = DoubleMatrix(rows: n, columns: d, scalars: w)
        mean = m; energy = e; isCentred = centre
    }
}
