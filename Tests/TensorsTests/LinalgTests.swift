import Testing
import Tensors
import TestSupport

/// Naive triple-loop product in Double, the independent reference for `matmul`.
private func naiveProduct(_ a: Tensor, _ b: Tensor, ta: Bool, tb: Bool) -> [Float] {
    let m = ta ? a.columns : a.rows, k = ta ? a.rows : a.columns, n = tb ? b.rows : b.columns
    var out = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let x = ta ? a[p, i] : a[i, p]
                let y = tb ? b[j, p] : b[p, j]
                s += Double(x) * Double(y)
            }
            out[i * n + j] = Float(s)
        }
    }
    return out
}

@Suite("BLAS and LAPACK wrappers")
struct LinalgTests {
    init() { BLAS.setThreadCount(1) }

    @Test("gemm matches a naive product on non-square shapes, with every transpose",
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmAllTransposes(ta: Bool, tb: Bool) {
        let (m, k, n) = (37, 53, 29)
        let a = Tensor.randomNormal(ta ? [k, m] : [m, k], seed: 1)
        let b = Tensor.randomNormal(tb ? [n, k] : [k, n], seed: 2)
        let c = matmul(a, b, transposeA: ta, transposeB: tb)
        #expect(c.shape == [m, n])
        // Float32 accumulation over k = 53 terms of unit-variance products: 1e-5 relative is ample.
        #expect(relativeError(c.scalars, naiveProduct(a, b, ta: ta, tb: tb)) < 1e-5)
    }

    @Test("gemm on empty inner dimension gives zeros")
    func gemmEmpty() {
        let c = matmul(Tensor(shape: [3, 0]), Tensor(shape: [0, 5]))
        #expect(c.shape == [3, 5] && c.scalars.allSatisfy { $0 == 0 })
    }

    @Test("SVD of a known matrix has singular values 5 and 3")
    func svdKnown() throws {
        // A = [[3, 2, 2], [2, 3, -2]]: AAᵀ = [[17, 8], [8, 17]] with eigenvalues 25 and 9.
        let a = Tensor(rows: [[3, 2, 2], [2, 3, -2]])
        let d = try svd(a)
        #expect(abs(d.singularValues[0] - 5) < 1e-5 && abs(d.singularValues[1] - 3) < 1e-5)
    }

    @Test("thin SVD reconstructs A to 1e-5 relative, with orthonormal factors",
          arguments: [(61, 23), (23, 61), (40, 40), (1, 7)])
    func svdReconstructs(m: Int, n: Int) throws {
        let a = Tensor.randomNormal([m, n], seed: UInt64(m * 1000 + n))
        let d = try svd(a)
        let k = min(m, n)
        #expect(d.u.shape == [m, k] && d.vt.shape == [k, n] && d.singularValues.count == k)
        #expect(zip(d.singularValues, d.singularValues.dropFirst()).allSatisfy { $0 >= $1 })
        var us = d.u
        for i in 0..<m { for j in 0..<k { us[i, j] *= d.singularValues[j] } }
        let back = matmul(us, d.vt)
        #expect(relativeError(back.scalars, a.scalars) < 1e-5)
        let utu = matmul(d.u, d.u, transposeA: true)
        #expect(maxAbsoluteDifference(utu.scalars, Tensor.identity(k).scalars) < 1e-5)
        let vvt = matmul(d.vt, d.vt, transposeB: true)
        #expect(maxAbsoluteDifference(vvt.scalars, Tensor.identity(k).scalars) < 1e-5)
        // The values-only path and the double-precision path agree with the full one.
        let s = try singularValues(a)
        #expect(relativeError(s, d.singularValues) < 1e-5)
        let dd = try svd(a, precision: .double)
        #expect(relativeError(dd.singularValues, d.singularValues) < 1e-5)
    }

    /// gesvd without U, on the row-major buffer read as Aᵀ: the rows of `vt` are orthonormal, are
    /// eigenvectors of AᵀA (naive Double product) with eigenvalues σᵢ², and equal gesdd's rows up
    /// to sign (random matrices: distinct singular values).
    @Test("right singular vectors alone equal the thin SVD's up to sign",
          arguments: [(61, 23), (23, 61), (40, 40), (1, 7), (500, 9)])
    func rightSingularVectorsMatchSVD(m: Int, n: Int) throws {
        let a = Tensor.randomNormal([m, n], seed: UInt64(m * 7919 + n))
        let full = try svd(a, precision: .double)
        let (s, vt) = try rightSingularVectors(a)
        let k = min(m, n)
        #expect(vt.shape == [k, n] && s.count == k)
        #expect(relativeError(s, full.singularValues) < 1e-6)
        let vvt = matmul(vt, vt, transposeB: true)
        #expect(maxAbsoluteDifference(vvt.scalars, Tensor.identity(k).scalars) < 1e-5)
        let gram = Tensor(shape: [n, n], scalars: naiveProduct(a, a, ta: true, tb: false))
        for i in 0..<k {
            let v = (0..<n).map { vt[i, $0] }
            let gv = (0..<n).map { r in (0..<n).reduce(0.0) { $0 + Double(gram[r, $1]) * Double(v[$1]) } }
            let s2 = Double(s[i]) * Double(s[i])
            let err = zip(gv, v).map { abs($0 - s2 * Double($1)) }.max() ?? 0
            #expect(err <= 1e-4 * Double(s[0]) * Double(s[0]), "row \(i): AᵀA v ≠ σ² v (\(err))")
            let sign: Float = zip(v, (0..<n).map { full.vt[i, $0] }).reduce(0) { $0 + $1.0 * $1.1 } < 0 ? -1 : 1
            #expect(maxAbsoluteDifference(v.map { sign * $0 }, (0..<n).map { full.vt[i, $0] }) < 1e-4, "row \(i)")
        }
    }

    @Test("least squares equals the normal-equation solution on a well-conditioned system")
    func lstsqNormalEquations() throws {
        let (m, n, p) = (83, 17, 5)
        let a = Tensor.randomNormal([m, n], seed: 11)
        let b = Tensor.randomNormal([m, p], seed: 12)
        let x = try leastSquares(a, b).solution
        // Independent reference: solve (AᵀA) X = AᵀB by Gaussian elimination in Double.
        var g = [[Double]](repeating: [Double](repeating: 0, count: n + p), count: n)
        for i in 0..<n {
            for j in 0..<n { g[i][j] = (0..<m).reduce(0.0) { $0 + Double(a[$1, i]) * Double(a[$1, j]) } }
            for j in 0..<p { g[i][n + j] = (0..<m).reduce(0.0) { $0 + Double(a[$1, i]) * Double(b[$1, j]) } }
        }
        for c in 0..<n {
            let piv = (c..<n).max { abs(g[$0][c]) < abs(g[$1][c]) }!
            g.swapAt(c, piv)
            for r in 0..<n where r != c {
                let f = g[r][c] / g[c][c]
                for j in c..<(n + p) { g[r][j] -= f * g[c][j] }
            }
        }
        var ref = [Float](repeating: 0, count: n * p)
        for i in 0..<n { for j in 0..<p { ref[i * p + j] = Float(g[i][n + j] / g[i][i]) } }
        #expect(x.shape == [n, p])
        #expect(relativeError(x.scalars, ref) < 1e-5)
        let single = try leastSquares(a, b, precision: .single).solution
        #expect(relativeError(single.scalars, ref) < 1e-4)
    }

    @Test("least squares on an underdetermined system gives the minimum-norm exact solution")
    func lstsqUnderdetermined() throws {
        let a = Tensor.randomNormal([7, 19], seed: 21)
        let b = Tensor.randomNormal([7, 3], seed: 22)
        let r = try leastSquares(a, b)
        #expect(r.rank == 7)
        #expect(relativeError(matmul(a, r.solution).scalars, b.scalars) < 1e-5)
        // Minimum norm: the solution lies in the row space of A, i.e. X = Aᵀ (A Aᵀ)⁻¹ B, so
        // projecting it onto row(A) leaves it unchanged.
        let q = try qr(a.transposed()).q  // [19, 7], orthonormal basis of row(A)
        let proj = matmul(q, matmul(q, r.solution, transposeA: true))
        #expect(relativeError(proj.scalars, r.solution.scalars) < 1e-5)
    }

    @Test("least squares reports the rank of a rank-deficient matrix")
    func lstsqRankDeficient() throws {
        let left = Tensor.randomNormal([30, 4], seed: 31), right = Tensor.randomNormal([4, 11], seed: 32)
        let a = matmul(left, right)  // rank 4
        let r = try leastSquares(a, Tensor.randomNormal([30, 2], seed: 33), rcond: 1e-6)
        #expect(r.rank == 4)
    }

    @Test("QR reconstructs A with orthonormal Q and upper-triangular R", arguments: [(45, 13), (13, 45)])
    func qrReconstructs(m: Int, n: Int) throws {
        let a = Tensor.randomNormal([m, n], seed: UInt64(m + n))
        let (q, r) = try qr(a)
        let k = min(m, n)
        #expect(q.shape == [m, k] && r.shape == [k, n])
        #expect(relativeError(matmul(q, r).scalars, a.scalars) < 1e-5)
        #expect(maxAbsoluteDifference(matmul(q, q, transposeA: true).scalars, Tensor.identity(k).scalars) < 1e-5)
        for i in 0..<k { for j in 0..<min(i, n) { #expect(r[i, j] == 0) } }
    }

    @Test("symmetric eigen-decomposition: A v = λ v, ascending")
    func symmetricEigenValues() throws {
        let b = Tensor.randomNormal([9, 9], seed: 41)
        let a = b + b.transposed()
        let (vals, vecs) = try symmetricEigen(a)
        #expect(zip(vals, vals.dropFirst()).allSatisfy { $0 <= $1 })
        let av = matmul(a, vecs)
        var vl = vecs
        for i in 0..<9 { for j in 0..<9 { vl[i, j] *= vals[j] } }
        #expect(relativeError(av.scalars, vl.scalars) < 1e-5)
    }
}
