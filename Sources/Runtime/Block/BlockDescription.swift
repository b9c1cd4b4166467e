/// What one decoder layer computes, as data: the block (`DecoderBlock`) is written once and an
/// architecture is a list of these plus its tensor names. Every layer of Llama, Mistral and Qwen2
/// is pre-norm (RMSNorm₁ → attention → residual add → RMSNorm₂ → gated MLP → residual add) with
/// full causal attention. Biases are not described here: a projection adds one when its layer's
/// weights hold it (`LlamaArchitecture` decides which ones are loaded).
public struct BlockDescription: Sendable, Equatable {
    /// The gated MLP's activation φ in m = φ(a_g) ⊙ a_u.
    public var activation: GatedActivation
    /// ε of both RMSNorms.
    public var normEpsilon: Float

    public init(activation: GatedActivation = .silu, normEpsilon: Float) {
        self.activation = activation; self.normEpsilon = normEpsilon
    }

    /// A layer of a Llama-family model with `config` (every layer of Llama, Mistral and Qwen2 is
    /// the same: SiLU, `rms_norm_eps`).
    public init(config: LlamaConfig) {
        self.init(activation: .silu, normEpsilon: config.rmsNormEps)
    }

    /// The description of every layer (0-based) of a Llama-family model with `config`.
    static func layers(config: LlamaConfig) -> [BlockDescription] {
        Array(repeating: BlockDescription(config: config), count: config.numHiddenLayers)
    }
}
