/// What one decoder layer computes, as data: the block (`DecoderBlock`) is written once and an
/// architecture is a list of these plus its tensor names. Every layer is pre-norm: RMSNorm₁ →
/// attention → residual add → RMSNorm₂ → gated MLP → residual add. Llama, Mistral and Qwen2 layers
/// use SiLU, scores scaled by 1/√head_dim and full causal attention; Gemma-3's use GELU-tanh,
/// `query_pre_attn_scalar`^(-1/2), a sliding window on five of every six layers with their own
/// RoPE base, and norms of their own (per-head q/k norms before RoPE, norms on the attention and
/// MLP outputs before the residual adds), which the block applies where the layer's weights hold
/// them. Biases are not described here either: a projection adds one when its layer's weights hold
/// it (`LlamaArchitecture` decides which ones are loaded).
public struct BlockDescription: Sendable, Equatable {
    /// Which of the model's two RoPE tables a layer rotates with.
    public enum Rotary: Sendable, Equatable {
        /// `LlamaConfig.rope` (every layer of Llama, Mistral, Qwen2; Gemma-3's full-attention layers).
        case global
        /// `LlamaConfig.localRope` (Gemma-3's sliding-window layers).
        case local
    }

    /// The gated MLP's activation φ in m = φ(a_g) ⊙ a_u.
    public var activation: GatedActivation
    /// ε of every RMSNorm of the layer.
    public var normEpsilon: Float
    /// Attention scores are multiplied by this (nil: 1/√head_dim).
    public var attentionScale: Float?
    /// A query sees only the keys of the last `slidingWindow` positions, its own included (nil:
    /// every earlier position).
    public var slidingWindow: Int?
    /// The RoPE table of the layer.
    public var rotary: Rotary

    public init(activation: GatedActivation = .silu, normEpsilon: Float, attentionScale: Float? = nil,
                slidingWindow: Int? = nil, rotary: Rotary = .global) {
        self.activation = activation; self.normEpsilon = normEpsilon; self.attentionScale = attentionScale
        self.slidingWindow = slidingWindow; self.rotary = rotary
    }

    /// Layer `layer` (0-based) of a model with `config`: its activation (`hidden_activation`),
    /// `rms_norm_eps`, the score scale (`query_pre_attn_scalar`), and for a "sliding_attention"
    /// layer of `layer_types` the window and the local RoPE table.
    public init(config: LlamaConfig, layer: Int = 0) {
        let sliding = config.layerTypes.map { layer < $0.count && $0[layer] == LlamaConfig.slidingAttention } ?? false
        self.init(activation: GatedActivation(configName: config.hiddenActivation) ?? .silu, normEpsilon: config.rmsNormEps,
                  attentionScale: config.queryPreAttnScalar.map { Float(1 / Double($0).squareRoot()) },
                  slidingWindow: sliding ? config.slidingWindow : nil,
                  rotary: sliding && config.localRope != nil ? .local : .global)
    }

    /// The description of every layer (0-based) of a model with `config`.
    static func layers(config: LlamaConfig) -> [BlockDescription] {
        (0..<config.numHiddenLayers).map { BlockDescription(config: config, layer: $0) }
    }
}
