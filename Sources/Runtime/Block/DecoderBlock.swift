import Tensors

/// Scratch buffers of one forward call, allocated once per call and reused by every layer
/// (`[rows, width]` row-major each).
final class BlockBuffers {
    private let arena = FloatArena()
    let x, xn, q, attn, o, gate, up, lora, panels: UnsafeMutablePointer<Float>
    let rows: Int
    /// Whether `Kernels.linear` takes token panels for these rows (several rows, an AVX2 CPU).
    let packing: Bool
    /// Projections through sgemm (see `init`).
    let useBLAS: Bool

    /// `useBLAS`: the projections go to sgemm (no token panels), for a pass that makes BLAS calls
    /// of its own between them (training), where OpenBLAS's spinning threads would compete with
    /// the worker pool's.
    init(rows: Int, config c: LlamaConfig, maxLoRARank: Int, useBLAS: Bool = false) {
        self.rows = rows
        self.useBLAS = useBLAS
        packing = rows > 1 && TokenPanelGemm.preferred && !useBLAS
        let d = c.hiddenSize, qw = c.numAttentionHeads * c.headDim, ff = c.intermediateSize
        let alloc = arena.make
        x = alloc(rows * d); xn = alloc(rows * d); q = alloc(rows * qw); attn = alloc(rows * qw)
        o = alloc(rows * d); gate = alloc(rows * ff); up = alloc(rows * ff)
        lora = alloc(rows * maxLoRARank)
        panels = alloc(packing ? TokenPanelGemm.panelFloats(rows: rows, columns: max(d, qw, ff)) : 0)
    }

    /// `p` `[rows, columns]` packed into `panels` for the projections that read it (replacing
    /// what was packed before), or nil where `Kernels.linear` does not use token panels.
    func packed(_ p: UnsafePointer<Float>, columns: Int) -> PackedTokens? {
        guard packing else { return nil }
        return TokenPanelGemm.pack(p, rows: rows, columns: columns, ldx: columns, into: panels)
    }
}

/// One decoder layer, written once: pre-norm attention and gated MLP over the residual stream,
/// each operation a call of its own (`RMSNorm`, the projections through `Kernels.linear` with
/// LoRA unmerged, `RotaryEmbedding`, `CausalAttention`, `GatedActivation`, residual adds), the
/// hook sites between them. What differs between architectures comes from `description`.
public struct DecoderBlock: Sendable {
    /// What this layer computes.
    public let description: BlockDescription
    /// Its weights, matrices `[out, in]` in their storage format.
    public let weights: LlamaWeights.Layer
    /// LoRA factors applied unmerged inside the projections (several sum).
    public let loras: [LlamaProjection: [LoRAFactors]]

    /// A layer from its description, weights and unmerged LoRA factors.
    public init(description: BlockDescription, weights: LlamaWeights.Layer, loras: [LlamaProjection: [LoRAFactors]] = [:]) {
        self.description = description; self.weights = weights; self.loras = loras
    }

