import Foundation
import Tensors

/// config.json ⇄ GGUF `llama.*` metadata, as llama.cpp's `convert_hf_to_gguf.py` (`TextModel` and
/// `LlamaModel.set_gguf_parameters`) writes it and as a Hugging Face `LlamaConfig` reads it.
/// Both rope layouts of config.json are read: transformers 5 `rope_parameters` and the legacy
/// top-level `rope_theta` + `rope_scaling`.
public enum LlamaMetadata {
    /// The architecture string of Llama GGUF files.
    public static let architecture = "llama"

    /// Hyperparameters read from config.json (only what the GGUF keys need).
    public struct Hyperparameters: Sendable, Equatable {
        public var vocabSize: Int
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var layers: Int
        public var heads: Int
        public var kvHeads: Int
        /// `head_dim` if config.json states it.
        public var explicitHeadDim: Int?
        public var rmsNormEps: Double
        public var maxPositionEmbeddings: Int
        public var ropeTheta: Double
        /// "default", "linear", "llama3", …
        public var ropeType: String
        public var ropeFactor: Double?
        public var lowFreqFactor: Double?
        public var highFreqFactor: Double?
        public var originalMaxPositionEmbeddings: Int?
        public var tieWordEmbeddings: Bool
        public var bosTokenId: Int?
        public var eosTokenIds: [Int]
        public var padTokenId: Int?

        /// Per-head width.
        public var headDim: Int { explicitHeadDim ?? hiddenSize / max(heads, 1) }
    }

    /// Reads the hyperparameters of a Llama config.json.
    /// - Throws: `FormatsError.invalidJSON` for malformed JSON or missing/invalid required keys.
    public static func hyperparameters(fromConfigJSON data: Data, source: String = "config.json") throws -> Hyperparameters {
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch { throw FormatsError.invalidJSON(file: source, reason: "\(error)") }
        func int(_ k: String) throws -> Int {
            guard let v = json[k]?.intValue else { throw FormatsError.invalidJSON(file: source, reason: "missing or non-integer \"\(k)\"") }
            return v
        }
        let heads = try int("num_attention_heads")
        let hidden = try int("hidden_size")
        guard heads > 0, hidden > 0 else { throw FormatsError.invalidJSON(file: source, reason: "hidden_size and num_attention_heads must be positive") }
        let rope = json["rope_parameters"].flatMap { $0.isNull ? nil : $0 } ?? json["rope_scaling"].flatMap { $0.isNull ? nil : $0 }
        let eos: [Int]
        if let one = json["eos_token_id"]?.intValue { eos = [one] } else { eos = json["eos_token_id"]?.arrayValue?.compactMap(\.intValue) ?? [] }
        return Hyperparameters(
            vocabSize: try int("vocab_size"), hiddenSize: hidden, intermediateSize: try int("intermediate_size"),
            layers: try int("num_hidden_layers"), heads: heads,
            kvHeads: json["num_key_value_heads"]?.intValue ?? heads,
            explicitHeadDim: json["head_dim"]?.intValue,
            rmsNormEps: json["rms_norm_eps"]?.doubleValue ?? 1e-6,
            maxPositionEmbeddings: json["max_position_embeddings"]?.intValue ?? 2048,
            ropeTheta: json["rope_parameters"]?["rope_theta"]?.doubleValue ?? json["rope_theta"]?.doubleValue ?? 10000,
            ropeType: rope?["rope_type"]?.stringValue ?? rope?["type"]?.stringValue ?? "default",
            ropeFactor: rope?["factor"]?.doubleValue,
            lowFreqFactor: rope?["low_freq_factor"]?.doubleValue,
            highFreqFactor: rope?["high_freq_factor"]?.doubleValue,
            originalMaxPositionEmbeddings: rope?["original_max_position_embeddings"]?.intValue ?? json["original_max_position_embeddings"]?.intValue,
            tieWordEmbeddings: json["tie_word_embeddings"]?.boolValue ?? false,
            bosTokenId: json["bos_token_id"]?.intValue, eosTokenIds: eos, padTokenId: json["pad_token_id"]?.intValue)
    }

    /// The `llama.*` keys convert_hf_to_gguf writes for config.json, in its order
    /// (`general.file_type` is the converter's to insert; see `HFToGGUFConverter`).
    public static func ggufMetadata(fromConfigJSON data: Data, source: String = "config.json") throws -> OrderedDictionary<String, GGUFValue> {
        let h = try hyperparameters(fromConfigJSON: data, source: source)
        return ggufMetadata(h)
    }

    /// The `llama.*` keys for parsed hyperparameters.
    public static func ggufMetadata(_ h: Hyperparameters) -> OrderedDictionary<String, GGUFValue> {
        var m = OrderedDictionary<String, GGUFValue>()
        m["llama.block_count"] = .uint32(UInt32(clamping: h.layers))
        m["llama.context_length"] = .uint32(UInt32(clamping: h.maxPositionEmbeddings))
        m["llama.embedding_length"] = .uint32(UInt32(clamping: h.hiddenSize))
        m["llama.feed_forward_length"] = .uint32(UInt32(clamping: h.intermediateSize))
        m["llama.attention.head_count"] = .uint32(UInt32(clamping: h.heads))
        m["llama.attention.head_count_kv"] = .uint32(UInt32(clamping: h.kvHeads))
        m["llama.rope.freq_base"] = .float32(Float(h.ropeTheta))
        m["llama.attention.layer_norm_rms_epsilon"] = .float32(Float(h.rmsNormEps))
        if let hd = h.explicitHeadDim {
            m["llama.attention.key_length"] = .uint32(UInt32(clamping: hd))
            m["llama.attention.value_length"] = .uint32(UInt32(clamping: hd))
        }
        m["llama.vocab_size"] = .uint32(UInt32(clamping: h.vocabSize))
        m["llama.rope.dimension_count"] = .uint32(UInt32(clamping: h.headDim))
        if h.ropeType == "linear", let f = h.ropeFactor {
            m["llama.rope.scaling.type"] = .string("linear")
            m["llama.rope.scaling.factor"] = .float32(Float(f))
        }
        return m
    }

