import Tensors

/// Scratch buffers of one forward call, allocated once per call and reused by every layer.
private final class ForwardBuffers {
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

extension LlamaModel {
    /// Runs the model on `tokens` (all at once, one gemm per projection over the tokens).
    ///
    /// With a `cache`, the tokens sit at positions `cache.count..<cache.count+T` and attend to
    /// everything cached; their keys/values are appended. Without one, positions start at 0.
    /// Per layer ℓ the hooks (this model's steering adapters first, then `hooks`) run at
    /// `blockInput(ℓ)`, `attentionOutput(ℓ)`, `mlpInput(ℓ)`, `mlpOutput(ℓ)`, `blockOutput(ℓ)`
    /// on the `[T, d]` activation of this call's tokens, and what they leave flows on.
    ///
    /// - Returns: logits and what `options` asks for (see `ForwardResult`).
    /// - Throws: `RuntimeError.invalidArgument` for an empty input or a cache of another model,
    ///   `.tokenOutOfRange` naming the position, or what a hook throws (the cache is then
    ///   left as it was).
    public func forward(tokens: [Int], hooks: [HookSite: Hook] = [:], cache: KVCache? = nil,
                        options: ForwardOptions = ForwardOptions()) throws -> ForwardResult {
        let c = config
        let T = tokens.count
        guard T > 0 else { throw RuntimeError.invalidArgument("forward: no tokens") }
        for (i, t) in tokens.enumerated() where t < 0 || t >= c.vocabSize {
            throw RuntimeError.tokenOutOfRange(token: t, position: i, vocabSize: c.vocabSize)
        }
        let L = c.numHiddenLayers
        let layerRange = options.layers ?? 0..<L
        guard !layerRange.isEmpty, layerRange.lowerBound >= 0, layerRange.upperBound <= L else {
            throw RuntimeError.invalidArgument("forward: layers \(layerRange) outside 0..<\(L)")
        }
        if layerRange != 0..<L {
            guard cache == nil else {
                throw RuntimeError.invalidArgument("forward: a partial layer range cannot use a KV cache (the other layers' keys would be missing)")
            }
            if layerRange.upperBound < L, options.logits != .none {
                throw RuntimeError.invalidArgument("forward: layers \(layerRange) stop before the last layer; ask for logits .none")
            }
        }
        if layerRange.lowerBound > 0, options.startResidual == nil {
            throw RuntimeError.invalidArgument("forward: layers \(layerRange) start after layer 0; give startResidual [T, d]")
        }
        if let r = options.startResidual, r.shape.dims != [T, c.hiddenSize] {
            throw RuntimeError.invalidArgument("forward: startResidual has shape \(r.shape), expected [\(T), \(c.hiddenSize)]")
        }
        let cache = cache ?? KVCache(config: c, capacity: T)
        guard cache.fits(c) else {
            throw RuntimeError.invalidArgument(
                "forward: KV cache made for \(cache.layerCount) layers × \(cache.rowWidth) does not fit this model")
        }
        let start = cache.count
        let total = start + T
        cache.reserve(total)

        let d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let qWidth = H * hd, kvWidth = KV * hd, ff = c.intermediateSize
        let maxRank = loraAdapters.map(\.maxRank).max() ?? 0
        let buf = ForwardBuffers(rows: T, config: c, maxLoRARank: maxRank)
        let siteHooks = steeringHooks.chained(with: hooks)
        let positions = start..<total
        var result = ForwardResult(
            logits: Tensor(shape: [0, c.vocabSize]), blockOutputs: [], activations: [:], intermediates: [:])

        func copy(_ p: UnsafePointer<Float>, _ cols: Int) -> Tensor {
            Tensor(shape: [T, cols]) { $0.baseAddress!.update(from: p, count: T * cols) }
        }
        /// Runs the hooks of `site` on `p` `[T, d]` and records it if asked.
        func visit(_ site: HookSite, _ p: UnsafeMutablePointer<Float>) throws {
            let hook = siteHooks[site]
            let recorded = options.record.contains(site)
            guard hook != nil || recorded else { return }
            var x = copy(p, d)
            if let hook {
                try hook(&x, HookContext(site: site, positions: positions))
                x.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: T * d) }
            }
            if recorded { result.activations[site] = x }
        }

