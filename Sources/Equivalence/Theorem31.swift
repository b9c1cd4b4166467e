import Foundation
import Tensors

/// The Theorem 3.1 certificate for one layer: how well the best post-block linear map
/// reproduces a target (e.g. a post-MLP steer's output), and the principal-angle bounds.
///
/// Orientation: inputs here are **tokens as rows**, T `[N, k]` and Z `[N, d]`. The paper writes
/// tokens as columns (T_paper = Tᵀ), so the paper's row spaces row(T), row(Z) ⊂ R^N are the
/// column spaces of these matrices, and B* = T_paper Z_paper⁺ is `[k, d]` with T ≈ Z·B*ᵀ.
public struct Theorem31Report: Sendable {
    /// e* = ‖T_paper(I − P_Z)‖_F / ‖T‖_F = ‖(I − Q_Z Q_Zᵀ) T‖_F / ‖T‖_F.
    public var exact: Float
    /// √(Σᵢ σᵢ² sin²θᵢ) / ‖T‖_F ≤ e*.
    public var lower: Float
    /// e* ≤ √(Σᵢ σᵢ² sin²θ_{k+1−i}) / ‖T‖_F.
    public var upper: Float
    /// θ₁ ≤ … ≤ θ_k (radians) between row(T) and row(Z) (paper orientation), k = rank T; angles
    /// beyond rank Z are π/2.
    public var angles: [Float]
    /// σ₁ ≥ … ≥ σ_k of T (the k above the rank tolerance).
    public var singularValues: [Float]
    /// Numerical ranks of T and Z (singular values above `tolerance · σ₁`).
    public var rankT: Int
    public var rankZ: Int
}

/// Theorem 3.1 of *Weight Updates as Activation Shifts* with the von Neumann bounds
/// Σσᵢ²sin²θᵢ ≤ e*²‖T‖² ≤ Σσᵢ²sin²θ_{k+1−i}.
public enum Theorem31 {
    /// Computes e*, the principal angles and both bounds for target T `[N, k]` and block outputs
    /// Z `[N, d]` (tokens as rows), through their Grams (`Theorem31Grams`), or through the
    /// `[N, N]` token kernel of Z when there are fewer tokens than features (N < d).
    public static func analyze(target t: Tensor, blockOutput z: Tensor, rankTolerance: Float = 1e-5) throws -> Theorem31Report {
        guard t.rank == 2, z.rank == 2, t.rows == z.rows else {
            throw EquivalenceError.shapeMismatch(what: "block outputs Z", expected: [t.rank == 2 ? t.rows : -1, -1], found: z.shape.dims)
        }
        return try analyze(target: DoubleMatrix(t), blockOutput: DoubleMatrix(z), rankTolerance: rankTolerance)
    }

