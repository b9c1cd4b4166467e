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
        // The pattern: a period (every n-th layer full; llama.cpp's default 6) or one flag per layer (true: sliding).
        let sliding: [Bool]
        if let flags = metadata["gemma3.attention.sliding_window_pattern"]?.arrayValue {
            guard flags.count == layers else {
                throw FormatsError.invalidModel(file: source, reason: "gemma3.attention.sliding_window_pattern has \(flags.count) entries for \(layers) layers")
            }
            sliding = flags.map { $0.boolValue ?? true }
        } else {
            let period = metadata["gemma3.attention.sliding_window_pattern"]?.intValue ?? 6
            sliding = (0..<layers).map { !(period > 0 && ($0 + 1) % period == 0) }
        }
        let types: [JSONValue] = sliding.map { .string($0 ? "sliding_attention" : "full_attention") }
        let global: [(String, JSONValue)] = [
            ("rope_theta", .float(Float(metadata["gemma3.rope.freq_base"]?.doubleValue ?? 1_000_000))), ("rope_type", .string("default")),
        ]
        let local: [(String, JSONValue)] = [
            ("rope_theta", .float(Float(metadata["gemma3.rope.freq_base_swa"]?.doubleValue ?? 10_000))), ("rope_type", .string("default")),
        ]
        // llama.cpp scales scores by head_dim^(-1/2) unless the file states `attention.scale`.
        let scalar: JSONValue = metadata["gemma3.attention.scale"]?.doubleValue.map { .double(1 / ($0 * $0)) } ?? .int(headDim)
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
            ("query_pre_attn_scalar", scalar),
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

    /// The `gemma3.*` keys llama.cpp's converter writes for a Gemma-3 text config.json, plus
    /// `attention.scale` when `query_pre_attn_scalar` is not head_dim, `rope.freq_base_swa` when
    /// the local base is not 10,000, and `attention.sliding_window_pattern` (a period, or one flag
    /// per layer) when `layer_types` is not llama.cpp's every-sixth-layer default.
    /// - Throws: `FormatsError.invalidJSON` for malformed JSON or missing required keys.
    public static func ggufMetadata(fromConfigJSON data: Data, source: String = "config.json") throws -> OrderedDictionary<String, GGUFValue> {
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch { throw FormatsError.invalidJSON(file: source, reason: "\(error)") }
        func int(_ k: String) throws -> Int {
            guard let v = json[k]?.intValue else { throw FormatsError.invalidJSON(file: source, reason: "missing or non-integer \"\(k)\"") }
            return v
        }
        let heads = try int("num_attention_heads"), hidden = try int("hidden_size"), layers = try int("num_hidden_layers")
        let headDim = json["head_dim"]?.intValue ?? hidden / max(heads, 1)
        let rope = json["rope_parameters"]
        let globalBase = rope?["full_attention"]?["rope_theta"]?.doubleValue ?? json["rope_theta"]?.doubleValue ?? 1_000_000
        let localBase = rope?["sliding_attention"]?["rope_theta"]?.doubleValue ?? json["rope_local_base_freq"]?.doubleValue ?? 10_000
        var m = OrderedDictionary<String, GGUFValue>()
        m["gemma3.context_length"] = .uint32(UInt32(clamping: json["max_position_embeddings"]?.intValue ?? 32768))
        m["gemma3.embedding_length"] = .uint32(UInt32(clamping: hidden))
        m["gemma3.block_count"] = .uint32(UInt32(clamping: layers))
        m["gemma3.feed_forward_length"] = .uint32(UInt32(clamping: try int("intermediate_size")))
        m["gemma3.attention.head_count"] = .uint32(UInt32(clamping: heads))
        m["gemma3.attention.layer_norm_rms_epsilon"] = .float32(Float(json["rms_norm_eps"]?.doubleValue ?? 1e-6))
        m["gemma3.attention.key_length"] = .uint32(UInt32(clamping: headDim))
        m["gemma3.attention.value_length"] = .uint32(UInt32(clamping: headDim))
        m["gemma3.rope.freq_base"] = .float32(Float(globalBase))
        if localBase != 10_000 { m["gemma3.rope.freq_base_swa"] = .float32(Float(localBase)) }
        m["gemma3.attention.sliding_window"] = .uint32(UInt32(clamping: json["sliding_window"]?.intValue ?? 4096))
        m["gemma3.attention.head_count_kv"] = .uint32(UInt32(clamping: json["num_key_value_heads"]?.intValue ?? heads))
        m["gemma3.vocab_size"] = .uint32(UInt32(clamping: try int("vocab_size")))
        if let scalar = json["query_pre_attn_scalar"]?.doubleValue, scalar != Double(headDim) {
            m["gemma3.attention.scale"] = .float32(Float(1 / scalar.squareRoot()))
        }
        if let types = json["layer_types"]?.arrayValue?.compactMap(\.stringValue), types.count == layers {
            let sliding = types.map { $0 == "sliding_attention" }
            let everySixth = (0..<layers).map { ($0 + 1) % 6 != 0 }
            if sliding != everySixth {
                m["gemma3.attention.sliding_window_pattern"] = .array(elementType: .bool, sliding.map { .bool($0) })
            }
        }
        return m
    }
}
