import Tensors
import CKernels

/// Causal grouped-query attention of the forward pass, head by head in the C kernel
/// (`steertool_causal_attention_head`), heads spread over threads.
///
/// BLAS would do each head as two small gemms (`[rows, hd]·Kᵀ` and `P·V`); at prefill lengths of
/// a few hundred tokens and in decoding those calls are dominated by BLAS's thread hand-offs, and
/// they compute the masked half of the scores. The kernel scores only the visible keys.
public enum CausalAttention {
    /// Attention for `rows` new queries at absolute positions `start..<start+rows` over
    /// `start+rows` keys/values.
    /// - q: `[rows, heads·hd]` (head h in columns h·hd..<(h+1)·hd); keys, values:
    ///   `[start+rows, kvHeads·hd]`, query head h reading kv head h / (heads / kvHeads);
    ///   out: `[rows, heads·hd]`. All row-major, rows `heads·hd` or `kvHeads·hd` floats apart.
    /// - Query i sees keys 0...start+i (with a sliding `window`, only the last `window` of them);
    ///   scores are scaled by `scale` (default 1/√hd) and softmaxed in f32 with the row maximum
    ///   subtracted.
    /// - `threads`: heads are dealt round-robin to this many threads (each head is computed the
    ///   same way on any thread, so the result does not depend on it); small problems stay on the
    ///   calling thread. `level` forces a kernel path (tests); nil takes the best this CPU has.
    public static func apply(q: UnsafePointer<Float>, rows: Int, start: Int,
                             keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                             heads: Int, kvHeads: Int, headDim hd: Int, scale: Float? = nil, window: Int? = nil,
                             out: UnsafeMutablePointer<Float>, threads: Int = 1, level: CPUKernelLevel? = nil) {
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && rows >= 0 && start >= 0,
                     "attention: \(heads) heads over \(kvHeads) kv heads, \(rows) rows after \(start)")
        guard rows > 0, hd > 0 else { return }
        let total = start + rows
        let qWidth = heads * hd, kvWidth = kvHeads * hd, group = heads / kvHeads
        let scale = scale ?? 1 / Float(hd).squareRoot(), window = max(window ?? 0, 0)
        let path = (level ?? .best).cValue
        // The visible (query, key) pairs times hd: below ~64k multiply-adds a hand-off costs more.
        let work = heads * hd * rows * (start + (rows + 1) / 2)
        let chunks = work < 1 << 16 ? 1 : max(1, min(threads, heads))
        let qAddress = UInt(bitPattern: q), kAddress = UInt(bitPattern: keys)
        let vAddress = UInt(bitPattern: values), oAddress = UInt(bitPattern: out)
        let run: @Sendable (Int) -> Void = { c in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * total) { scores in
                let q = UnsafePointer<Float>(bitPattern: qAddress)!, keys = UnsafePointer<Float>(bitPattern: kAddress)!
                let values = UnsafePointer<Float>(bitPattern: vAddress)!, out = UnsafeMutablePointer<Float>(bitPattern: oAddress)!
                for h in stride(from: c, to: heads, by: chunks) {
                    let g = h / group
                    steertool_causal_attention_head(q + h * hd, qWidth, keys + g * hd, values + g * hd, kvWidth, hd,
                                                    rows, start, window, scale, scores.baseAddress!, out + h * hd, qWidth, path)
                }
            }
        }
        WorkerPool.run(count: chunks, threads: chunks, run)
    }
}

