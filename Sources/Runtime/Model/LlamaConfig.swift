import Foundation

/// Hyperparameters of a Llama-family causal LM, decoded from a Hugging Face `config.json`
/// (both the transformers-5 layout with `rope_parameters` and the older top-level
/// `rope_theta` / `rope_scaling`). GGUF files reach this type through the Formats module's
/// `llama.*` ⇄ config.json mapping, so there is one decoding path.
public struct LlamaConfig: Sendable, Equatable, Codable {
    /// `architectures[0]`, e.g. "LlamaForCausalLM".
    public var architecture: String
    /// `model_type`, e.g. "llama".
    public var modelType: String
    public var vocabSize: Int
    /// Residual width d.
    public var hiddenSize: Int
    /// MLP inner width d_ff.
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    /// Key/value heads (grouped-query attention); equals `numAttentionHeads` when absent.
    public var numKeyValueHeads: Int
    /// Per-head width; `hidden_size / num_attention_heads` when `head_dim` is absent.
    public var headDim: Int
    public var rmsNormEps: Float
    public var maxPositionEmbeddings: Int
    /// Whether lm_head shares the token-embedding matrix.
    public var tieWordEmbeddings: Bool
    /// q/k/v (and o) projections carry biases (Qwen2-style `attention_bias`).
    public var attentionBias: Bool
    /// MLP projections carry biases (`mlp_bias`).
    public var mlpBias: Bool
    public var rope: RopeParameters
    public var bosTokenId: Int?
    /// One or more end-of-sequence ids (`eos_token_id` may be an int or a list).
    public var eosTokenIds: [Int]
    /// The MLP activation's name (`hidden_activation`, else `hidden_act`; "silu" when absent).
    public var hiddenActivation: String = "silu"
    /// Attention scores are scaled by `query_pre_attn_scalar`^(-1/2) when set (Gemma), else by
    /// head_dim^(-1/2).
    public var queryPreAttnScalar: Float?
    /// Keys a sliding-window layer sees: the last `sliding_window` positions (nil: no window).
    public var slidingWindow: Int?
    /// Per layer (0-based) "sliding_attention" or "full_attention" (`layer_types`, or Gemma-3's
    /// `sliding_window_pattern`: every sixth layer full by default, or, for configs written
    /// before `layer_types`, as transformers derives them: Mistral's `sliding_window` on every
    /// layer, Qwen2/Qwen3's from `max_window_layers` on with `use_sliding_window`); nil: every
    /// layer full.
    public var layerTypes: [String]?
    /// RoPE of the sliding-window layers when they have their own (Gemma-3: base 10,000; `rope`
    /// is then the full-attention layers'); nil: every layer uses `rope`.
    public var localRope: RopeParameters?
    /// tanh soft-capping of the logits and of the attention scores (`final_logit_softcapping`,
    /// `attn_logit_softcapping`); nil when not set.
    public var finalLogitSoftcapping: Float?, attentionLogitSoftcapping: Float?

    /// RoPE frequency parameters.
    public struct RopeParameters: Sendable, Equatable, Codable {
        /// "default", "linear" or "llama3" (others are rejected by the runtime by name).
        public var ropeType: String
        public var theta: Float
        /// Scaling factor for "linear" and "llama3".
        public var factor: Float?
        public var lowFreqFactor: Float?
        public var highFreqFactor: Float?
        public var originalMaxPositionEmbeddings: Int?

        public init(ropeType: String = "default", theta: Float, factor: Float? = nil,
                    lowFreqFactor: Float? = nil, highFreqFactor: Float? = nil,
                    originalMaxPositionEmbeddings: Int? = nil) {
            self.ropeType = ropeType; self.theta = theta; self.factor = factor
            self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor
            self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        }
    }

