import Equivalence
import Runtime
import Tensors
import Testing
import TestSupport

/// Dense and LoRA weight deltas.
@Suite struct ProjectionDeltaTests {
    // A rank-3 dense delta: its rank-3 LoRA form is exact (float32 SVD round trip: 1e-5), its
    // rank-2 form leaves exactly σ₃ (Eckart–Young) and a LoRA of small rank is kept as it is.
    @Test func lowRankFormIsTruncatedSVD() throws {
        let w = matmul(Tensor.randomNormal([20, 3], seed: 1), Tensor.randomNormal([3, 12], seed: 2))
        let d = ProjectionDelta.dense(w)
        let r3 = try d.lowRank(maximumRank: 3)
        #expect(relativeError(r3.denseMatrix().scalars, w.scalars) < 1e-5)
        let s = try singularValues(w, precision: .double)
        let r2 = try d.lowRank(maximumRank: 2)
        guard case let .lowRank(a, b, _) = r2 else { Issue.record("not a LoRA"); return }
        #expect(a.shape == [2, 12] && b.shape == [20, 2])
        #expect(abs((w - r2.denseMatrix()).frobeniusNorm - s[2]) < 1e-4 * s[0])
        let lora = ProjectionDelta.lowRank(a: Tensor.randomNormal([2, 12], seed: 3), b: Tensor.randomNormal([20, 2], seed: 4), scale: 0.5)
        #expect(try lora.lowRank(maximumRank: 4) == lora)
        // x·ΔWᵀ through the factors equals the dense product.
        let x = Tensor.randomNormal([5, 12], seed: 5)
        #expect(relativeError(lora.apply(x).scalars, matmul(x, lora.denseMatrix(), transposeB: true).scalars) < 1e-6)
    }
}
