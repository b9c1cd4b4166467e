#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// The scalar a training step minimises, per sequence of T tokens: a mean over the predicted
/// positions (rows 0..<T−1 of the logits, row t predicting token t+1), in nats.
public enum TrainingObjective: Sendable {
    /// KL(p_ref ‖ p_model) per position; the reference's log-probabilities `[T, vocab]` (or at
    /// least `[T−1, vocab]`) row-major, e.g. from `logSoftmaxRows` of the
    /// fine-tuned model's logits.
    case kl(referenceLogProbs: Tensor)
    /// Next-token cross-entropy −log p_model(token[t+1]).
    case crossEntropy
}

/// A loss value and the gradients of every trainable adapter parameter.
public struct SteeringGradients: Sendable {
    /// The loss (mean over all predicted positions of the batch).
    public var loss: Double
    /// Predicted positions the mean ran over.
    public var positions: Int
    /// ∂loss/∂parameter, shaped as the adapter's layers: `down` and `up` `[d, r]`, `bias` `[d]`
    /// (present exactly where the adapter has them).
    public var layers: [Int: SteeringLayer]
    /// ∂loss/∂(LoRA factors) for the trainable LoRA passed in, per layer and projection: `a`
    /// `[r, in]`, `b` `[out, r]` (`scale` copied from the LoRA, not a gradient); empty without one.
    public var lora: [Int: [LlamaProjection: LoRAFactors]] = [:]
}

/// Reverse-mode differentiation of a frozen Llama model's loss with respect to post-block
/// steering adapters (site `blockOutput`, Δh = U·φ(Dᵀh) + b, row form φ(h·D)·Uᵀ + b, times the
/// adapter's `scale`).
///
/// One sequence at a time, all its tokens batched in each gemm: a forward pass records a tape
/// (block inputs, normalisations, rotated q/k, v, attention probabilities per head, MLP
/// pre-activations, pre-steer block outputs), then the backward pass runs lm_head (or the tied
/// embedding), the final RMSNorm and every block (SwiGLU MLP, RMSNorm₂, o_proj, causal GQA
/// softmax attention with RoPE, RMSNorm₁) down to the residual stream, accumulating the
/// adapters' gradients on the way. The base weights are read in place, never copied. Memory:
/// the tape of one sequence (≈ T·(8d + 4·d_ff) + heads·T² floats per layer).
public struct SteeringBackprop: Sendable {
    /// The frozen model (without adapters).
    public let model: LlamaModel

    /// Wraps `model`. Adapters it carries are not supported (merge LoRAs into the weights first;
    /// pass steering as the trained adapter).
    /// - Throws: `RuntimeError.unsupportedFeature` when the model carries adapters.
    public init(model: LlamaModel) throws {
        guard model.loraAdapters.isEmpty, model.steeringAdapters.isEmpty else {
            throw RuntimeError.unsupportedFeature("backpropagation through a model that carries adapters", source: "SteeringBackprop")
        }
        self.model = model
    }

