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

    /// The `<architecture>.*` keys for parsed hyperparameters, as convert_hf_to_gguf.py writes
    /// them: `TextModel`'s for every family; Llama's `vocab_size`, `rope.dimension_count` and
    /// linear RoPE scaling after them (`LlamaModel`; its Qwen classes add none).
    public static func ggufMetadata(_ h: Hyperparameters, architecture: GGUFModelArchitecture = .llama) -> OrderedDictionary<String, GGUFValue> {
        let p = architecture.rawValue
        var m = OrderedDictionary<String, GGUFValue>()
        m["\(p).block_count"] = .uint32(UInt32(clamping: h.layers))
        m["\(p).context_length"] = .uint32(UInt32(clamping: h.maxPositionEmbeddings))
        m["\(p).embedding_length"] = .uint32(UInt32(clamping: h.hiddenSize))
        m["\(p).feed_forward_length"] = .uint32(UInt32(clamping: h.intermediateSize))
        m["\(p).attention.head_count"] = .uint32(UInt32(clamping: h.heads))
        m["\(p).attention.head_count_kv"] = .uint32(UInt32(clamping: h.kvHeads))
        m["\(p).rope.freq_base"] = .float32(Float(h.ropeTheta))
        m["\(p).attention.layer_norm_rms_epsilon"] = .float32(Float(h.rmsNormEps))
        if let hd = h.explicitHeadDim {
            m["\(p).attention.key_length"] = .uint32(UInt32(clamping: hd))
            m["\(p).attention.value_length"] = .uint32(UInt32(clamping: hd))
        }
        guard architecture == .llama else { return m }
        m["llama.vocab_size"] = .uint32(UInt32(clamping: h.vocabSize))
        m["llama.rope.dimension_count"] = .uint32(UInt32(clamping: h.headDim))
        if h.ropeType == "linear", let f = h.ropeFactor {
            m["llama.rope.scaling.type"] = .string("linear")
            m["llama.rope.scaling.factor"] = .float32(Float(f))
        }
        return m
    }

    /// HF config.json bytes for a Llama, Qwen2 or Qwen3 GGUF (`architecture`): the
    /// `<architecture>.*` keys, special token ids from `tokenizer.ggml.*`, `tie_word_embeddings`
    /// when the file has no `output.weight`, biases when `attn_q.bias` / `ffn_up.bias` exist. The
    /// result decodes with `Runtime.LlamaConfig`. A `rope_freqs.weight` tensor (llama3 scaling)
    /// cannot be turned back into scaling parameters; callers that need it read the tensor itself.
    /// - Parameters:
    ///   - tensorNames: the GGUF's tensor names (nil: assume untied, no biases).
    ///   - embeddingRows: rows of `token_embd.weight`, the vocabulary size when the file states
    ///     neither `<architecture>.vocab_size` nor a token list.
    /// - Throws: `FormatsError.invalidModel` if the file is of another architecture or a key is
    ///   missing.
    public static func configJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, tensorNames: [String]? = nil,
                                  embeddingRows: Int? = nil, source: String = "GGUF",
                                  architecture arch: GGUFModelArchitecture = .llama) throws -> Data {
        precondition(arch != .gemma3, "LlamaMetadata.configJSON: Gemma-3 has Gemma3Metadata")
        let p = arch.rawValue
        guard metadata["general.architecture"]?.stringValue == p else {
            throw FormatsError.invalidModel(file: source, reason: "general.architecture is \(metadata["general.architecture"]?.description ?? "missing"), expected \"\(p)\"")
        }
        func int(_ k: String) throws -> Int {
            guard let v = metadata[k]?.intValue else { throw FormatsError.invalidModel(file: source, reason: "missing integer key \(k)") }
            return v
        }
        let hidden = try int("\(p).embedding_length")
        let heads = try int("\(p).attention.head_count")
        let vocab = metadata["\(p).vocab_size"]?.intValue ?? metadata["tokenizer.ggml.tokens"]?.arrayValue?.count ?? embeddingRows
        guard let vocab else {
            throw FormatsError.invalidModel(file: source, reason: "no \(p).vocab_size, tokenizer.ggml.tokens or token_embd.weight")
        }
        let headDim = metadata["\(p).attention.key_length"]?.intValue ?? metadata["\(p).rope.dimension_count"]?.intValue ?? hidden / max(heads, 1)
        let names = Set(tensorNames ?? [])
        var rope: [(String, JSONValue)] = [("rope_theta", .float(Float(metadata["\(p).rope.freq_base"]?.doubleValue ?? 10000)))]
        if metadata["\(p).rope.scaling.type"]?.stringValue == "linear", let f = metadata["\(p).rope.scaling.factor"]?.doubleValue {
            rope += [("rope_type", .string("linear")), ("factor", .float(Float(f)))]
        } else {
            rope.append(("rope_type", .string("default")))
        }
        var pairs: [(String, JSONValue)] = [
            ("architectures", .array([.string(arch.huggingFaceNames.architecture)])),
            ("model_type", .string(arch.huggingFaceNames.modelType)),
            ("vocab_size", .int(vocab)),
            ("hidden_size", .int(hidden)),
            ("intermediate_size", .int(try int("\(p).feed_forward_length"))),
            ("num_hidden_layers", .int(try int("\(p).block_count"))),
            ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(metadata["\(p).attention.head_count_kv"]?.intValue ?? heads)),
            ("head_dim", .int(headDim)),
            ("rms_norm_eps", .float(Float(metadata["\(p).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5))),
            ("max_position_embeddings", .int(metadata["\(p).context_length"]?.intValue ?? 2048)),
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