extension CausalAttention {
    /// Head `head`'s probabilities for a sequence of `rows` tokens from position 0 into `p`
    /// `[rows, rows]`: S = scale·Q_h·K_gᵀ (sgemm, scale 1/√hd unless given), then each row's causal
    /// softmax over its visible keys (`Kernels.causalSoftmax`: maximum subtracted, zero above the
    /// diagonal and, with a sliding `window`, before the row's last `window` keys). q
    /// `[rows, heads·hd]`, keys `[rows, kvHeads·hd]`, query head h reading kv head h / (heads / kvHeads).
    static func probabilities(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, rows T: Int, head h: Int,
                              heads: Int, kvHeads: Int, headDim hd: Int, scale: Float? = nil, window: Int? = nil,
                              into p: UnsafeMutablePointer<Float>) {
        let qw = heads * hd, kvw = kvHeads * hd, g = h / (heads / kvHeads)
        BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, alpha: scale ?? 1 / Float(hd).squareRoot(), a: q + h * hd, lda: qw,
                   b: keys + g * hd, ldb: kvw, c: p, ldc: T)
        for i in 0..<T {
            let first = window.map { max(0, i + 1 - $0) } ?? 0
            (p + i * T).update(repeating: 0, count: first)
            Kernels.causalSoftmax(p + i * T + first, visible: i + 1 - first, width: T - first)
        }
    }

    /// Every head's probabilities `[heads·T, T]` (rows h·T..<(h+1)·T for head h) for a sequence
    /// from position 0: queries `[T, heads·hd]` and keys `[T, kvHeads·hd]` after RoPE.
    public static func probabilities(queries q: Tensor, keys k: Tensor, heads: Int, kvHeads: Int,
                                     scale: Float? = nil, window: Int? = nil) -> Tensor {
        let T = q.rows, hd = q.columns / heads
        var out = [Tensor(shape: [heads * T, T])]
        Tensor.withPointers([q, k], writing: &out) { p, o in
            for h in 0..<heads {
                probabilities(q: p[0], keys: p[1], rows: T, head: h, heads: heads, kvHeads: kvHeads, headDim: hd,
                              scale: scale, window: window, into: o[0] + h * T * T)
            }
        }
        return out[0]
    }

    /// The tangent of the heads' outputs `[T, heads·hd]` along δq, δk (after RoPE) and δv (each
    /// optional), at the forward's q, k, v and probabilities (`probabilities(queries:keys:heads:kvHeads:)`):
    /// δS = scale·(δQ_h·K_gᵀ + Q_h·δK_gᵀ), δP = P ⊙ (δS − rowsum(P ⊙ δS)), δO_h = δP·V_g + P·δV_g.
    public static func tangent(queries q: Tensor, keys k: Tensor, values v: Tensor, probabilities: Tensor,
                               dq: Tensor?, dk: Tensor?, dv: Tensor?, heads: Int, kvHeads: Int, scale: Float? = nil) -> Tensor {
        let T = q.rows, hd = q.columns / heads, qw = heads * hd, kvw = kvHeads * hd, group = heads / kvHeads
        let scale = scale ?? 1 / Float(hd).squareRoot()
        var out = [Tensor(shape: [T, qw]), Tensor(shape: [T, T])]   // the heads' tangent; δS scratch
        guard dq != nil || dk != nil || dv != nil else { return out[0] }
        // An absent δq or δk is zero; an absent δv skips its product.
        let inputs = [q, k, v, probabilities, dq ?? Tensor(shape: [T, qw]), dk ?? Tensor(shape: [T, kvw]), dv ?? Tensor(shape: [0])]
        Tensor.withPointers(inputs, writing: &out) { p, o in
            let (pq, pk, pv, pp, pdq, pdk, pdv, dS) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], o[1])
            for h in 0..<heads {
                let g = h / group, ph = pp + h * T * T, oh = o[0] + h * hd
                if dq != nil || dk != nil {
                    BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, alpha: scale, a: pdq + h * hd, lda: qw,
                               b: pk + g * hd, ldb: kvw, c: dS, ldc: T)
                    BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, alpha: scale, a: pq + h * hd, lda: qw,
                               b: pdk + g * hd, ldb: kvw, beta: 1, c: dS, ldc: T)
                    causalSoftmaxJacobianProduct(probabilities: ph, dS, size: T)
                    BLAS.sgemm(m: T, n: hd, k: T, a: dS, lda: T, b: pv + g * hd, ldb: kvw, c: oh, ldc: qw)
                }
                if dv != nil {
                    BLAS.sgemm(m: T, n: hd, k: T, a: ph, lda: T, b: pdv + g * hd, ldb: kvw, beta: 1, c: oh, ldc: qw)
                }
            }
        }
        return out[0]
    }

    /// The backward of `apply` for `rows` queries at positions 0..<rows (a sequence run from
    /// position 0, as in training): from gOut = ∂L/∂out `[rows, heads·hd]`, writes ∂L/∂q into `gq`
    /// `[rows, heads·hd]` and ∂L/∂k, ∂L/∂v into `gk`, `gv` `[rows, kvHeads·hd]` (overwritten; a kv
    /// head sums the gradients of its query heads). q, keys and values are the forward's inputs
    /// (after RoPE). Each head's probabilities come from `saved` `[heads·rows, rows]` when given,
    /// else are recomputed (`probabilities`, with the forward's `scale` and `window`), so the
    /// forward need save nothing beyond its inputs; `scratch` holds 2·rows² floats. Per head: gP = gO·Vᵀ, gV += Pᵀ·gO,
    /// gS = P ⊙ (gP − rowsum(gP ⊙ P)), gQ = scale·gS·K, gK += scale·gSᵀ·Q.
    static func backward(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                         probabilities saved: UnsafePointer<Float>? = nil,
                         gradient gOut: UnsafePointer<Float>, rows T: Int, heads: Int, kvHeads: Int, headDim hd: Int,
                         scale: Float? = nil, window: Int? = nil,
                         gq: UnsafeMutablePointer<Float>, gk: UnsafeMutablePointer<Float>, gv: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        let qw = heads * hd, kvw = kvHeads * hd, group = heads / kvHeads
        let scale = scale ?? 1 / Float(hd).squareRoot()
        gk.initialize(repeating: 0, count: T * kvw)
        gv.initialize(repeating: 0, count: T * kvw)
        let gP = scratch + T * T
        for h in 0..<heads {
            let g = h / group
            let p: UnsafePointer<Float>
            if let saved {
                p = saved + h * T * T
            } else {
                probabilities(q: q, keys: keys, rows: T, head: h, heads: heads, kvHeads: kvHeads, headDim: hd,
                              scale: scale, window: window, into: scratch)
                p = UnsafePointer(scratch)
            }
            BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, a: gOut + h * hd, lda: qw, b: values + g * hd, ldb: kvw,
                       c: gP, ldc: T)
            BLAS.sgemm(transposeA: true, m: T, n: hd, k: T, a: p, lda: T, b: gOut + h * hd, ldb: qw,
                       beta: 1, c: gv + g * hd, ldc: kvw)
            causalSoftmaxJacobianProduct(probabilities: p, gP, size: T)
            BLAS.sgemm(m: T, n: hd, k: T, alpha: scale, a: gP, lda: T, b: keys + g * hd, ldb: kvw,
                       c: gq + h * hd, ldc: qw)
            BLAS.sgemm(transposeA: true, m: T, n: hd, k: T, alpha: scale, a: gP, lda: T, b: q + h * hd, ldb: qw,
                       beta: 1, c: gk + g * hd, ldc: kvw)
        }
    }

    /// `backward` on tensors with the forward's probabilities (`probabilities(queries:keys:heads:kvHeads:)`):
    /// (∂L/∂q, ∂L/∂k, ∂L/∂v) from ∂L/∂output.
    public static func backward(queries q: Tensor, keys k: Tensor, values v: Tensor, probabilities: Tensor,
                                gradient g: Tensor, heads: Int, kvHeads: Int, scale: Float? = nil) -> (q: Tensor, k: Tensor, v: Tensor) {
        let T = q.rows, hd = q.columns / heads
        var out = [Tensor(shape: q.shape), Tensor(shape: k.shape), Tensor(shape: v.shape), Tensor(shape: [2 * T, T])]
        Tensor.withPointers([q, k, v, probabilities, g], writing: &out) { p, o in
            backward(q: p[0], keys: p[1], values: p[2], probabilities: p[3], gradient: p[4], rows: T, heads: heads,
                     kvHeads: kvHeads, headDim: hd, scale: scale, gq: o[0], gk: o[1], gv: o[2], scratch: o[3])
        }
        return (out[0], out[1], out[2])
    }
}