    /// Loss and adapter gradients for a batch: the mean over all predicted positions of all
    /// sequences (each run from position 0). `objectives[i]` belongs to `sequences[i]`.
    /// - Throws: `RuntimeError.invalidArgument` for a site other than `blockOutput`, a sequence
    ///   shorter than 2 tokens, or reference log-probs of the wrong shape;
    ///   `.tokenOutOfRange`; `.adapterMismatch` from the adapter's validation.
    ///
    /// `lora` (optional) is a trainable LoRA applied unmerged inside the projections
    /// (y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ); its A/B gradients come back in `SteeringGradients.lora`.
    public func lossAndGradients(sequences: [[Int]], objectives: [TrainingObjective],
                                 adapter: SteeringAdapter, lora: LoRAWeights? = nil,
                                 computeGradients: Bool = true) throws -> SteeringGradients {
        guard sequences.count == objectives.count else {
            throw RuntimeError.invalidArgument("lossAndGradients: \(sequences.count) sequences, \(objectives.count) objectives")
        }
        guard adapter.site == .blockOutput else {
            throw RuntimeError.invalidArgument("lossAndGradients: only post-block (block_output) adapters are trainable, got \(adapter.site)")
        }
        try adapter.validate(for: model.config, name: "trained adapter")
        let positions = sequences.reduce(0) { $0 + max($1.count - 1, 0) }
        guard positions > 0, sequences.allSatisfy({ $0.count >= 2 }) else {
            throw RuntimeError.invalidArgument("lossAndGradients: every sequence needs at least 2 tokens")
        }
        var grads: [Int: SteeringLayer] = [:]
        for (l, s) in adapter.layers {
            grads[l] = SteeringLayer(down: s.down.map { Tensor(shape: $0.shape) }, up: s.up.map { Tensor(shape: $0.shape) },
                                     bias: s.bias.map { Tensor(shape: $0.shape) })
        }
        var loraGrads: [Int: [LlamaProjection: LoRAFactors]] = [:]
        if let lora {
            try lora.validate(for: model.config)
            for (l, modules) in lora.layers {
                for (p, f) in modules where f.rank > 0 {
                    loraGrads[l, default: [:]][p] = LoRAFactors(a: Tensor(shape: f.a.shape), b: Tensor(shape: f.b.shape), scale: f.scale)
                }
            }
        }
        var loss = 0.0
        for (tokens, objective) in zip(sequences, objectives) {
            loss += try run(tokens: tokens, objective: objective, adapter: adapter, lora: lora,
                            weight: 1 / Float(positions), backward: computeGradients, gradients: &grads, loraGradients: &loraGrads)
        }
        return SteeringGradients(loss: loss / Double(positions), positions: positions, layers: grads, lora: loraGrads)
    }

    // MARK: - One sequence

    private struct LayerTape {
        var h, r1, xn1, q, k, v, probs, attn, y, r2, u, ag, au, m, z: UnsafeMutablePointer<Float>
        var steerPre: UnsafeMutablePointer<Float>?
    }

