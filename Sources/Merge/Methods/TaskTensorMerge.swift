import Tensors

/// PEFT's `peft.utils.merge_utils` on task tensors of one shape: weighted sums with optional
/// magnitude or random (DARE) pruning and TIES sign election. Sums run in Float over the inputs
/// in order, as torch does on a stacked tensor.
public enum TaskTensorMerge {
    /// Σᵢ wᵢ·tᵢ.
    public static func taskArithmetic(_ ts: [Tensor], weights: [Float]) -> Tensor {
        precondition(ts.count == weights.count && !ts.isEmpty, "taskArithmetic: \(ts.count) tensors, \(weights.count) weights")
        var out = Tensor(shape: ts[0].shape)
        out.withUnsafeMutableBufferPointer { o in
            for (t, w) in zip(ts, weights) {
                precondition(t.shape == ts[0].shape, "taskArithmetic: shapes differ")
                t.withUnsafeBufferPointer { x in
                    for i in 0..<o.count { o[i] += x[i] * w }
                }
            }
        }
        return out
    }

    /// Magnitude pruning of each tensor to `density` (PEFT: top ⌊density·n⌋), then task arithmetic.
    public static func magnitudePrune(_ ts: [Tensor], weights: [Float], density: Double) -> Tensor {
        taskArithmetic(ts.map { Sparsification.peftMagnitude($0, density: density) }, weights: weights)
    }

    /// TIES: magnitude pruning, sign election on the pruned (unweighted) tensors, then the mean
    /// of the weighted entries that agree with the elected sign (divided by max(count, 1)).
    public static func ties(_ ts: [Tensor], weights: [Float], density: Double, signs: MajoritySignMethod) -> Tensor {
        disjointMerge(ts.map { Sparsification.peftMagnitude($0, density: density) }, weights: weights, signs: signs)
    }

    /// DARE linear: each tensor keeps entries with probability `density` and is divided by
    /// `density`, then task arithmetic.
    public static func dareLinear(_ ts: [Tensor], weights: [Float], density: Double, rng: inout SplitMix64) -> Tensor {
        let pruned = ts.map { Sparsification.peftRandom($0, density: density, rescale: true, rng: &rng) }
        return taskArithmetic(pruned, weights: weights)
    }

    /// DARE TIES: DARE's random pruning and rescale, then TIES' sign election and disjoint mean.
    public static func dareTies(_ ts: [Tensor], weights: [Float], density: Double, signs: MajoritySignMethod,
                                rng: inout SplitMix64) -> Tensor {
        let pruned = ts.map { Sparsification.peftRandom($0, density: density, rescale: true, rng: &rng) }
        return disjointMerge(pruned, weights: weights, signs: signs)
    }

    /// The deterministic core of TIES after pruning (PEFT `calculate_majority_sign_mask` on the
    /// unweighted tensors + `disjoint_merge` of the weighted ones).
    public static func disjointMerge(_ pruned: [Tensor], weights: [Float], signs: MajoritySignMethod) -> Tensor {
        precondition(pruned.count == weights.count && !pruned.isEmpty, "disjointMerge: counts differ")
        let masks = Sparsification.majoritySignMask(pruned.map(\.scalars), method: signs)
        let n = pruned[0].count
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var acc: Float = 0, kept: Float = 0
            for k in 0..<pruned.count {
                acc += pruned[k].scalars[i] * weights[k] * masks[k][i]
                kept += masks[k][i]
            }
            out[i] = acc / max(kept, 1)
        }
        return Tensor(shape: pruned[0].shape, scalars: out)
    }
}
