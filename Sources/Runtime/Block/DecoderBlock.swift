import Tensors

/// Scratch buffers of one forward call, allocated once per call and reused by every layer
/// (`[rows, width]` row-major each).
final class BlockBuffers {
    let x, xn, q, attn, o, gate, up, lora, panels: UnsafeMutablePointer<Float>
    let rows: Int
    /// Whether `Kernels.linear` takes token panels for these rows (several rows, an AVX2 CPU).
    let packing: Bool

    init(rows: Int, config c: LlamaConfig, maxLoRARank: Int) {
        self.rows = rows
        packing = rows > 1 && TokenPanelGemm.preferred
        let d = c.hiddenSize, qw = c.numAttentionHeads * c.headDim, ff = c.intermediateSize
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            return p
        }
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

    deinit {
        for p in [x, xn, q, attn, o, gate, up, lora, panels] { p.deallocate() }
    }
}

/// One decoder layer, written once: pre-norm attention and gated MLP over the residual stream,
/// each operation a call of its own (`RMSNorm`, the projections through `Kernels.linear` with
/// LoRA unmerged, `RotaryEmbedding`, `CausalAttention`, `GatedActivation`, residual adds), the
/// hook sites between them. What differs between architectures comes from `description`.
struct DecoderBlock {
    /// What this layer computes.
    let description: BlockDescription
    /// Its weights, matrices `[out, in]` in their storage format.
    let weights: LlamaWeights.Layer
    /// LoRA factors applied unmerged inside the projections (several sum).
    let loras: [LlamaProjection: [LoRAFactors]]

    /// Runs the layer on the `[rows, d]` residual in `buffers.x`, in place, for tokens at
    /// positions `start ..< start + rows`; their keys and values (after RoPE for the keys) are
    /// written into rows `start…` of `keys`/`values` `[capacity, kvHeads·hd]`, and attention reads
    /// rows `0 ..< start + rows` of them. `visit(site, activation)` runs at the five hook sites
    /// (block input, attention output, MLP input, MLP output, block output) on the `[rows, d]`
    /// activation, which it may change. With `capture`, every intermediate is returned.
    /// - Throws: what `visit` throws.
    func forward(buffers buf: BlockBuffers, rows T: Int, start: Int,
                 keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
                 rotary: RotaryEmbedding, cos cosTable: [Float], sin sinTable: [Float], config c: LlamaConfig,
                 capture: Bool, visit: (HookSiteKind, UnsafeMutablePointer<Float>) throws -> Void) throws -> LayerIntermediates? {
        let d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let qWidth = H * hd, kvWidth = KV * hd, ff = c.intermediateSize
        let w = weights, lora = loras, eps = description.normEpsilon
        func copy(_ p: UnsafePointer<Float>, _ cols: Int) -> Tensor {
            Tensor(shape: [T, cols]) { $0.baseAddress!.update(from: p, count: T * cols) }
        }
        try visit(.blockInput, buf.x)
        let h = capture ? copy(buf.x, d) : nil

        w.inputNorm.withUnsafeBufferPointer {
            RMSNorm.forward(buf.x, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.xn)
        }
        let hn = capture ? copy(buf.xn, d) : nil
        var packed = buf.packed(buf.xn, columns: d)
        Kernels.linear(buf.xn, rows: T, weight: w.q, bias: w.qBias, loras: lora[.q] ?? [],
                       out: buf.q, ldo: qWidth, scratch: buf.lora, packed: packed)
        Kernels.linear(buf.xn, rows: T, weight: w.k, bias: w.kBias, loras: lora[.k] ?? [],
                       out: keys + start * kvWidth, ldo: kvWidth, scratch: buf.lora, packed: packed)
        Kernels.linear(buf.xn, rows: T, weight: w.v, bias: w.vBias, loras: lora[.v] ?? [],
                       out: values + start * kvWidth, ldo: kvWidth, scratch: buf.lora, packed: packed)
        cosTable.withUnsafeBufferPointer { cp in
            sinTable.withUnsafeBufferPointer { sp in
                rotary.apply(buf.q, rows: T, heads: H, rowStride: qWidth, cos: cp.baseAddress!, sin: sp.baseAddress!)
                rotary.apply(keys + start * kvWidth, rows: T, heads: KV, rowStride: kvWidth,
                             cos: cp.baseAddress!, sin: sp.baseAddress!)
            }
        }
        CausalAttention.apply(q: buf.q, rows: T, start: start, keys: keys, values: values,
                              heads: H, kvHeads: KV, headDim: hd, out: buf.attn, threads: BLAS.threadCount)
        packed = buf.packed(buf.attn, columns: qWidth)
        Kernels.linear(buf.attn, rows: T, weight: w.o, bias: w.oBias, loras: lora[.o] ?? [],
                       out: buf.o, ldo: d, scratch: buf.lora, packed: packed)
        try visit(.attentionOutput, buf.o)
        let attentionOutput = capture ? copy(buf.o, d) : nil
        Kernels.add(buf.o, into: buf.x, count: T * d)
        try visit(.mlpInput, buf.x)
        let y = capture ? copy(buf.x, d) : nil

        w.postAttentionNorm.withUnsafeBufferPointer {
            RMSNorm.forward(buf.x, rows: T, d: d, gain: $0.baseAddress!, eps: eps, out: buf.xn)
        }
        let u = capture ? copy(buf.xn, d) : nil
        packed = buf.packed(buf.xn, columns: d)
        Kernels.linear(buf.xn, rows: T, weight: w.gate, bias: nil, loras: lora[.gate] ?? [],
                       out: buf.gate, ldo: ff, scratch: buf.lora, packed: packed)
        Kernels.linear(buf.xn, rows: T, weight: w.up, bias: nil, loras: lora[.up] ?? [],
                       out: buf.up, ldo: ff, scratch: buf.lora, packed: packed)
        let ag = capture ? copy(buf.gate, ff) : nil
        description.activation.forward(gate: buf.gate, up: buf.up, out: buf.gate, count: T * ff)
        packed = buf.packed(buf.gate, columns: ff)
        Kernels.linear(buf.gate, rows: T, weight: w.down, bias: nil, loras: lora[.down] ?? [],
                       out: buf.o, ldo: d, scratch: buf.lora, packed: packed)
        try visit(.mlpOutput, buf.o)
        let x = capture ? copy(buf.o, d) : nil
        Kernels.add(buf.o, into: buf.x, count: T * d)
        try visit(.blockOutput, buf.x)

        guard let h, let hn, let attentionOutput, let y, let u, let ag, let x else { return nil }
        return LayerIntermediates(
            blockInput: h, attentionNormed: hn,
            attentionHeads: copy(buf.attn, qWidth), attentionOutput: attentionOutput,
            mlpInput: y, mlpNormed: u,
            gatePreactivation: ag, upPreactivation: copy(buf.up, ff), mlpHidden: copy(buf.gate, ff),
            mlpOutput: x, blockOutput: copy(buf.x, d))
    }
}