    /// `analyze(target:blockOutput:)` on Float64 rows: T `[N, k]`, Z `[N, d]` (uncentred). With
    /// N ≥ d through the Grams (`analyze(_:)`); with N < d, where ZᵀZ `[d, d]` is singular and its
    /// decomposition would cost d³, through Z's token kernel instead: Z's columns are
    /// equilibrated as there, K = Z_s Z_sᵀ `[N, N]`; when K passes Cholesky with reciprocal
    /// condition ≥ 1e-6, Z's columns span all of R^N (rank Z = N, every equilibrated singular
    /// value far above the tolerance), which holds T: e* = 0 and every angle 0; otherwise Q_Z holds K's eigenvectors over the
    /// eigenvalues whose square roots (Z_s's singular values) pass the tolerance: the same Q_Z
    /// (up to rotation) as the Gram path's, so the same report.
    public static func analyze(target t: DoubleMatrix, blockOutput z: DoubleMatrix, rankTolerance: Float = 1e-5) throws -> Theorem31Report {
        precondition(t.rows == z.rows, "Theorem31: \(t.rows) target rows, \(z.rows) block-output rows")
        let n = z.rows, d = z.columns
        guard n < d else {
            return try analyze(Theorem31Grams(target: t, blockOutput: z), rankTolerance: rankTolerance)
        }
        var norms = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { norms[j] += z[i, j] * z[i, j] } }
        let sz = norms.map { $0 > 0 ? 1 / $0.squareRoot() : 0 }
        let kernel = z.scaled(rows: [Double](repeating: 1, count: n), columns: sz).rowGram()   // Z_s Z_sᵀ  [N, N]
        if try kernel.cholesky(minimumReciprocalCondition: 1e-6) != nil {
            // col(Z) = R^N holds T: e* = 0 and every angle is 0, exactly (not to rounding).
            let sigmaT = try t.gram().symmetricEigen().values.map { Float(max($0, 0).squareRoot()) }
            let kT = numericalRank(sigmaT, rankTolerance)
            return Theorem31Report(exact: 0, lower: 0, upper: 0, angles: [Float](repeating: 0, count: kT),
                                   singularValues: Array(sigmaT.prefix(kT)), rankT: kT, rankZ: n)
        }
        let ek = try kernel.symmetricEigen()
        let kZ = numericalRank(ek.values.map { Float(max($0, 0).squareRoot()) }, rankTolerance)
        let tzv = t.multiplied(by: ek.vectors.leadingColumns(kZ), transposeSelf: true)       // Tᵀ Q_Z  [k, kZ]
        return try report(targetGram: t.gram(), projection: tzv, rankZ: kZ, rankTolerance: rankTolerance)
    }

    /// The report from the Grams alone; only `[k, k]` and `[d, d]` matrices are decomposed.
    ///
    /// Ranks: σᵢ(T) come from the eigenvalues of TᵀT, and rank T counts those above
    /// `rankTolerance · σ₁` (float32 data: 1e-5 keeps rounding noise out). Z's columns are first
    /// equilibrated (scaled to unit norm, zero columns dropped; col(Z) does not change), so the
    /// few huge coordinates of a residual stream do not push real directions under the
    /// tolerance; rank Z counts the equilibrated singular values above `rankTolerance · s₁`.
    /// With orthonormal bases Q_T = T V_T Λ_T^(-1/2) and Q_Z (from the Cholesky factor of the
    /// equilibrated ZᵀZ, or its eigenvectors when that is ill-conditioned; never formed: N × k),
    /// C = Q_Tᵀ Q_Z = Λ_T^(-1/2) V_Tᵀ (TᵀQ_Z), cos²θᵢ are the eigenvalues of CCᵀ
    /// (θ = atan2(√(1 − cos²), cos): small angles to ~1e-8 absolute), and
    /// e*²‖T‖² = ‖T‖² − ‖Q_Zᵀ T‖². Float64 throughout.
    public static func analyze(_ g: Theorem31Grams, rankTolerance: Float = 1e-5) throws -> Theorem31Report {
        let k = g.targetGram.rows, d = g.blockOutputGram.rows
        precondition(g.targetGram.columns == k && g.crossGram.rows == k && g.crossGram.columns == d && g.blockOutputGram.columns == d,
                     "Theorem31Grams: inconsistent shapes")
        // Z: equilibrate; an orthonormal basis of col(Z) is Q_Z = Z_s R⁻¹ from the Cholesky factor
        // R of the equilibrated Gram when that is well conditioned (reciprocal condition ≥ 1e-6,
        // so every singular value is far above the rank tolerance: rank Z = d), otherwise
        // Z_s V_Z Λ_Z^(-1/2) over the eigenvalues above the tolerance.
        let sz = (0..<d).map { g.blockOutputGram[$0, $0] > 0 ? 1 / g.blockOutputGram[$0, $0].squareRoot() : 0 }
        let zs = g.blockOutputGram.scaled(rows: sz, columns: sz)
        let tzs = g.crossGram.scaled(rows: [Double](repeating: 1, count: k), columns: sz)
        let kZ: Int, tzv: DoubleMatrix                                      // tzv = Tᵀ Q_Z  [k, kZ]
        if sz.allSatisfy({ $0 > 0 }), let r = try zs.cholesky(minimumReciprocalCondition: 1e-6) {
            kZ = d
            tzv = r.solveTransposed(tzs.transposed).transposed
        } else {
            let ez = try zs.symmetricEigen()
            kZ = numericalRank(ez.values.map { Float(max($0, 0).squareRoot()) }, rankTolerance)
            var m = tzs.multiplied(by: ez.vectors.leadingColumns(kZ))
            for i in 0..<k { for j in 0..<kZ { m[i, j] /= ez.values[j].squareRoot() } }
            tzv = m
        }
        return try report(targetGram: g.targetGram, projection: tzv, rankZ: kZ, rankTolerance: rankTolerance)
    }

    /// The report from TᵀT `[k, k]` and TᵀQ_Z `[k, kZ]` for an orthonormal basis Q_Z of col(Z)
    /// (see `analyze(_:)`).
    static func report(targetGram: DoubleMatrix, projection tzv: DoubleMatrix, rankZ kZ: Int,
                       rankTolerance: Float) throws -> Theorem31Report {
        let k = targetGram.rows
        let normT2 = targetGram.trace
        let et = try targetGram.symmetricEigen()
        let sigmaT = et.values.map { Float(max($0, 0).squareRoot()) }
        let kT = numericalRank(sigmaT, rankTolerance)
        guard normT2 > 0, kT > 0 else {
            return Theorem31Report(exact: 0, lower: 0, upper: 0, angles: [], singularValues: [], rankT: 0, rankZ: kZ)
        }
        let projected = tzv.sumOfSquares                                                           // ‖Q_Zᵀ T‖²
        let exact = (max(normT2 - projected, 0) / normT2).squareRoot()
        var c = et.vectors.leadingColumns(kT).multiplied(by: tzv, transposeSelf: true)             // [kT, kZ]
        for i in 0..<kT { for j in 0..<kZ { c[i, j] /= et.values[i].squareRoot() } }
        let cos2 = try c.multiplied(by: c, transposeOther: true).symmetricEigen().values         // descending ↔ θ ascending
        let angles = cos2.map { v -> Float in
            let c2 = min(max(v, 0), 1)
            return Float(atan2((1 - c2).squareRoot(), c2.squareRoot()))
        }.sorted()
        let sig = Array(sigmaT.prefix(kT))
        var lo = 0.0, hi = 0.0
        for i in 0..<kT {
            let s2 = Double(sig[i]) * Double(sig[i])
            let a = sin(Double(angles[i])), b = sin(Double(angles[kT - 1 - i]))
            lo += s2 * a * a
            hi += s2 * b * b
        }
        let normT = normT2.squareRoot()
        return Theorem31Report(exact: Float(exact), lower: Float(lo.squareRoot() / normT), upper: Float(hi.squareRoot() / normT),
                               angles: angles, singularValues: sig, rankT: kT, rankZ: kZ)
    }

    /// B* `[k, d]` (paper orientation: T_paper ≈ B*·Z_paper; rows form T ≈ Z·B*ᵀ), the
    /// minimum-norm least-squares solution (LAPACK `gelsd`, Float64).
    public static func optimalReplacement(target t: Tensor, blockOutput z: Tensor, rankTolerance: Float = 1e-5) throws -> Tensor {
        guard t.rank == 2, z.rank == 2, t.rows == z.rows else {
            throw EquivalenceError.shapeMismatch(what: "block outputs Z", expected: [t.rank == 2 ? t.rows : -1, -1], found: z.shape.dims)
        }
        return try leastSquares(z, t, rcond: rankTolerance, precision: .double).solution.transposed()
    }

    /// Principal angles (ascending, radians) between the column spaces of `a` `[N, p]` and `b`
    /// `[N, q]` (tokens as rows: the paper's row spaces), one per dimension of col(a), π/2 where
    /// col(b) runs out. Bases come from SVDs with the relative rank tolerance.
    public static func principalAngles(_ a: Tensor, _ b: Tensor, rankTolerance: Float = 1e-5) throws -> [Float] {
        precondition(a.rank == 2 && b.rank == 2 && a.rows == b.rows, "principalAngles: \(a.shape) vs \(b.shape)")
        let sa = try svd(a, precision: .double), sb = try svd(b, precision: .double)
        return try principalAngles(orthonormal: leadingColumns(sa.u, numericalRank(sa.singularValues, rankTolerance)),
                                   orthonormal: leadingColumns(sb.u, numericalRank(sb.singularValues, rankTolerance)))
    }

    /// Angles between col(qa) and col(qb) for orthonormal columns: cosines are the singular
    /// values of qaᵀqb, sines those of qa − qb qbᵀ qa; small angles are taken from the sine and
    /// large ones from the cosine (as scipy's `subspace_angles` does) for full accuracy.
    static func principalAngles(orthonormal qa: Tensor, orthonormal qb: Tensor) throws -> [Float] {
        let k = qa.columns
        if k == 0 { return [] }
        var cosines = qb.columns == 0 ? [] : try singularValues(matmul(qa, qb, transposeA: true), precision: .double)
        cosines += [Float](repeating: 0, count: max(0, k - cosines.count))
        let perp = qb.columns == 0 ? qa : qa - matmul(qb, matmul(qb, qa, transposeA: true))
        let sines = try singularValues(perp, precision: .double).sorted()   // ascending ↔ θ ascending
        var angles: [Float] = []
        for i in 0..<k {
            let s = min(max(Double(sines[i]), 0), 1), c = min(max(Double(cosines[i]), 0), 1)
            angles.append(Float(s * s <= 0.5 ? asin(s) : acos(c)))
        }
        return angles.sorted()
    }

    static func numericalRank(_ s: [Float], _ tol: Float) -> Int {
        guard let first = s.first, first > 0 else { return 0 }
        return s.filter { $0 > tol * first }.count
    }

    static func leadingColumns(_ u: Tensor, _ k: Int) -> Tensor {
        let n = u.rows, c = u.columns
        return Tensor(shape: [n, k]) { o in
            u.withUnsafeBufferPointer { src in
                for i in 0..<n { for j in 0..<k { o[i * k + j] = src[i * c + j] } }
            }
        }
    }
}