        // Embedding gather, or the given residual.
        if let r = options.startResidual {
            r.withUnsafeBufferPointer { buf.x.update(from: $0.baseAddress!, count: T * d) }
        } else {
            for (t, id) in tokens.enumerated() { weights.embedding.copyRow(id, into: buf.x + t * d) }
        }
        let (cosTable, sinTable) = rotary.tables(positions: start, count: T)

        for (l, w) in weights.layers.enumerated() where layerRange.contains(l) {
            let lora = loraFactors(layer: l)
            let capture = options.intermediateLayers.contains(l)
            try visit(.blockInput(l), buf.x)
            let h = capture ? copy(buf.x, d) : nil

            w.inputNorm.withUnsafeBufferPointer {
                Kernels.rmsNorm(buf.x, rows: T, d: d, weight: $0.baseAddress!, eps: c.rmsNormEps, out: buf.xn)
            }
            let hn = capture ? copy(buf.xn, d) : nil
            let keys = cache.keyBase(l), values = cache.valueBase(l)
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
            try visit(.attentionOutput(l), buf.o)
            let attentionOutput = capture ? copy(buf.o, d) : nil
            Kernels.add(buf.o, into: buf.x, count: T * d)
            try visit(.mlpInput(l), buf.x)
            let y = capture ? copy(buf.x, d) : nil

            w.postAttentionNorm.withUnsafeBufferPointer {
                Kernels.rmsNorm(buf.x, rows: T, d: d, weight: $0.baseAddress!, eps: c.rmsNormEps, out: buf.xn)
            }
            let u = capture ? copy(buf.xn, d) : nil
            packed = buf.packed(buf.xn, columns: d)
            Kernels.linear(buf.xn, rows: T, weight: w.gate, bias: nil, loras: lora[.gate] ?? [],
                           out: buf.gate, ldo: ff, scratch: buf.lora, packed: packed)
            Kernels.linear(buf.xn, rows: T, weight: w.up, bias: nil, loras: lora[.up] ?? [],
                           out: buf.up, ldo: ff, scratch: buf.lora, packed: packed)
            let ag = capture ? copy(buf.gate, ff) : nil
            VectorMath.swiGLU(gate: buf.gate, up: buf.up, out: buf.gate, count: T * ff)
            packed = buf.packed(buf.gate, columns: ff)
            Kernels.linear(buf.gate, rows: T, weight: w.down, bias: nil, loras: lora[.down] ?? [],
                           out: buf.o, ldo: d, scratch: buf.lora, packed: packed)
            try visit(.mlpOutput(l), buf.o)
            let x = capture ? copy(buf.o, d) : nil
            Kernels.add(buf.o, into: buf.x, count: T * d)
            try visit(.blockOutput(l), buf.x)

            if let h, let hn, let attentionOutput, let y, let u, let ag, let x {
                result.intermediates[l] = LayerIntermediates(
                    blockInput: h, attentionNormed: hn,
                    attentionHeads: copy(buf.attn, qWidth), attentionOutput: attentionOutput,
                    mlpInput: y, mlpNormed: u,
                    gatePreactivation: ag, upPreactivation: copy(buf.up, ff), mlpHidden: copy(buf.gate, ff),
                    mlpOutput: x, blockOutput: copy(buf.x, d))
            }
            if options.blockOutputs { result.blockOutputs.append(copy(buf.x, d)) }
        }
        cache.advance(by: T)

        // Final norm and output projection on the rows asked for.
        let first: Int
        switch options.logits {
        case .none: return result
        case .all: first = 0
        case .lastPosition: first = T - 1
        }
        let n = T - first
        weights.finalNorm.withUnsafeBufferPointer {
            Kernels.rmsNorm(buf.x + first * d, rows: n, d: d, weight: $0.baseAddress!, eps: c.rmsNormEps, out: buf.xn)
        }
        result.logits = Tensor(shape: [n, c.vocabSize]) { out in
            Kernels.linear(buf.xn, rows: n, weight: weights.outputProjection, bias: nil, loras: [],
                           out: out.baseAddress!, ldo: c.vocabSize, scratch: buf.lora)
        }
        return result
    }

}
