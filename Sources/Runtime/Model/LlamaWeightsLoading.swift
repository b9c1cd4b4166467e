import Tensors

extension LlamaWeights {
    /// Loads every weight by its Hugging Face name through `tensor` and checks its shape
    /// against `config`: `model.embed_tokens.weight` `[vocab, d]`,
    /// `model.layers.N.input_layernorm.weight` `[d]`, `model.layers.N.self_attn.{q,k,v,o}_proj.weight`,
    /// `model.layers.N.post_attention_layernorm.weight` `[d]`,
    /// `model.layers.N.mlp.{gate,up,down}_proj.weight`, biases where the architecture has them,
    /// `model.norm.weight` `[d]`, and `lm_head.weight` `[vocab, d]` unless
    /// `tie_word_embeddings` (then it is not requested). Q/K rows must already be in Hugging Face
    /// order (GGUF readers undo the permutation).
    ///
    /// - Parameters:
    ///   - source: names the checkpoint in errors.
    ///   - tensor: returns the f32 tensor of a name, or throws (e.g. `RuntimeError.missingTensor`).
    /// - Throws: `RuntimeError.unsupportedArchitecture`/`.unsupportedFeature` for configs the
    ///   runtime cannot run, `.shapeMismatch` naming the tensor, or whatever `tensor` throws.
    public static func load(config: LlamaConfig, source: String = "model",
                            tensor: (String) throws -> Tensor) throws -> LlamaWeights {
        // One loading path: every matrix comes back f32, so `dense` copies nothing.
        let w = try LlamaRuntimeWeights.load(config: config, source: source,
                                             matrix: { .f32(try tensor($0)) }, vector: tensor)
        return LlamaWeights(embedding: w.embedding.dense, layers: w.layers.map(\.dense), finalNorm: w.finalNorm,
                            lmHead: w.lmHead?.dense)
    }

    /// Checks that weights built in code (not loaded) have the shapes `config` implies.
    /// - Throws: `RuntimeError.shapeMismatch` naming the Hugging Face tensor name, or
    ///   `.invalidConfig` when the layer count differs.
    public func validate(config: LlamaConfig, source: String = "model") throws {
        let arch = try LlamaArchitecture(config: config, source: source)
        guard layers.count == config.numHiddenLayers else {
            throw RuntimeError.invalidConfig(
                source: source, reason: "\(layers.count) layers of weights for num_hidden_layers \(config.numHiddenLayers)")
        }
        let d = config.hiddenSize
        func check(_ t: Tensor?, _ name: String, _ dims: [Int]) throws {
            guard let t else { throw RuntimeError.missingTensor(name: name, source: source) }
            guard t.shape.dims == dims else {
                throw RuntimeError.shapeMismatch(tensor: name, expected: dims, found: t.shape.dims, source: source)
            }
        }
        func checkAbsent(_ t: Tensor?, _ name: String, _ why: String) throws {
            if t != nil { throw RuntimeError.unsupportedFeature("\(name) is present but \(why)", source: source) }
        }
        try check(embedding, "model.embed_tokens.weight", [config.vocabSize, d])
        for (l, w) in layers.enumerated() {
            try check(w.inputNorm, "model.layers.\(l).input_layernorm.weight", [d])
            try check(w.postAttentionNorm, "model.layers.\(l).post_attention_layernorm.weight", [d])
            let pairs: [(LlamaProjection, Tensor, Tensor?, Bool)] = [
                (.q, w.q, w.qBias, arch.qkvBias), (.k, w.k, w.kBias, arch.qkvBias),
                (.v, w.v, w.vBias, arch.qkvBias), (.o, w.o, w.oBias, arch.outputBias),
                (.gate, w.gate, nil, false), (.up, w.up, nil, false), (.down, w.down, nil, false),
            ]
            for (p, weight, b, hasBias) in pairs {
                try check(weight, p.modulePath(layer: l) + ".weight", [p.outputSize(config), p.inputSize(config)])
                if hasBias { try check(b, p.modulePath(layer: l) + ".bias", [p.outputSize(config)]) }
                else { try checkAbsent(b, p.modulePath(layer: l) + ".bias", "\(arch.name) has no such bias here") }
            }
        }
        try check(finalNorm, "model.norm.weight", [d])
        if config.tieWordEmbeddings {
            try checkAbsent(lmHead, "lm_head.weight", "tie_word_embeddings is true")
        } else {
            try check(lmHead, "lm_head.weight", [config.vocabSize, d])
        }
    }
}
