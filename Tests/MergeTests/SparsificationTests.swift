import Merge
import Tensors
import TestSupport
import Testing

/// The top-k selection behind TIES and magnitude pruning, against a full sort.
@Suite struct SparsificationTests {
    @Test("keepTopMagnitude keeps exactly k entries, none smaller than a dropped one, ties by index")
    func topK() throws {
        for seed in 0..<20 as Range<UInt64> {
            // small integers: many equal magnitudes
            let t = Tensor.randomUniform([37, 11], low: -6, high: 6, seed: seed).map { $0.rounded() }
            for k in [0, 1, 5, 100, 406, 407] {
                let kept = Sparsification.keepTopMagnitude(t, count: k)
                let order = (0..<t.count).sorted { abs(t.scalars[$0]) > abs(t.scalars[$1]) || (abs(t.scalars[$0]) == abs(t.scalars[$1]) && $0 < $1) }
                var want = [Float](repeating: 0, count: t.count)
                for i in order.prefix(k) { want[i] = t.scalars[i] }
                #expect(kept.scalars == want, "seed \(seed) k \(k)")
            }
        }
    }
}