    /// Forward with tape, loss (sum over positions, times `weight`), and if `gradients` is
    /// given, the backward pass accumulating `weight ·` ∂(sum)/∂θ into it. Returns the
    /// unweighted sum of per-position losses.
    private func run(tokens: [Int], objective: TrainingObjective, adapter: SteeringAdapter, lora: LoRAWeights?, weight: Float,
                     backward: Bool, gradients: inout [Int: SteeringLayer],
                     loraGradients: inout [Int: [LlamaProjection: LoRAFactors]]) throws -> Double {
        let c = model.config, w = model.weights
        let T = tokens.count, d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let qw = H * hd, kvw = KV * hd, ff = c.intermediateSize, V = c.vocabSize, L = c.numHiddenLayers
        let group = H / KV
        let attnScale = 1 / Float(hd).squareRoot()
        for (i, t) in tokens.enumerated() where t < 0 || t >= V {
            throw RuntimeError.tokenOutOfRange(token: t, position: i, vocabSize: V)
        }
        if case let .kl(ref) = objective {
            guard ref.rank == 2, ref.columns == V, ref.rows >= T - 1 else {
                throw RuntimeError.invalidArgument("reference log-probs \(ref.shape) do not cover [\(T - 1), \(V)]")
            }
        }
        let arena = BackpropArena()
        let act: SteeringActivation = adapter.activation
        let sc = adapter.scale
        let (cosT, sinT) = model.rotary.tables(positions: 0, count: T)
        let maxRank = lora?.maxRank ?? 0
        let scratch = arena.make(T * max(maxRank, 1))
        func factors(_ l: Int, _ p: LlamaProjection) -> [LoRAFactors] {
            guard let f = lora?.layers[l]?[p], f.rank > 0 else { return [] }
            return [f]
        }
        /// LoRA backward for y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ: gB += s·gyᵀ·(x·Aᵀ), gA += s·(gy·B)ᵀ·x,
        /// gx += s·(gy·B)·A. x `[T, in]`, gy `[T, out]` (row stride `ldg`), gx `[T, in]`.
        func loraBackward(_ l: Int, _ p: LlamaProjection, x: UnsafePointer<Float>, gy: UnsafePointer<Float>, ldg: Int,
                          gx: UnsafeMutablePointer<Float>) {
            guard let f = lora?.layers[l]?[p], f.rank > 0, var gf = loraGradients[l]?[p] else { return }
            let r = f.rank, nIn = f.a.shape[1], nOut = f.b.shape[0], s = f.scale
            let xa = arena.make(T * r), gya = arena.make(T * r)
            f.a.withUnsafeBufferPointer { ap in
                f.b.withUnsafeBufferPointer { bp in
                    BLAS.sgemm(transposeB: true, m: T, n: r, k: nIn, a: x, lda: nIn, b: ap.baseAddress!, ldb: nIn, c: xa, ldc: r)
                    BLAS.sgemm(m: T, n: r, k: nOut, a: gy, lda: ldg, b: bp.baseAddress!, ldb: r, c: gya, ldc: r)
                    gf.b.withUnsafeMutableBufferPointer { gb in
                        BLAS.sgemm(transposeA: true, m: nOut, n: r, k: T, alpha: s, a: gy, lda: ldg, b: xa, ldb: r,
                                   beta: 1, c: gb.baseAddress!, ldc: r)
                    }
                    gf.a.withUnsafeMutableBufferPointer { ga in
                        BLAS.sgemm(transposeA: true, m: r, n: nIn, k: T, alpha: s, a: gya, lda: r, b: x, ldb: nIn,
                                   beta: 1, c: ga.baseAddress!, ldc: nIn)
                    }
                    BLAS.sgemm(m: T, n: nIn, k: r, alpha: s, a: gya, lda: r, b: ap.baseAddress!, ldb: nIn, beta: 1, c: gx, ldc: nIn)
                }
            }
            loraGradients[l]![p] = gf
        }

        // Residual stream.
        let x = arena.make(T * d)
        for (t, id) in tokens.enumerated() { w.embedding.copyRow(id, into: x + t * d) }
        var tapes: [LayerTape] = []
        tapes.reserveCapacity(L)
        for l in 0..<L {
            let lw = w.layers[l]
            let tp = LayerTape(
                h: arena.make(T * d), r1: arena.make(T), xn1: arena.make(T * d), q: arena.make(T * qw),
                k: arena.make(T * kvw), v: arena.make(T * kvw), probs: arena.make(H * T * T),
                attn: arena.make(T * qw), y: arena.make(T * d), r2: arena.make(T), u: arena.make(T * d),
                ag: arena.make(T * ff), au: arena.make(T * ff), m: arena.make(T * ff), z: arena.make(T * d),
                steerPre: nil)
            var tape = tp
            tape.h.update(from: x, count: T * d)
            lw.inputNorm.withUnsafeBufferPointer {
                RMSNorm.forward(x, rows: T, d: d, gain: $0.baseAddress!, eps: c.rmsNormEps, out: tape.xn1, inverseRMS: tape.r1)
            }
            Kernels.linear(tape.xn1, rows: T, weight: lw.q, bias: lw.qBias, loras: factors(l, .q), out: tape.q, ldo: qw, scratch: scratch, useBLAS: true)
            Kernels.linear(tape.xn1, rows: T, weight: lw.k, bias: lw.kBias, loras: factors(l, .k), out: tape.k, ldo: kvw, scratch: scratch, useBLAS: true)
            Kernels.linear(tape.xn1, rows: T, weight: lw.v, bias: lw.vBias, loras: factors(l, .v), out: tape.v, ldo: kvw, scratch: scratch, useBLAS: true)
            cosT.withUnsafeBufferPointer { cp in
                sinT.withUnsafeBufferPointer { sp in
                    model.rotary.apply(tape.q, rows: T, heads: H, rowStride: qw, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    model.rotary.apply(tape.k, rows: T, heads: KV, rowStride: kvw, cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
            for hh in 0..<H {
                let g = hh / group
                let p = tape.probs + hh * T * T
                BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, alpha: attnScale, a: tape.q + hh * hd, lda: qw,
                           b: tape.k + g * hd, ldb: kvw, c: p, ldc: T)
                for i in 0..<T { Kernels.causalSoftmax(p + i * T, visible: i + 1, width: T) }
                BLAS.sgemm(m: T, n: hd, k: T, a: p, lda: T, b: tape.v + g * hd, ldb: kvw, c: tape.attn + hh * hd, ldc: qw)
            }
            let o = arena.make(T * d)
            Kernels.linear(tape.attn, rows: T, weight: lw.o, bias: lw.oBias, loras: factors(l, .o), out: o, ldo: d, scratch: scratch, useBLAS: true)
            Kernels.add(o, into: x, count: T * d)
            tape.y.update(from: x, count: T * d)
            lw.postAttentionNorm.withUnsafeBufferPointer {
                RMSNorm.forward(x, rows: T, d: d, gain: $0.baseAddress!, eps: c.rmsNormEps, out: tape.u, inverseRMS: tape.r2)
            }
            Kernels.linear(tape.u, rows: T, weight: lw.gate, bias: nil, loras: factors(l, .gate), out: tape.ag, ldo: ff, scratch: scratch, useBLAS: true)
            Kernels.linear(tape.u, rows: T, weight: lw.up, bias: nil, loras: factors(l, .up), out: tape.au, ldo: ff, scratch: scratch, useBLAS: true)
            model.blocks[l].activation.forward(gate: tape.ag, up: tape.au, out: tape.m, count: T * ff)
            Kernels.linear(tape.m, rows: T, weight: lw.down, bias: nil, loras: factors(l, .down), out: o, ldo: d, scratch: scratch, useBLAS: true)
            Kernels.add(o, into: x, count: T * d)
            tape.z.update(from: x, count: T * d)
            if let s = adapter.layers[l] {
                // Δ = scale·(φ(z·D)·Uᵀ + b), computed from the pre-steer z.
                if let down = s.down, let up = s.up {
                    let r = down.shape[1]
                    let pre = arena.make(T * r), phi = arena.make(T * r)
                    down.withUnsafeBufferPointer { dp in
                        BLAS.sgemm(m: T, n: r, k: d, a: tape.z, lda: d, b: dp.baseAddress!, ldb: r, c: pre, ldc: r)
                    }
                    for i in 0..<(T * r) { phi[i] = act == .silu ? pre[i] * GatedActivation.sigmoid(pre[i]) : pre[i] }
                    up.withUnsafeBufferPointer { upp in
                        BLAS.sgemm(transposeB: true, m: T, n: d, k: r, alpha: sc, a: phi, lda: r, b: upp.baseAddress!, ldb: r,
                                   beta: 1, c: x, ldc: d)
                    }
                    tape.steerPre = pre
                }
                if let b = s.bias {
                    b.withUnsafeBufferPointer { bp in
                        for t in 0..<T { for j in 0..<d { x[t * d + j] += sc * bp[j] } }
                    }
                }
            }
            tapes.append(tape)
        }

        // Final norm, logits, loss and its gradient.
        let rF = arena.make(T), xnF = arena.make(T * d)
        w.finalNorm.withUnsafeBufferPointer {
            RMSNorm.forward(x, rows: T, d: d, gain: $0.baseAddress!, eps: c.rmsNormEps, out: xnF, inverseRMS: rF)
        }
        let head = w.outputProjection
        let logits = arena.make(T * V)
        Kernels.linear(xnF, rows: T, weight: head, bias: nil, loras: [], out: logits, ldo: V, scratch: scratch, useBLAS: true)
        let gLogits = logits   // overwritten row by row with the gradient
        var total = 0.0
        // Per row: e_j = exp(z_j − max) once (f32), lse in Double; q_j = e_j / Σe. The loss sums
        // in Double; the gradient (q − p_ref)·weight is formed in f32.
        // e^x through the vectorised kernel (VectorMath.exp, within 2 ulp of expf): the V-wide
        // exponentials of every row are most of this loop's cost.
        var e = [Float](repeating: 0, count: V), p = [Float](repeating: 0, count: V)
        for t in 0..<(T - 1) {
            let row = logits + t * V
            var mx = -Float.infinity
            for j in 0..<V { mx = max(mx, row[j]) }
            var sum = 0.0
            e.withUnsafeMutableBufferPointer { eb in
                let ep = eb.baseAddress!
                for j in 0..<V { ep[j] = row[j] - mx }
                VectorMath.exp(ep, into: ep, count: V)
                for j in 0..<V { sum += Double(ep[j]) }
            }
            let lse = Double(mx) + log(sum)
            let invSum = Float(1 / sum)
            switch objective {
            case let .kl(ref):
                ref.withUnsafeBufferPointer { rp in
                    var kl = 0.0
                    let r = rp.baseAddress! + t * V
                    p.withUnsafeMutableBufferPointer { VectorMath.exp(r, into: $0.baseAddress!, count: V) }
                    for j in 0..<V {
                        let lr = r[j], pr = p[j]
                        kl += Double(pr) * (Double(lr) - (Double(row[j]) - lse))
                        row[j] = weight * (e[j] * invSum - pr)
                    }
                    total += kl
                }
            case .crossEntropy:
                let target = tokens[t + 1]
                total -= Double(row[target]) - lse
                for j in 0..<V { row[j] = weight * (e[j] * invSum - (j == target ? 1 : 0)) }
            }
        }
        for j in 0..<V { logits[(T - 1) * V + j] = 0 }
        guard backward else { return total }

        // Backward: lm_head, final norm.
        let gxn = arena.make(T * d)
        head.multiplyTransposed(gLogits, tokens: T, ldg: V, into: gxn, ldo: d)
        var g = arena.make(T * d)
        w.finalNorm.withUnsafeBufferPointer {
            RMSNorm.backward(x, gy: gxn, rows: T, d: d, gain: $0.baseAddress!, inverseRMS: rF, gx: g)
        }
        let gm = arena.make(T * ff), gag = arena.make(T * ff), gau = arena.make(T * ff)
        let gu = arena.make(T * d), gY = arena.make(T * d), gAttn = arena.make(T * qw)
        let gq = arena.make(T * qw), gk = arena.make(T * kvw), gv = arena.make(T * kvw)
        let gP = arena.make(T * T), gxn1 = arena.make(T * d)
        var gNext = arena.make(T * d)

        for l in stride(from: L - 1, through: 0, by: -1) {
            let lw = w.layers[l], tape = tapes[l]
            // Post-block adapter: g holds ∂/∂(steered Z).
            if let s = adapter.layers[l] {
                var gl = gradients[l]!
                if s.bias != nil {
                    gl.bias!.withUnsafeMutableBufferPointer { gb in
                        for t in 0..<T { for j in 0..<d { gb[j] += sc * g[t * d + j] } }
                    }
                }
                if let down = s.down, let up = s.up, let pre = tape.steerPre {
                    let r = down.shape[1]
                    let phi = arena.make(T * r), gphi = arena.make(T * r)
                    for i in 0..<(T * r) { phi[i] = act == .silu ? pre[i] * GatedActivation.sigmoid(pre[i]) : pre[i] }
                    // gU [d, r] += sc · gᵀ · φ ; gφ [T, r] = sc · g · U.
                    gl.up!.withUnsafeMutableBufferPointer { gup in
                        BLAS.sgemm(transposeA: true, m: d, n: r, k: T, alpha: sc, a: g, lda: d, b: phi, ldb: r,
                                   beta: 1, c: gup.baseAddress!, ldc: r)
                    }
                    up.withUnsafeBufferPointer { upp in
                        BLAS.sgemm(m: T, n: r, k: d, alpha: sc, a: g, lda: d, b: upp.baseAddress!, ldb: r, c: gphi, ldc: r)
                    }
                    if act == .silu {
                        for i in 0..<(T * r) {
                            let sg = GatedActivation.sigmoid(pre[i])
                            gphi[i] *= sg * (1 + pre[i] * (1 - sg))
                        }
                    }
                    // gD [d, r] += zᵀ · g_pre ; g += g_pre · Dᵀ.
                    gl.down!.withUnsafeMutableBufferPointer { gdp in
                        BLAS.sgemm(transposeA: true, m: d, n: r, k: T, a: tape.z, lda: d, b: gphi, ldb: r,
                                   beta: 1, c: gdp.baseAddress!, ldc: r)
                    }
                    down.withUnsafeBufferPointer { dp in
                        BLAS.sgemm(transposeB: true, m: T, n: d, k: r, a: gphi, lda: r, b: dp.baseAddress!, ldb: r,
                                   beta: 1, c: g, ldc: d)
                    }
                }
                gradients[l] = gl
            }
            // MLP: Z = Y + m·W_dᵀ.
            lw.down.multiplyTransposed(g, tokens: T, ldg: d, into: gm, ldo: ff)
            loraBackward(l, .down, x: tape.m, gy: g, ldg: d, gx: gm)
            model.blocks[l].activation.backward(gate: tape.ag, up: tape.au, gradient: gm, gateGradient: gag,
                                                upGradient: gau, count: T * ff)
            lw.gate.multiplyTransposed(gag, tokens: T, ldg: ff, into: gu, ldo: d)
            lw.up.multiplyTransposed(gau, tokens: T, ldg: ff, into: gu, ldo: d, accumulate: true)
            loraBackward(l, .gate, x: tape.u, gy: gag, ldg: ff, gx: gu)
            loraBackward(l, .up, x: tape.u, gy: gau, ldg: ff, gx: gu)
            gY.update(from: g, count: T * d)
            lw.postAttentionNorm.withUnsafeBufferPointer {
                RMSNorm.backward(tape.y, gy: gu, rows: T, d: d, gain: $0.baseAddress!, inverseRMS: tape.r2, gx: gY)
            }
            // Attention: Y = h + attn·W_oᵀ.
            lw.o.multiplyTransposed(gY, tokens: T, ldg: d, into: gAttn, ldo: qw)
            loraBackward(l, .o, x: tape.attn, gy: gY, ldg: d, gx: gAttn)
            gk.initialize(repeating: 0, count: T * kvw)
            gv.initialize(repeating: 0, count: T * kvw)
            for hh in 0..<H {
                let gr = hh / group
                let p = tape.probs + hh * T * T
                // gP = g_out · Vᵀ ; gV += Pᵀ · g_out.
                BLAS.sgemm(transposeB: true, m: T, n: T, k: hd, a: gAttn + hh * hd, lda: qw, b: tape.v + gr * hd, ldb: kvw,
                           c: gP, ldc: T)
                BLAS.sgemm(transposeA: true, m: T, n: hd, k: T, a: p, lda: T, b: gAttn + hh * hd, ldb: qw,
                           beta: 1, c: gv + gr * hd, ldc: kvw)
                // Softmax backward (masked entries have P = 0): gS = P ⊙ (gP − Σⱼ gP·P).
                causalSoftmaxJacobianProduct(probabilities: p, gP, size: T)
                // S = scale·Q·Kᵀ: gQ = scale·gS·K ; gK += scale·gSᵀ·Q.
                BLAS.sgemm(m: T, n: hd, k: T, alpha: attnScale, a: gP, lda: T, b: tape.k + gr * hd, ldb: kvw,
                           c: gq + hh * hd, ldc: qw)
                BLAS.sgemm(transposeA: true, m: T, n: hd, k: T, alpha: attnScale, a: gP, lda: T, b: tape.q + hh * hd, ldb: qw,
                           beta: 1, c: gk + gr * hd, ldc: kvw)
            }
            // RoPE backward: rotate by −θ.
            cosT.withUnsafeBufferPointer { cp in
                sinT.withUnsafeBufferPointer { sp in
                    model.rotary.applyBackward(gq, rows: T, heads: H, rowStride: qw, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    model.rotary.applyBackward(gk, rows: T, heads: KV, rowStride: kvw, cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
            lw.q.multiplyTransposed(gq, tokens: T, ldg: qw, into: gxn1, ldo: d)
            lw.k.multiplyTransposed(gk, tokens: T, ldg: kvw, into: gxn1, ldo: d, accumulate: true)
            lw.v.multiplyTransposed(gv, tokens: T, ldg: kvw, into: gxn1, ldo: d, accumulate: true)
            loraBackward(l, .q, x: tape.xn1, gy: gq, ldg: qw, gx: gxn1)
            loraBackward(l, .k, x: tape.xn1, gy: gk, ldg: kvw, gx: gxn1)
            loraBackward(l, .v, x: tape.xn1, gy: gv, ldg: kvw, gx: gxn1)
            gNext.update(from: gY, count: T * d)
            lw.inputNorm.withUnsafeBufferPointer {
                RMSNorm.backward(tape.h, gy: gxn1, rows: T, d: d, gain: $0.baseAddress!, inverseRMS: tape.r1, gx: gNext)
            }
            swap(&g, &gNext)
        }
        return total
    }
}
