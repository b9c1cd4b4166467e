import Equivalence
import Tensors
import Testing
import TestSupport

/// Theorem 3.1 quantities against numpy/scipy (fixtures/equivalence/theorem31.safetensors) and
/// constructed cases. Tokens are rows: the paper's row spaces are column spaces here.
@Suite struct Theorem31Tests {
    // scipy's subspace_angles / orth in float64 vs ours (LAPACK in float64 on float32 data,
    // results rounded to float32): 1e-4 absolute on angles, 1e-4 relative on e* and bounds.
    // `wide` and `wide_low_rank` have fewer tokens than features (N 40 < d 64): the token-kernel
    // path, with Z of full row rank (Cholesky: e* = 0) and of rank 12 (eigen-decomposition).
    @Test(arguments: ["random", "block", "wide", "wide_low_rank"]) func matchesScipy(name: String) throws {
        let fx = try FixtureFile("equivalence/theorem31.safetensors")
        let t = try fx["\(name).t"], z = try fx["\(name).z"]
        let rep = try Theorem31.analyze(target: t, blockOutput: z)
        let ref = try fx["\(name).angles"].scalars
        #expect(rep.rankT == Int(try fx["\(name).rank_t"].scalars[0]))
        if name.hasPrefix("wide") { #expect(rep.rankZ == (name == "wide" ? 40 : 12)) }
        try #require(rep.angles.count == ref.count)
        #expect(maxAbsoluteDifference(rep.angles, ref) < 1e-4)
        #expect(abs(rep.exact - (try fx["\(name).estar"].scalars[0])) < 1e-4 * max(rep.exact, 1e-3))
        #expect(abs(rep.lower - (try fx["\(name).lower"].scalars[0])) < 1e-4 * max(rep.lower, 1e-3))
        #expect(abs(rep.upper - (try fx["\(name).upper"].scalars[0])) < 1e-4 * max(rep.upper, 1e-3))
        #expect(rep.lower <= rep.exact * (1 + 1e-5) && rep.exact <= rep.upper * (1 + 1e-5))
    }

    // e* equals the residual of an explicit least-squares solve T ≈ Z·B*ᵀ.
    @Test(arguments: ["random", "block", "wide_low_rank"]) func exactErrorIsLeastSquaresResidual(name: String) throws {
        let fx = try FixtureFile("equivalence/theorem31.safetensors")
        let t = try fx["\(name).t"], z = try fx["\(name).z"]
        let b = try Theorem31.optimalReplacement(target: t, blockOutput: z)
        #expect(b.shape == [t.columns, z.columns])
        let resid = (t - matmul(z, b, transposeB: true)).frobeniusNorm / t.frobeniusNorm
        let rep = try Theorem31.analyze(target: t, blockOutput: z)
        #expect(abs(resid - rep.exact) < 1e-4 * max(rep.exact, 1e-3))
    }

    @Test func targetInsideRowSpaceGivesZero() throws {
        let z = Tensor.randomNormal([30, 8], seed: 1)
        let t = matmul(z, Tensor.randomNormal([8, 5], seed: 2))       // col(T) ⊂ col(Z)
        let rep = try Theorem31.analyze(target: t, blockOutput: z)
        // float32 data: the residual is rounding, ~1e-7 relative; 1e-5 bounds it.
        #expect(rep.exact < 1e-5 && rep.lower < 1e-5 && rep.upper < 1e-5)
        #expect(rep.angles.allSatisfy { $0 < 1e-3 })
    }

    @Test func orthogonalTargetGivesOne() throws {
        // Z spans e₀..e₄ of R^12 (token space), T spans e₅..e₇: every angle is π/2.
        var z = Tensor(shape: [12, 5]), t = Tensor(shape: [12, 3])
        for i in 0..<5 { z[i, i] = Float(i + 1) }
        for i in 0..<3 { t[5 + i, i] = 2; t[5 + i, (i + 1) % 3] = 1 }
        let rep = try Theorem31.analyze(target: t, blockOutput: z)
        #expect(abs(rep.exact - 1) < 1e-6 && abs(rep.lower - 1) < 1e-6 && abs(rep.upper - 1) < 1e-6)
        #expect(rep.angles.allSatisfy { abs($0 - Float.pi / 2) < 1e-5 })
    }

    // lower ≤ e* ≤ upper on random problems of mixed ranks, including rank T > rank Z.
    @Test func boundsHoldOnRandomProblems() throws {
        for seed in UInt64(0)..<12 {
            let n = 20 + Int(seed) * 3, kz = 2 + Int(seed % 7), kt = 1 + Int(seed % 5), d = 6
            let z = matmul(Tensor.randomNormal([n, kz], seed: seed * 4 + 1), Tensor.randomNormal([kz, d + 3], seed: seed * 4 + 2))
            let t = matmul(Tensor.randomNormal([n, kt], seed: seed * 4 + 3), Tensor.randomNormal([kt, d], seed: seed * 4 + 4))
                + matmul(z, Tensor.randomNormal([d + 3, d], seed: seed * 4 + 5))
            let rep = try Theorem31.analyze(target: t, blockOutput: z)
            #expect(rep.rankZ == kz)
            #expect(rep.lower <= rep.exact * (1 + 1e-4) + 1e-6, "seed \(seed): \(rep.lower) > \(rep.exact)")
            #expect(rep.exact <= rep.upper * (1 + 1e-4) + 1e-6, "seed \(seed): \(rep.exact) > \(rep.upper)")
        }
    }
}
