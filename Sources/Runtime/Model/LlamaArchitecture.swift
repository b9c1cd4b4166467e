/// What the runtime makes of a config's architecture name: which projections carry biases and
/// which of the block's optional parts the layers have. Llama, Mistral, Qwen2, Qwen3 and Gemma-3
/// (text) share one computation (`DecoderBlock`) and differ only here and in `BlockDescription`.
public struct LlamaArchitecture: Sendable, Equatable {
    /// `architectures[0]` as read from the config.
    public var name: String
    /// q_proj, k_proj and v_proj carry `[out]` biases (Qwen2 always; Llama with `attention_bias`).
    public var qkvBias: Bool
    /// o_proj carries a `[d]` bias (Llama with `attention_bias`; never Qwen2).
    public var outputBias: Bool
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3, Gemma-3).
    public var queryKeyNorms = false
    /// RMSNorm on the attention and MLP outputs before their residual adds, the pre-MLP norm
    /// named `pre_feedforward_layernorm` (Gemma).
    public var sandwichNorms = false
    /// Checkpoints store RMSNorm gains as w in x·r·(1 + w) (Gemma's Hugging Face layout).
    public var normGainOffset = false
    /// Token embeddings are multiplied by √d (Gemma).
    public var scalesEmbeddings = false

    /// Architecture names the runtime accepts.
    public static let supportedNames: [String] = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                                  "Gemma3ForCausalLM"]

    /// Names refused with a reason rather than as unknown.
    static let refusedNames: [String: String] = [
        "Gemma3ForConditionalGeneration": "the multimodal Gemma-3 (vision tower and projector) is not supported; its text model (Gemma3ForCausalLM) is",
        "Gemma2ForCausalLM": "Gemma-2 (attention and final-logit soft-capping, no q/k norms) is not supported; Gemma-3 is",
        "GemmaForCausalLM": "Gemma (the first) is not supported; Gemma-3 is",
    ]

    /// RoPE types the runtime implements (transformers' `rope_type`).
    public static let supportedRopeTypes: [String] = ["default", "linear", "llama3"]

    /// Resolves and checks `config`: the architecture by name, the RoPE type, and features the
    /// runtime does not implement (MLP biases). `source` names the config in errors.
    /// - Throws: `RuntimeError.unsupportedArchitecture`, `.unsupportedFeature` or `.invalidConfig`.
    public init(config: LlamaConfig, source: String) throws {
        // `architectures[0]` names the class; LlamaConfig defaults it to Llama when absent, and
        // then `model_type` (what transformers' Auto classes go by) decides.
        let byModelType = ["llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                           "gemma3_text": "Gemma3ForCausalLM", "gemma3": "Gemma3ForConditionalGeneration",
                           "gemma2": "Gemma2ForCausalLM", "gemma": "GemmaForCausalLM"]
        if config.architecture == "LlamaForCausalLM" && config.modelType != "llama" && !config.modelType.isEmpty {
            guard let resolved = byModelType[config.modelType] else {
                throw RuntimeError.unsupportedArchitecture(
                    "\(config.architecture) with model_type '\(config.modelType)'", source: source)
            }
            name = resolved
        } else {
            name = config.architecture
        }
        if let reason = Self.refusedNames[name] {
            throw RuntimeError.unsupportedFeature("\(name): \(reason)", source: source)
        }
        switch name {
        case "LlamaForCausalLM", "MistralForCausalLM":
            qkvBias = config.attentionBias
            outputBias = config.attentionBias
        case "Qwen2ForCausalLM":
            qkvBias = true
            outputBias = false
        case "Qwen3ForCausalLM":
            // q/k/v and o biases together with `attention_bias` (default false), per-head q/k
            // norms with plain gains; head_dim is its own key (not hidden_size / heads).
            qkvBias = config.attentionBias
            outputBias = config.attentionBias
            queryKeyNorms = true
        case "Gemma3ForCausalLM":
            qkvBias = config.attentionBias
            outputBias = config.attentionBias
            queryKeyNorms = true; sandwichNorms = true; normGainOffset = true; scalesEmbeddings = true
        default:
            throw RuntimeError.unsupportedArchitecture(config.architecture, source: source)
        }
        guard GatedActivation(configName: config.hiddenActivation) != nil else {
            throw RuntimeError.unsupportedFeature("hidden activation '\(config.hiddenActivation)'", source: source)
        }
        if let cap = config.finalLogitSoftcapping {
            throw RuntimeError.unsupportedFeature("final_logit_softcapping \(cap)", source: source)
        }
        if let cap = config.attentionLogitSoftcapping {
            throw RuntimeError.unsupportedFeature("attn_logit_softcapping \(cap)", source: source)
        }
        if let types = config.layerTypes {
            guard types.count == config.numHiddenLayers,
                  types.allSatisfy({ $0 == LlamaConfig.slidingAttention || $0 == LlamaConfig.fullAttention }) else {
                throw RuntimeError.invalidConfig(source: source, reason: "layer_types must name \(config.numHiddenLayers) layers, each sliding_attention or full_attention")
            }
            if types.contains(LlamaConfig.slidingAttention) {
                guard let w = config.slidingWindow, w > 0 else {
                    throw RuntimeError.invalidConfig(source: source, reason: "sliding_attention layers need a positive sliding_window")
                }
            }
        }
        if let s = config.queryPreAttnScalar, !(s.isFinite && s > 0) {
            throw RuntimeError.invalidConfig(source: source, reason: "query_pre_attn_scalar must be positive, got \(s)")
        }
        guard !config.mlpBias else {
            throw RuntimeError.unsupportedFeature("mlp_bias = true", source: source)
        }
        for rope in [config.rope] + (config.localRope.map { [$0] } ?? []) {
            guard Self.supportedRopeTypes.contains(rope.ropeType) else {
                throw RuntimeError.unsupportedFeature("rope_type '\(rope.ropeType)'", source: source)
            }
        }
        let dims: [(String, Int)] = [
            ("vocab_size", config.vocabSize), ("hidden_size", config.hiddenSize),
            ("intermediate_size", config.intermediateSize), ("num_hidden_layers", config.numHiddenLayers),
            ("num_attention_heads", config.numAttentionHeads),
            ("num_key_value_heads", config.numKeyValueHeads), ("head_dim", config.headDim),
        ]
        for (key, value) in dims where value <= 0 || value > 1 << 24 {
            throw RuntimeError.invalidConfig(source: source, reason: "\(key) = \(value) is outside 1...\(1 << 24)")
        }
        guard config.numAttentionHeads % config.numKeyValueHeads == 0 else {
            throw RuntimeError.invalidConfig(
                source: source,
                reason: "num_attention_heads \(config.numAttentionHeads) is not a multiple of num_key_value_heads \(config.numKeyValueHeads)")
        }
        guard config.headDim % 2 == 0 else {
            throw RuntimeError.invalidConfig(source: source, reason: "head_dim \(config.headDim) must be even for RoPE")
        }
        guard config.rmsNormEps.isFinite, config.rmsNormEps >= 0, config.rope.theta.isFinite, config.rope.theta > 0 else {
            throw RuntimeError.invalidConfig(source: source, reason: "rms_norm_eps and rope_theta must be finite and positive")
        }
    }
}
