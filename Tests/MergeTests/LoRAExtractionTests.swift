import Foundation
import Merge
import Tensors
import TestSupport
import Testing

/// LoRA extraction against mergekit 0.1.5's `TaskVectorDecompositionTask` and numpy's float64
/// singular values (fixtures/merge/extract.json).
@Suite struct LoRAExtractionTests {
    @Test("factors and truncation error match mergekit and numpy")
    func matchesReferences() throws {
        let root = try MergeFixtures.load("extract.json")
        for (i, c) in (root["cases"] as! [[String: Any]]).enumerated() {
            let base = try MergeFixtures.tensor(c["base"]), ft = try MergeFixtures.tensor(c["finetuned"])
            let r = (c["rank"] as! NSNumber).intValue
            let refA = try MergeFixtures.tensor(c["A"]), refB = try MergeFixtures.tensor(c["B"])
            let sv = (c["singular_values"] as! [NSNumber]).map(\.doubleValue)
            let tail = (c["relative_tail"] as! NSNumber).doubleValue
            let got = try LoRAExtraction.extract(base: base, finetuned: ft, rank: .fixed(r))
            #expect(got.factors.rank == min(r, sv.count))
            // singular values: float32 delta, float64 SVD in both; 1e-5 relative to σ₁.
            for (x, y) in zip(got.singularValues, sv) { #expect(abs(Double(x) - y) <= 1e-5 * sv[0], "case \(i)") }
            // B·A is sign-invariant; mergekit's float32 SVD vs ours: 1e-5 relative.
            let ref = matmul(refB, refA)
            #expect(relativeError(got.factors.delta.scalars, ref.scalars) < 1e-5, "case \(i)")
            // the factors themselves up to one sign per component
            for j in 0..<got.factors.rank {
                var dot: Float = 0
                for k in 0..<refA.columns { dot += got.factors.a[j, k] * refA[j, k] }
                let s: Float = dot < 0 ? -1 : 1
                let aj = (0..<refA.columns).map { s * got.factors.a[j, $0] }
                #expect(relativeError(aj, refA.row(j)) < 1e-3, "case \(i) component \(j)")
            }
            // the reported error is the SVD tail exactly (numpy's float64 spectrum)
            #expect(abs(got.relativeError - tail) <= 1e-6 + 1e-5 * tail, "case \(i): \(got.relativeError) vs \(tail)")
            // and it is what the factors really leave out (float32 residual: 1e-4 relative)
            let delta = ft - base
            let actual = Double((delta - got.factors.delta).frobeniusNorm / delta.frobeniusNorm)
            #expect(abs(actual - tail) <= 1e-4 * max(tail, 1e-3) + 1e-6, "case \(i): residual \(actual) vs \(tail)")
        }
    }

    @Test("energy target picks the smallest rank holding the energy")
    func energy() throws {
        // Δ = diag(4, 2, 1, 0): energies 16, 4, 1 of 21
        var d = Tensor.zeros(4, 4)
        d[0, 0] = 4; d[1, 1] = 2; d[2, 2] = 1
        #expect(try LoRAExtraction.extract(delta: d, rank: .energy(0.7, maxRank: 4)).factors.rank == 1)
        #expect(try LoRAExtraction.extract(delta: d, rank: .energy(0.9, maxRank: 4)).factors.rank == 2)
        #expect(try LoRAExtraction.extract(delta: d, rank: .energy(0.99, maxRank: 2)).factors.rank == 2)
        #expect(throws: MergeError.self) { try LoRAExtraction.extract(delta: d, rank: .energy(1.5, maxRank: 2)) }
        #expect(throws: MergeError.self) { try LoRAExtraction.extract(delta: d, rank: .fixed(0)) }
        #expect(throws: MergeError.self) { try LoRAExtraction.extract(base: d, finetuned: Tensor.zeros(4, 3), rank: .fixed(1)) }
    }
}
