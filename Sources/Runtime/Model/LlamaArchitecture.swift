/// What the runtime makes of a config's architecture name: which projections carry biases.
/// Llama, Mistral and Qwen2 share one computation and differ only here.
public struct LlamaArchitecture: Sendable, Equatable {
    /// `architectures[0]` as read from the config.
    public var name: String
    /// q_proj, k_proj and v_proj carry `[out]` biases (Qwen2 always; Llama with `attention_bias`).
    public var qkvBias: Bool
    /// o_proj carries a `[d]` bias (Llama with `attention_bias`; never Qwen2).
    public var outputBias: Bool

    /// Architecture names the runtime accepts.
    public static let supportedNames: [String] = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]

    /// RoPE types the runtime implements (transformers' `rope_type`).
    public static let supportedRopeTypes: [String] = ["default", "linear", "llama3"]

    /// Resolves and checks `config`: the architecture by name, the RoPE type, and features the
    /// runtime does not implement (MLP biases). `source` names the config in errors.
    /// - Throws: `RuntimeError.unsupportedArchitecture`, `.unsupportedFeature` or `.invalidConfig`.
    public init(config: LlamaConfig, source: String) throws {
        // `architectures[0]` names the class; LlamaConfig defaults it to Llama when absent, and
        // then `model_type` (what transformers' Auto classes go by) decides.
        let byModelType = ["llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"]
        if config.architecture == "LlamaForCausalLM" && config.modelType != "llama" && !config.modelType.isEmpty {
            guard let resolved = byModelType[config.modelType] else {
                throw RuntimeError.unsupportedArchitecture(
                    "\(config.architecture) with model_type '\(config.modelType)'", source: source)
            }
            name = resolved
        } else {
            name = config.architecture
        }
        switch name {
        case "LlamaForCausalLM", "MistralForCausalLM":
            qkvBias = config.attentionBias
            outputBias = config.attentionBias
        case "Qwen2ForCausalLM":
            qkvBias = true
            outputBias = false
        default:
            throw RuntimeError.unsupportedArchitecture(config.architecture, source: source)
        }
        guard !config.mlpBias else {
            throw RuntimeError.unsupportedFeature("mlp_bias = true", source: source)
        }
        guard Self.supportedRopeTypes.contains(config.rope.ropeType) else {
            throw RuntimeError.unsupportedFeature("rope_type '\(config.rope.ropeType)'", source: source)
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