/// Gram matrices of Theorem 3.1's inputs, tokens as rows, uncentred, Float64: TᵀT `[k, k]`,
/// TᵀZ `[k, d]`, ZᵀZ `[d, d]` for a target T `[N, k]` and block outputs Z `[N, d]`. Any T′ with
/// the same column space and singular values gives the same report (e.g. the factor P of
/// T = P·Uᵀ with U orthonormal columns, whose Grams are `[r, r]` and `[r, d]`).
public struct Theorem31Grams: Sendable {
    public var targetGram: DoubleMatrix
    public var crossGram: DoubleMatrix
    public var blockOutputGram: DoubleMatrix

    /// The Grams as given.
    public init(targetGram: DoubleMatrix, crossGram: DoubleMatrix, blockOutputGram: DoubleMatrix) {
        self.targetGram = targetGram; self.crossGram = crossGram; self.blockOutputGram = blockOutputGram
    }

    /// The Grams of T `[N, k]` and Z `[N, d]` (`dsyrk`/`dgemm` over the N rows in Float64).
    public init(target t: DoubleMatrix, blockOutput z: DoubleMatrix) {
        self.init(targetGram: t.gram(), crossGram: t.multiplied(by: z, transposeSelf: true), blockOutputGram: z.gram())
    }
}
