import Foundation
import Runtime
import Tensors

extension BlockEvaluator {
    /// The adjoint of `jvp` with respect to the weights: for a cotangent G = ∂L/∂Z `[T, d]` of
    /// the block output, returns ∂L/∂W_p `[out, in]` for each requested projection p, i.e. the
    /// ΔW_p with ⟨jvp(ΔW), G⟩_F = Σ_p ⟨ΔW_p, result[p]⟩_F for every delta. Batched over tokens
    /// with gemms (per head for attention), the reverse of the JVP's sweep:
    /// down ← Gᵀm; gate/up ← (G W_d ⊙ coefficients)ᵀ u; o ← G_Yᵀ·context with
    /// G_Y = G + RMSNorm₂ᵀ(G_u); q/k/v through softmax, RoPE (transposed rotation) and RMSNorm₁'s
    /// output n₁.
    public func weightCotangent(_ a: BlockActivations, outputCotangent g: Tensor, projections: Set<LlamaProjection>) throws -> [LlamaProjection: Tensor] {
        guard g.shape == a.output.shape else {
            throw EquivalenceError.shapeMismatch(what: "output cotangent", expected: a.output.shape.dims, found: g.shape.dims)
        }
        var out: [LlamaProjection: Tensor] = [:]
        if projections.contains(.down) { out[.down] = matmul(g, a.hidden, transposeA: true) }
        let needGateUp = projections.contains(.gate) || projections.contains(.up)
        let needAttention = projections.contains { $0.isAttention }
        guard needGateUp || needAttention else { return out }
        let coef = mlpCoefficients(a)
        let gm = matmul(g, matrix(.down))                      // [T, d_ff]
        let gag = hadamard(gm, coef.gate), gau = hadamard(gm, coef.up)
        if projections.contains(.gate) { out[.gate] = matmul(gag, a.normedMLPInput, transposeA: true) }
        if projections.contains(.up) { out[.up] = matmul(gau, a.normedMLPInput, transposeA: true) }
        guard needAttention else { return out }
        var gu = matmul(gag, matrix(.gate))
        accumulate(&gu, matmul(gau, matrix(.up)))
        var gy = g
        accumulate(&gy, RMSNorm.backward(a.mlpInput, inverseRMS: a.inverseRMS2, gain: weights.postAttentionNorm, gy: gu))
        if projections.contains(.o) { out[.o] = matmul(gy, a.attentionContext, transposeA: true) }
        let wantQKV = projections.contains(.q) || projections.contains(.k) || projections.contains(.v)
        guard wantQKV else { return out }

        let heads = config.numAttentionHeads, kvHeads = config.numKeyValueHeads
        let gctx = matmul(gy, matrix(.o))                      // [T, H·hd]
        var (gq, gk, gv) = CausalAttention.backward(queries: a.queries, keys: a.keys, values: a.values,
                                                    probabilities: a.probabilities, gradient: gctx, heads: heads, kvHeads: kvHeads)
        // RoPE is a rotation: its adjoint rotates by the opposite angle.
        let (cosT, sinT) = rope.tables(positions: a.positions)
        rope.rotate(&gq, heads: heads, cos: cosT, sin: sinT, backward: true)
        rope.rotate(&gk, heads: kvHeads, cos: cosT, sin: sinT, backward: true)
        if projections.contains(.q) { out[.q] = matmul(gq, a.normedInput, transposeA: true) }
        if projections.contains(.k) { out[.k] = matmul(gk, a.normedInput, transposeA: true) }
        if projections.contains(.v) { out[.v] = matmul(gv, a.normedInput, transposeA: true) }
        return out
    }
}
