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
    /// Z `[N, d]` (tokens as rows). Ranks are decided with singular values below
    /// `rankTolerance · σ₁` counted as zero (float32 data: 1e-5 keeps rounding noise out).
    public static func analyze(target t: Tensor, blockOutput z: Tensor, rankTolerance: Float = 1e-5) throws -> Theorem31Report {
        guard t.rank == 2, z.rank == 2, t.rows == z.rows else {
            throw EquivalenceError.shapeMismatch(what: "block outputs Z", expected: [t.rank == 2 ? t.rows : -1, -1], found: z.shape.dims)
        }
        let normT = Double(t.frobeniusNorm)
        let st = try svd(t, precision: .double)
        let kT = numericalRank(st.singularValues, rankTolerance)
        guard normT > 0, kT > 0 else {
            return Theorem31Report(exact: 0, lower: 0, upper: 0, angles: [], singularValues: [], rankT: 0, rankZ: try zRank(z, rankTolerance))
        }
        let qt = leadingColumns(st.u, kT)
        let sz = try svd(z, precision: .double)
        let kZ = numericalRank(sz.singularValues, rankTolerance)
        let qz = leadingColumns(sz.u, kZ)
        // e*: residual of T after projecting its columns onto col(Z).
        let residual = t - matmul(qz, matmul(qz, t, transposeA: true))
        let exact = Double(residual.frobeniusNorm) / normT
        let angles = try principalAngles(orthonormal: qt, orthonormal: qz)
        let sig = Array(st.singularValues.prefix(kT))
        var lo = 0.0, hi = 0.0
        for i in 0..<kT {
            let s2 = Double(sig[i]) * Double(sig[i])
            let a = sin(Double(angles[i])), b = sin(Double(angles[kT - 1 - i]))
            lo += s2 * a * a
            hi += s2 * b * b
        }
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

    private static func zRank(_ z: Tensor, _ tol: Float) throws -> Int {
        numericalRank(try singularValues(z, precision: .double), tol)
    }
}