    /// Memberwise initialiser (tests and synthetic models).
    public init(architecture: String = "LlamaForCausalLM", modelType: String = "llama",
                vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int? = nil,
                rmsNormEps: Float = 1e-5, maxPositionEmbeddings: Int = 2048,
                tieWordEmbeddings: Bool = false, attentionBias: Bool = false, mlpBias: Bool = false,
                rope: RopeParameters = RopeParameters(theta: 10000),
                bosTokenId: Int? = nil, eosTokenIds: [Int] = []) {
        self.architecture = architecture; self.modelType = modelType
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)
        self.rmsNormEps = rmsNormEps; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings; self.attentionBias = attentionBias
        self.mlpBias = mlpBias; self.rope = rope; self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
    }

    /// Reads `config.json`; `source` names the file in errors.
    public static func load(configJSON data: Data, source: String) throws -> LlamaConfig {
        do {
            return try JSONDecoder().decode(LlamaConfig.self, from: data)
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError.invalidConfig(source: source, reason: "\(error)")
        }
    }

    private enum Keys: String, CodingKey {
        case architectures, modelType = "model_type", vocabSize = "vocab_size"
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias"
        case mlpBias = "mlp_bias", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", hiddenAct = "hidden_act", hiddenActivation = "hidden_activation"
        case queryPreAttnScalar = "query_pre_attn_scalar", slidingWindow = "sliding_window"
        case layerTypes = "layer_types", slidingWindowPattern = "sliding_window_pattern"
        case useSlidingWindow = "use_sliding_window", maxWindowLayers = "max_window_layers"
        case ropeLocalBaseFreq = "rope_local_base_freq"
        case finalLogitSoftcapping = "final_logit_softcapping", attnLogitSoftcapping = "attn_logit_softcapping"
    }

    /// The layer-type names of `layer_types`.
    public static let slidingAttention = "sliding_attention", fullAttention = "full_attention"

    private struct RopeDictionary: Codable {
        var ropeType: String?, type: String?, ropeTheta: Float?, factor: Float?
        var lowFreqFactor: Float?, highFreqFactor: Float?, originalMaxPositionEmbeddings: Int?
        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        architecture = try c.decodeIfPresent([String].self, forKey: .architectures)?.first ?? "LlamaForCausalLM"
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        let heads = numAttentionHeads
        guard heads > 0, hiddenSize > 0, numKeyValueHeads > 0, heads % numKeyValueHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                debugDescription: "need hidden_size > 0 and num_attention_heads a positive multiple of num_key_value_heads")
        }
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / heads
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        // transformers 5: rope_parameters {rope_type, rope_theta, ...}, or per layer type
        // {"full_attention": {...}, "sliding_attention": {...}} (Gemma-3); older: rope_theta +
        // rope_scaling (+ Gemma-3's rope_local_base_freq).
        let perType = try? c.decodeIfPresent([String: RopeDictionary].self, forKey: .ropeParameters)
        let parameters = perType == nil ? try c.decodeIfPresent(RopeDictionary.self, forKey: .ropeParameters)
            : perType?[Self.fullAttention]
        let scaling = try c.decodeIfPresent(RopeDictionary.self, forKey: .ropeScaling)
        let topTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
        let gemma3 = modelType.hasPrefix("gemma3")
        let r = parameters ?? scaling
        rope = RopeParameters(
            ropeType: r?.ropeType ?? r?.type ?? "default",
            theta: parameters?.ropeTheta ?? topTheta ?? (gemma3 ? 1_000_000 : 10000),
            factor: r?.factor, lowFreqFactor: r?.lowFreqFactor, highFreqFactor: r?.highFreqFactor,
            originalMaxPositionEmbeddings: r?.originalMaxPositionEmbeddings)
        let localBase = try c.decodeIfPresent(Float.self, forKey: .ropeLocalBaseFreq)
        if let local = perType?[Self.slidingAttention] {
            localRope = RopeParameters(ropeType: local.ropeType ?? local.type ?? "default", theta: local.ropeTheta ?? localBase ?? 10000,
                                       factor: local.factor, lowFreqFactor: local.lowFreqFactor,
                                       highFreqFactor: local.highFreqFactor,
                                       originalMaxPositionEmbeddings: local.originalMaxPositionEmbeddings)
        } else if gemma3 {
            localRope = RopeParameters(theta: localBase ?? 10000)
        }
        hiddenActivation = try c.decodeIfPresent(String.self, forKey: .hiddenActivation)
            ?? c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        queryPreAttnScalar = try c.decodeIfPresent(Float.self, forKey: .queryPreAttnScalar)
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        if let types = try c.decodeIfPresent([String].self, forKey: .layerTypes) {
            layerTypes = types
        } else if gemma3 {
            let pattern = try c.decodeIfPresent(Int.self, forKey: .slidingWindowPattern) ?? 6
            layerTypes = (0..<numHiddenLayers).map { pattern > 0 && ($0 + 1) % pattern == 0 ? Self.fullAttention : Self.slidingAttention }
        } else if slidingWindow != nil {
            // Configs written before `layer_types`, as transformers reads them: Mistral windows
            // every layer; Qwen2/Qwen3 the layers from `max_window_layers` on, and only with
            // `use_sliding_window`; other families have no window.
            let n = numHiddenLayers
            switch modelType {
            case "mistral":
                layerTypes = Array(repeating: Self.slidingAttention, count: n)
            case "qwen2", "qwen3":
                if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? false {
                    let first = try c.decodeIfPresent(Int.self, forKey: .maxWindowLayers) ?? 28
                    layerTypes = (0..<n).map { $0 >= first ? Self.slidingAttention : Self.fullAttention }
                }
            default:
                break
            }
        }
        finalLogitSoftcapping = try c.decodeIfPresent(Float.self, forKey: .finalLogitSoftcapping)
        attentionLogitSoftcapping = try c.decodeIfPresent(Float.self, forKey: .attnLogitSoftcapping)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenId) ?? []
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode([architecture], forKey: .architectures)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        func dictionary(_ r: RopeParameters) -> RopeDictionary {
            RopeDictionary(ropeType: r.ropeType, type: nil, ropeTheta: r.theta, factor: r.factor,
                           lowFreqFactor: r.lowFreqFactor, highFreqFactor: r.highFreqFactor,
                           originalMaxPositionEmbeddings: r.originalMaxPositionEmbeddings)
        }
        if let localRope {
            try c.encode([Self.fullAttention: dictionary(rope), Self.slidingAttention: dictionary(localRope)], forKey: .ropeParameters)
        } else {
            try c.encode(dictionary(rope), forKey: .ropeParameters)
        }
        if hiddenActivation != "silu" { try c.encode(hiddenActivation, forKey: .hiddenActivation) }
        try c.encodeIfPresent(queryPreAttnScalar, forKey: .queryPreAttnScalar)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encodeIfPresent(layerTypes, forKey: .layerTypes)
        try c.encodeIfPresent(finalLogitSoftcapping, forKey: .finalLogitSoftcapping)
        try c.encodeIfPresent(attentionLogitSoftcapping, forKey: .attnLogitSoftcapping)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenId) }
        else if !eosTokenIds.isEmpty { try c.encode(eosTokenIds, forKey: .eosTokenId) }
    }
}
