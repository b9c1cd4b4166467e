import Tensors

extension LlamaModel {
    /// Runs the model on `tokens` (all at once, one gemm per projection over the tokens).
    ///
    /// With a `cache`, the tokens sit at positions `cache.count..<cache.count+T` and attend to
    /// everything cached; their keys/values are appended. Without one, positions start at 0.
    /// With `options.sequenceLengths` the tokens are several sequences packed into one pass (see
    /// there). Per layer ℓ the hooks (this model's steering adapters first, then `hooks`) run at
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
        if let lengths = options.sequenceLengths {
            guard lengths.allSatisfy({ $0 > 0 }), lengths.reduce(0, +) == T else {
                throw RuntimeError.invalidArgument("forward: sequence lengths \(lengths) do not split \(T) tokens")
            }
            guard cache == nil, options.logits != .lastPosition else {
                throw RuntimeError.invalidArgument("forward: packed sequences take no KV cache and no last-position logits")
            }
        }
        if let prompts = options.promptLengths {
            let sequences = options.sequenceLengths ?? [Int.max]
            guard prompts.count == sequences.count, zip(prompts, sequences).allSatisfy({ $0 >= 1 && $0 <= $1 }) else {
                throw RuntimeError.invalidArgument("forward: prompt lengths \(prompts) do not fit sequences of \(options.sequenceLengths ?? [T]) tokens (one length ≥ 1 per sequence)")
            }
        }
        let segments = options.sequenceRows
        let cache = cache ?? KVCache(config: c, capacity: T)
        guard cache.fits(c) else {
            throw RuntimeError.invalidArgument(
                "forward: KV cache made for \(cache.layerCount) layers × \(cache.rowWidth) does not fit this model")
        }
        let start = cache.count
        let total = start + T
        cache.reserve(total)

        let d = c.hiddenSize
        let maxRank = loraAdapters.map(\.maxRank).max() ?? 0
        let buf = BlockBuffers(rows: T, config: c, maxLoRARank: maxRank)
        let siteHooks = steeringHooks.chained(with: hooks)
        let positions = start..<total
        var result = ForwardResult(logits: Tensor(shape: [0, c.vocabSize]), blockOutputs: [], activations: [:])

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
                try hook(&x, HookContext(site: site, positions: segments == nil ? positions : 0..<T, sequences: segments,
                                         promptLengths: options.promptLengths))
                x.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: T * d) }
            }
            if recorded { result.activations[site] = x }
        }

        // Embedding gather, or the given residual.
        if let r = options.startResidual {
            r.withUnsafeBufferPointer { buf.x.update(from: $0.baseAddress!, count: T * d) }
        } else {
            for (t, id) in tokens.enumerated() { weights.embedding.copyRow(id, into: buf.x + t * d) }
            if let scale = embeddingScale {
                for i in 0..<(T * d) { buf.x[i] *= scale }
            }
        }
        // Packed sequences each start at position 0: the tables of the longest one serve all.
        let tablePositions = segments.map { 0..<($0.map(\.count).max() ?? 0) } ?? positions
        let rotation = rotary.tables(positions: tablePositions)
        let localRotation = localRotary?.tables(positions: tablePositions)

        for (l, w) in weights.layers.enumerated() where layerRange.contains(l) {
            let block = DecoderBlock(description: blocks[l], weights: w, loras: loraFactors(layer: l))
            let tables = blocks[l].rotary == .local ? localRotation ?? rotation : rotation
            try block.forward(buffers: buf, rows: T, start: start, keys: cache.keyBase(l), values: cache.valueBase(l),
                              rotation: tables, config: c, sequences: segments) { kind, p in try visit(HookSite(kind, layer: l), p) }
            if options.blockOutputs { result.blockOutputs.append(copy(buf.x, d)) }
            if streamsLayerPages { releasePages(layer: l) }
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
            RMSNorm.forward(buf.x + first * d, rows: n, d: d, gain: $0.baseAddress!, eps: c.rmsNormEps, out: buf.xn)
        }
        result.logits = Tensor(shape: [n, c.vocabSize]) { out in
            Kernels.linear(buf.xn, rows: n, weight: weights.outputProjection, bias: nil, loras: [],
                           out: out.baseAddress!, ldo: c.vocabSize, scratch: buf.lora)
        }
        return result
    }

}
