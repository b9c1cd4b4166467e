import Tensors

extension LlamaWeights {
    /// Loads every weight in f32 by its Hugging Face name through `tensor` and checks its shape
    /// against `config`: `model.embed_tokens.weight` `[vocab, d]`,
    /// `model.layers.N.input_layernorm.weight` `[d]`, `model.layers.N.self_attn.{q,k,v,o}_proj.weight`,
    /// `model.layers.N.post_attention_layernorm.weight` `[d]`,
    /// `model.layers.N.mlp.{gate,up,down}_proj.weight`, biases where the architecture has them,
    /// `model.norm.weight` `[d]`, and `lm_head.weight` `[vocab, d]` unless
    /// `tie_word_embeddings` (then it is not requested). Q/K rows must already be in Hugging Face
    /// order (GGUF readers undo the permutation). For weights made in code (tests, benchmarks).
    ///
    /// - Parameters:
    ///   - source: names the checkpoint in errors.
    ///   - tensor: returns the f32 tensor of a name, or throws (e.g. `RuntimeError.missingTensor`).
    /// - Throws: `RuntimeError.unsupportedArchitecture`/`.unsupportedFeature` for configs the
    ///   runtime cannot run, `.shapeMismatch` naming the tensor, or whatever `tensor` throws.
    public static func load(config: LlamaConfig, source: String = "model",
                            tensor: (String) throws -> Tensor) throws -> LlamaWeights {
        try load(config: config, source: source, matrix: { .f32(try tensor($0)) }, vector: tensor)
    }
}
