import Foundation

/// GGUF `gemma3.*` metadata → a Hugging Face `Gemma3TextConfig` config.json, as llama.cpp's
/// `convert_hf_to_gguf.py` (`Gemma3Model`) writes the keys and as llama.cpp reads them: what the
/// GGUF does not state takes llama.cpp's and transformers' Gemma-3 values: the sliding-window
/// pattern (every sixth layer full, unless `gemma3.attention.sliding_window_pattern` is present),
/// the local layers' RoPE base 10,000, `query_pre_attn_scalar` = head_dim (llama.cpp scales scores
/// by head_dim^(-1/2) for every size but 27B), GELU-tanh, tied embeddings unless `output.weight`
/// exists.
public enum Gemma3Metadata {
    /// The architecture string of Gemma-3 GGUF files.
    public static let architecture = "gemma3"

    /// HF config.json bytes for a Gemma-3 GGUF; decodes with `Runtime.LlamaConfig`.
    /// - Parameter tensorNames: the GGUF's tensor names (tied embeddings when `output.weight` is absent).
    /// - Throws: `FormatsError.invalidModel` if the architecture is not gemma3, a required key is
    ///   missing, or the file is a multimodal Gemma-3 (it holds vision tensors).
    public static func configJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, tensorNames: [String],
                                  source: String = "GGUF") throws -> Data {
        guard metadata["general.architecture"]?.stringValue == architecture else {
            throw FormatsError.invalidModel(file: source, reason: "general.architecture is \(metadata["general.architecture"]?.description ?? "missing"), expected \"gemma3\"")
        }
        if tensorNames.contains(where: { $0.hasPrefix("v.") || $0.hasPrefix("mm.") }) {
            throw FormatsError.invalidModel(file: source, reason: "a multimodal Gemma-3 (vision tensors); only the text model is supported")
        }
        func int(_ k: String) throws -> Int {
            guard let v = metadata["gemma3." + k]?.intValue else { throw FormatsError.invalidModel(file: source, reason: "missing integer key gemma3.\(k)") }
            return v
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count"), layers = try int("block_count")
        let vocab = metadata["gemma3.vocab_size"]?.intValue ?? metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab else { throw FormatsError.invalidModel(file: source, reason: "no gemma3.vocab_size and no tokenizer.ggml.tokens") }
        let headDim = metadata["gemma3.attention.key_length"]?.intValue ?? hidden / max(heads, 1)
        let window = try int("attention.sliding_window")
        let pattern = metadata["gemma3.attention.sliding_window_pattern"]?.intValue ?? 6
        let types: [JSONValue] = (0..<layers).map { .string(pattern > 0 && ($0 + 1) % pattern == 0 ? "full_attention" : "sliding_attention") }
        let global: [(String, JSONValue)] = [
            ("rope_theta", .float(Float(metadata["gemma3.rope.freq_base"]?.doubleValue ?? 1_000_000))), ("rope_type", .string("default")),
        ]
        let local: [(String, JSONValue)] = [("rope_theta", .float(10_000)), ("rope_type", .string("default"))]
        var pairs: [(String, JSONValue)] = [
            ("architectures", .array([.string("Gemma3ForCausalLM")])),
            ("model_type", .string("gemma3_text")),
            ("vocab_size", .int(vocab)),
            ("hidden_size", .int(hidden)),
            ("intermediate_size", .int(try int("feed_forward_length"))),
            ("num_hidden_layers", .int(layers)),
            ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(metadata["gemma3.attention.head_count_kv"]?.intValue ?? heads)),
            ("head_dim", .int(headDim)),
            ("query_pre_attn_scalar", .int(headDim)),
            ("rms_norm_eps", .float(Float(metadata["gemma3.attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-6))),
            ("max_position_embeddings", .int(metadata["gemma3.context_length"]?.intValue ?? 32768)),
            ("sliding_window", .int(window)),
            ("layer_types", .array(types)),
            ("rope_parameters", .object([("full_attention", .object(global)), ("sliding_attention", .object(local))])),
            ("tie_word_embeddings", .bool(!tensorNames.contains("output.weight"))),
            ("hidden_activation", .string("gelu_pytorch_tanh")),
        ]
        if let bos = metadata["tokenizer.ggml.bos_token_id"]?.intValue { pairs.append(("bos_token_id", .int(bos))) }
        if let eos = metadata["tokenizer.ggml.eos_token_id"]?.intValue { pairs.append(("eos_token_id", .int(eos))) }
        if let pad = metadata["tokenizer.ggml.padding_token_id"]?.intValue { pairs.append(("pad_token_id", .int(pad))) }
        return Data((JSONValue.object(pairs).serialized(indent: 2) + "\n").utf8)
    }
}
