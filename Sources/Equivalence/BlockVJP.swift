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
        accumulate(&gy, rmsNormAdjoint(a.mlpInput, rho: a.inverseRMS2, gain: weights.postAttentionNorm, grad: gu))
        if projections.contains(.o) { out[.o] = matmul(gy, a.attentionContext, transposeA: true) }
        let wantQKV = projections.contains(.q) || projections.contains(.k) || projections.contains(.v)
        guard wantQKV else { return out }

        let t = a.input.rows
        let heads = config.numAttentionHeads, kvHeads = config.numKeyValueHeads, hd = config.headDim
        let qw = heads * hd, kw = kvHeads * hd, group = heads / kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let gctx = matmul(gy, matrix(.o))                      // [T, H·hd]
        var gq = Tensor(shape: [t, qw]), gk = Tensor(shape: [t, kw]), gv = Tensor(shape: [t, kw])
        var gp = [Float](repeating: 0, count: t * t)
        gctx.withUnsafeBufferPointer { pg in a.probabilities.withUnsafeBufferPointer { pp in
            a.queries.withUnsafeBufferPointer { pq in a.keys.withUnsafeBufferPointer { pk in a.values.withUnsafeBufferPointer { pv in
                gq.withUnsafeMutableBufferPointer { oq in gk.withUnsafeMutableBufferPointer { ok in gv.withUnsafeMutableBufferPointer { ov in
                    gp.withUnsafeMutableBufferPointer { ps in
                        for head in 0..<heads {
                            let gIdx = head / group
                            let p = pp.baseAddress! + head * t * t
                            let go = pg.baseAddress! + head * hd
                            // G_V_g += P_hᵀ G_O_h
                            BLAS.sgemm(transposeA: true, m: t, n: hd, k: t, a: p, lda: t, b: go, ldb: qw,
                                       beta: 1, c: ov.baseAddress! + gIdx * hd, ldc: kw)
                            // G_P = G_O_h V_gᵀ; G_S = P ⊙ (G_P − rowsum(P ⊙ G_P))
                            BLAS.sgemm(transposeB: true, m: t, n: t, k: hd, a: go, lda: qw, b: pv.baseAddress! + gIdx * hd, ldb: kw,
                                       beta: 0, c: ps.baseAddress!, ldc: t)
                            causalSoftmaxJacobianProduct(probabilities: p, ps.baseAddress!, size: t)
                            // G_Q_h = scale G_S K_g; G_K_g += scale G_Sᵀ Q_h
                            BLAS.sgemm(m: t, n: hd, k: t, alpha: scale, a: ps.baseAddress!, lda: t, b: pk.baseAddress! + gIdx * hd, ldb: kw,
                                       beta: 0, c: oq.baseAddress! + head * hd, ldc: qw)
                            BLAS.sgemm(transposeA: true, m: t, n: hd, k: t, alpha: scale, a: ps.baseAddress!, lda: t,
                                       b: pq.baseAddress! + head * hd, ldb: qw, beta: 1, c: ok.baseAddress! + gIdx * hd, ldc: kw)
                        }
                    }
                } } }
            } } }
        } }
        // RoPE is a rotation: its adjoint rotates by the opposite angle.
        let (cosT, sinT) = rope.tables(positions: a.positions)
        let negSin = sinT.map { -$0 }
        rotateHalf(&gq, heads: heads, headDim: hd, cos: cosT, sin: negSin)
        rotateHalf(&gk, heads: kvHeads, headDim: hd, cos: cosT, sin: negSin)
        if projections.contains(.q) { out[.q] = matmul(gq, a.normedInput, transposeA: true) }
        if projections.contains(.k) { out[.k] = matmul(gk, a.normedInput, transposeA: true) }
        if projections.contains(.v) { out[.v] = matmul(gv, a.normedInput, transposeA: true) }
        return out
    }
}