    /// Runs the layer on the `[rows, d]` residual in `buffers.x`, in place, for tokens at
    /// positions `start ..< start + rows`; their keys and values (after RoPE for the keys) are
    /// written into rows `start…` of `keys`/`values` `[capacity, kvHeads·hd]`, and attention reads
    /// rows `0 ..< start + rows` of them. `visit(site, activation)` runs at the five hook sites
    /// (block input, attention output, MLP input, MLP output, block output) on the `[rows, d]`
    /// activation, which it may change. The attention and MLP outputs are what the block adds to
    /// the residual stream: after their output norms where the layer has them (Gemma-3's
    /// `post_attention_layernorm` / `post_feedforward_layernorm`); the block output is the stream
    /// after the last residual add (the paper's post-block site). `rotation` holds RoPE's tables for those positions. With
    /// a `tape` (rows equal, `start` 0), what `backward` needs is saved into it.
    ///
    /// `sequences`, when given (with `start` 0), packs several sequences into the rows:
    /// their row ranges, in order and covering `0..<rows`; each starts at position 0 (`rotation`
    /// then holds the tables of positions 0..<longest) and attends only to its own rows, so
    /// every projection is one product over all of them.
    /// - Throws: what `visit` throws.
    func forward(buffers buf: BlockBuffers, rows T: Int, start: Int,
                 keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
                 rotation: RotaryTables, config c: LlamaConfig, tape: BlockTape? = nil, sequences: [Range<Int>]? = nil,
                 visit: (HookSiteKind, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let qWidth = H * hd, kvWidth = KV * hd, ff = c.intermediateSize
        let w = weights, eps = description.normEpsilon
        /// x·W_pᵀ (+ bias, + LoRA) for the rows in `x`, through `Kernels.linear` (`packed`: x as token panels).
        func project(_ p: LlamaProjection, _ x: UnsafePointer<Float>, packed: PackedTokens?,
                     into out: UnsafeMutablePointer<Float>, ldo: Int) {
            Kernels.linear(x, rows: T, weight: w[p], bias: w.bias(p), loras: loras[p] ?? [], out: out, ldo: ldo,
                           scratch: buf.lora, packed: packed, useBLAS: buf.useBLAS)
        }
        precondition(tape.map { $0.rows == T && start == 0 } ?? true, "DecoderBlock: a tape records a pass from position 0")
        let segments = sequences ?? [0..<T]
        precondition(sequences == nil || (start == 0 && segments.first?.lowerBound == 0 && segments.last?.upperBound == T
                                          && zip(segments, segments.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }),
                     "DecoderBlock: packed sequences \(segments) must tile 0..<\(T), from position 0")
        try visit(.blockInput, buf.x)
        tape?.blockInput.update(from: buf.x, count: T * d)

        w.inputNorm.withUnsafeBufferPointer {
            RMSNorm.forward(buf.x, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.xn, inverseRMS: tape?.inverseRMS1)
        }
        tape?.attentionNormed.update(from: buf.xn, count: T * d)
        var packed = buf.packed(buf.xn, columns: d)
        project(.q, buf.xn, packed: packed, into: buf.q, ldo: qWidth)
        project(.k, buf.xn, packed: packed, into: keys + start * kvWidth, ldo: kvWidth)
        project(.v, buf.xn, packed: packed, into: values + start * kvWidth, ldo: kvWidth)
        // Per-head q/k norms (Gemma-3): each head's hd values are one row of the norm, in place.
        if let qn = w.queryNorm, let kn = w.keyNorm {
            tape?.queriesProjected?.update(from: buf.q, count: T * qWidth)
            tape?.keysProjected?.update(from: keys + start * kvWidth, count: T * kvWidth)
            qn.withUnsafeBufferPointer {
                RMSNorm.forward(buf.q, rows: T * H, d: hd, gain: $0.baseAddress!, eps: eps, out: buf.q, inverseRMS: tape?.inverseRMSQuery)
            }
            kn.withUnsafeBufferPointer {
                RMSNorm.forward(keys + start * kvWidth, rows: T * KV, d: hd, gain: $0.baseAddress!, eps: eps,
                                out: keys + start * kvWidth, inverseRMS: tape?.inverseRMSKey)
            }
        }
        for seg in segments {
            rotation.rotate(buf.q + seg.lowerBound * qWidth, rows: seg.count, heads: H, rowStride: qWidth)
            rotation.rotate(keys + (start + seg.lowerBound) * kvWidth, rows: seg.count, heads: KV, rowStride: kvWidth)
        }
        tape?.queries.update(from: buf.q, count: T * qWidth)
        for seg in segments {
            CausalAttention.apply(q: buf.q + seg.lowerBound * qWidth, rows: seg.count, start: start,
                                  keys: keys + seg.lowerBound * kvWidth, values: values + seg.lowerBound * kvWidth,
                                  heads: H, kvHeads: KV, headDim: hd, scale: description.attentionScale,
                                  window: description.slidingWindow, out: buf.attn + seg.lowerBound * qWidth,
                                  threads: buf.useBLAS ? 1 : BLAS.threadCount)
        }
        tape?.attentionHeads.update(from: buf.attn, count: T * qWidth)
        project(.o, buf.attn, packed: buf.packed(buf.attn, columns: qWidth), into: buf.o, ldo: d)
        if let an = w.attentionOutputNorm {
            tape?.attentionProjected?.update(from: buf.o, count: T * d)
            an.withUnsafeBufferPointer {
                RMSNorm.forward(buf.o, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.o, inverseRMS: tape?.inverseRMSAttention)
            }
        }
        try visit(.attentionOutput, buf.o)
        Kernels.add(buf.o, into: buf.x, count: T * d)
        try visit(.mlpInput, buf.x)
        tape?.mlpInput.update(from: buf.x, count: T * d)

        w.mlpNorm.withUnsafeBufferPointer {
            RMSNorm.forward(buf.x, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.xn, inverseRMS: tape?.inverseRMS2)
        }
        tape?.mlpNormed.update(from: buf.xn, count: T * d)
        packed = buf.packed(buf.xn, columns: d)
        project(.gate, buf.xn, packed: packed, into: buf.gate, ldo: ff)
        project(.up, buf.xn, packed: packed, into: buf.up, ldo: ff)
        tape?.gatePreactivation.update(from: buf.gate, count: T * ff)
        tape?.upPreactivation.update(from: buf.up, count: T * ff)
        description.activation.forward(gate: buf.gate, up: buf.up, out: buf.gate, count: T * ff)
        tape?.mlpHidden.update(from: buf.gate, count: T * ff)
        project(.down, buf.gate, packed: buf.packed(buf.gate, columns: ff), into: buf.o, ldo: d)
        if let mn = w.mlpOutputNorm {
            tape?.mlpProjected?.update(from: buf.o, count: T * d)
            mn.withUnsafeBufferPointer {
                RMSNorm.forward(buf.o, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.o, inverseRMS: tape?.inverseRMSMLP)
            }
        }
        try visit(.mlpOutput, buf.o)
        Kernels.add(buf.o, into: buf.x, count: T * d)
        try visit(.blockOutput, buf.x)
    }

    /// The backward of `forward` for the layer whose forward filled `tape` (a pass of `rows`
    /// tokens from position 0; `keys`/`values` are that layer's rows of the pass's KV cache, and
    /// `rotation` the forward's RoPE tables).
    /// From g = ∂L/∂Z `[rows, d]` (the block output, after any hook there has been
    /// differentiated), writes ∂L/∂h into `gh` `[rows, d]` (may not alias g) and adds the
    /// gradients of the LoRA factors in `loraGradients` (by projection; the LoRA is this
    /// block's last one on that projection). Hooks inside the block are not differentiated.
    /// `sequences`: the packed sequences of the forward (`forward(…sequences:)`), nil for one.
    func backward(tape: BlockTape, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                  rotation: RotaryTables, config c: LlamaConfig, gradient g: UnsafePointer<Float>, into gh: UnsafeMutablePointer<Float>,
                  buffers s: BlockGradientBuffers, loraGradients: inout [LlamaProjection: LoRAFactors],
                  sequences: [Range<Int>]? = nil) {
        let T = tape.rows, d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let qw = H * hd, kvw = KV * hd, ff = c.intermediateSize
        let w = weights
        /// The projection's backward: gx (+)= gy·W_p `[rows, in]` from gy `[rows, out]` (rows `ldg`
        /// apart), plus the LoRA's share, whose factor gradients are added when asked for.
        func projectBackward(_ p: LlamaProjection, x: UnsafePointer<Float>, gy: UnsafePointer<Float>, ldg: Int,
                             into gx: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
            w[p].multiplyTransposed(gy, tokens: T, ldg: ldg, into: gx, ldo: w[p].columns, accumulate: accumulate)
            guard var gf = loraGradients[p], let f = loras[p]?.last else { return }
            f.backward(x: x, gy: gy, ldg: ldg, rows: T, gx: gx, gradient: &gf, scratch: s.lora)
            loraGradients[p] = gf
        }
        /// The gradient before an output norm y = N(x) from gy (Gemma-3), into `s.gProjected`;
        /// gy itself where the layer has no such norm.
        func outputNormBackward(_ gain: Tensor?, x: UnsafeMutablePointer<Float>?, inverseRMS: UnsafeMutablePointer<Float>?,
                                gy: UnsafePointer<Float>) -> UnsafePointer<Float> {
            guard let gain, let x, let inverseRMS else { return gy }
            s.gProjected.update(repeating: 0, count: T * d)
            gain.withUnsafeBufferPointer {
                RMSNorm.backward(x, gy: gy, rows: T, d: d, gain: $0.baseAddress!, inverseRMS: inverseRMS, gx: s.gProjected)
            }
            return UnsafePointer(s.gProjected)
        }
        // MLP: Z = Y + N_X(m·W_downᵀ), m = φ(a_g) ⊙ a_u, a = RMSNorm₂(Y)·Wᵀ (N_X the identity without an output norm).
        let gX = outputNormBackward(w.mlpOutputNorm, x: tape.mlpProjected, inverseRMS: tape.inverseRMSMLP, gy: g)
        projectBackward(.down, x: tape.mlpHidden, gy: gX, ldg: d, into: s.gm)
        description.activation.backward(gate: tape.gatePreactivation, up: tape.upPreactivation, gradient: s.gm,
                                        gateGradient: s.gGate, upGradient: s.gUp, count: T * ff)
        projectBackward(.gate, x: tape.mlpNormed, gy: s.gGate, ldg: ff, into: s.gNormed2)
        projectBackward(.up, x: tape.mlpNormed, gy: s.gUp, ldg: ff, into: s.gNormed2, accumulate: true)
        s.gMLPInput.update(from: g, count: T * d)
        w.mlpNorm.withUnsafeBufferPointer {
            RMSNorm.backward(tape.mlpInput, gy: s.gNormed2, rows: T, d: d, gain: $0.baseAddress!,
                             inverseRMS: tape.inverseRMS2, gx: s.gMLPInput)
        }
        // Attention: Y = h + N_o(attn·W_oᵀ).
        let gO = outputNormBackward(w.attentionOutputNorm, x: tape.attentionProjected, inverseRMS: tape.inverseRMSAttention,
                                    gy: s.gMLPInput)
        projectBackward(.o, x: tape.attentionHeads, gy: gO, ldg: d, into: s.gHeads)
        for seg in sequences ?? [0..<T] {
            let (lo, n) = (seg.lowerBound, seg.count)
            CausalAttention.backward(q: tape.queries + lo * qw, keys: keys + lo * kvw, values: values + lo * kvw,
                                     gradient: s.gHeads + lo * qw, rows: n,
                                     heads: H, kvHeads: KV, headDim: hd, scale: description.attentionScale,
                                     window: description.slidingWindow, gq: s.gq + lo * qw, gk: s.gk + lo * kvw, gv: s.gv + lo * kvw,
                                     scratch: s.attention)
            rotation.rotate(s.gq + lo * qw, rows: n, heads: H, rowStride: qw, backward: true)
            rotation.rotate(s.gk + lo * kvw, rows: n, heads: KV, rowStride: kvw, backward: true)
        }
        // Per-head q/k norms: back to the projections' outputs.
        var gq = UnsafePointer(s.gq), gk = UnsafePointer(s.gk)
        if let qn = w.queryNorm, let kn = w.keyNorm, let q0 = tape.queriesProjected, let k0 = tape.keysProjected,
           let rq = tape.inverseRMSQuery, let rk = tape.inverseRMSKey {
            s.gqProjected.update(repeating: 0, count: T * qw)
            s.gkProjected.update(repeating: 0, count: T * kvw)
            qn.withUnsafeBufferPointer {
                RMSNorm.backward(q0, gy: s.gq, rows: T * H, d: hd, gain: $0.baseAddress!, inverseRMS: rq, gx: s.gqProjected)
            }
            kn.withUnsafeBufferPointer {
                RMSNorm.backward(k0, gy: s.gk, rows: T * KV, d: hd, gain: $0.baseAddress!, inverseRMS: rk, gx: s.gkProjected)
            }
            gq = UnsafePointer(s.gqProjected); gk = UnsafePointer(s.gkProjected)
        }
        projectBackward(.q, x: tape.attentionNormed, gy: gq, ldg: qw, into: s.gNormed1)
        projectBackward(.k, x: tape.attentionNormed, gy: gk, ldg: kvw, into: s.gNormed1, accumulate: true)
        projectBackward(.v, x: tape.attentionNormed, gy: s.gv, ldg: kvw, into: s.gNormed1, accumulate: true)
        gh.update(from: s.gMLPInput, count: T * d)
        w.inputNorm.withUnsafeBufferPointer {
            RMSNorm.backward(tape.blockInput, gy: s.gNormed1, rows: T, d: d, gain: $0.baseAddress!,
                             inverseRMS: tape.inverseRMS1, gx: gh)
        }
    }
}