    /// HF config.json bytes for a Llama GGUF: the `llama.*` keys, special token ids from
    /// `tokenizer.ggml.*`, `tie_word_embeddings` when the file has no `output.weight`, biases when
    /// `attn_q.bias` / `ffn_up.bias` exist. The result decodes with `Runtime.LlamaConfig`.
    /// A `rope_freqs.weight` tensor (llama3 scaling) cannot be turned back into scaling parameters;
    /// callers that need it read the tensor itself.
    /// - Parameter tensorNames: the GGUF's tensor names (nil: assume untied, no biases).
    /// - Throws: `FormatsError.invalidModel` if the architecture is not llama or a key is missing.
    public static func configJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, tensorNames: [String]? = nil,
                                  source: String = "GGUF") throws -> Data {
        guard metadata["general.architecture"]?.stringValue == architecture else {
            throw FormatsError.invalidModel(file: source, reason: "general.architecture is \(metadata["general.architecture"]?.description ?? "missing"), expected \"llama\"")
        }
        func int(_ k: String) throws -> Int {
            guard let v = metadata[k]?.intValue else { throw FormatsError.invalidModel(file: source, reason: "missing integer key \(k)") }
            return v
        }
        let hidden = try int("llama.embedding_length")
        let heads = try int("llama.attention.head_count")
        let vocab = metadata["llama.vocab_size"]?.intValue ?? metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab else { throw FormatsError.invalidModel(file: source, reason: "no llama.vocab_size and no tokenizer.ggml.tokens") }
        let headDim = metadata["llama.attention.key_length"]?.intValue ?? metadata["llama.rope.dimension_count"]?.intValue ?? hidden / max(heads, 1)
        let names = Set(tensorNames ?? [])
        var rope: [(String, JSONValue)] = [("rope_theta", .float(Float(metadata["llama.rope.freq_base"]?.doubleValue ?? 10000)))]
        if metadata["llama.rope.scaling.type"]?.stringValue == "linear", let f = metadata["llama.rope.scaling.factor"]?.doubleValue {
            rope += [("rope_type", .string("linear")), ("factor", .float(Float(f)))]
        } else {
            rope.append(("rope_type", .string("default")))
        }
        var pairs: [(String, JSONValue)] = [
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("model_type", .string("llama")),
            ("vocab_size", .int(vocab)),
            ("hidden_size", .int(hidden)),
            ("intermediate_size", .int(try int("llama.feed_forward_length"))),
            ("num_hidden_layers", .int(try int("llama.block_count"))),
            ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(metadata["llama.attention.head_count_kv"]?.intValue ?? heads)),
            ("head_dim", .int(headDim)),
            ("rms_norm_eps", .float(Float(metadata["llama.attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5))),
            ("max_position_embeddings", .int(metadata["llama.context_length"]?.intValue ?? 2048)),
            ("rope_parameters", .object(rope)),
            ("tie_word_embeddings", .bool(tensorNames != nil && !names.contains("output.weight"))),
            ("attention_bias", .bool(names.contains("blk.0.attn_q.bias"))),
            ("mlp_bias", .bool(names.contains("blk.0.ffn_up.bias"))),
            ("hidden_act", .string("silu")),
        ]
        if let bos = metadata["tokenizer.ggml.bos_token_id"]?.intValue { pairs.append(("bos_token_id", .int(bos))) }
        if let eos = metadata["tokenizer.ggml.eos_token_id"]?.intValue { pairs.append(("eos_token_id", .int(eos))) }
        if let pad = metadata["tokenizer.ggml.padding_token_id"]?.intValue { pairs.append(("pad_token_id", .int(pad))) }
        return Data((JSONValue.object(pairs).serialized(indent: 2) + "\n").utf8)
    }

    /// llama3 RoPE frequency divisors (`rope_freqs.weight`, `[head_dim / 2]`) as
    /// `LlamaModel.generate_extra_tensors` computes them, in float32 like its torch code; nil
    /// unless the rope type is "llama3".
    public static func llama3RopeFactors(_ h: Hyperparameters) -> [Float]? {
        guard h.ropeType.lowercased() == "llama3" else { return nil }
        let dim = h.headDim
        let base = Float(h.ropeTheta)
        let factor = Float(h.ropeFactor ?? 8)
        let low = Float(h.lowFreqFactor ?? 1), high = Float(h.highFreqFactor ?? 4)
        let old = Float(h.originalMaxPositionEmbeddings ?? 8192)
        let lowWavelen = old / low, highWavelen = old / high
        // torch evaluates `scalar / tensor` as `reciprocal(tensor) * scalar`, all in float32.
        let twoPi = Float(2 * Double.pi)
        return stride(from: 0, to: dim, by: 2).map { i -> Float in
            let freq: Float = 1 / Foundation.pow(base, Float(i) / Float(dim))
            let wavelen = (1 / freq) * twoPi
            if wavelen < highWavelen { return 1 }
            if wavelen > lowWavelen { return factor }
            let smooth = ((1 / wavelen) * old - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }
}
