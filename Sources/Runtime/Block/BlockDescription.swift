/// What one decoder layer computes, as data: the block (`DecoderBlock`) is written once and an
/// architecture is a list of these plus its tensor names. Every layer of Llama, Mistral and Qwen2
/// is pre-norm (RMSNorm₁ → attention → residual add → RMSNorm₂ → gated MLP → residual add) with
/// full causal attention; they differ in biases.
public struct BlockDescription: Sendable, Equatable {
    /// The gated MLP's activation φ in m = φ(a_g) ⊙ a_u.
    public var activation: GatedActivation
    /// q_proj, k_proj and v_proj carry `[out]` biases.
    public var qkvBias: Bool
    /// o_proj carries a `[d]` bias.
    public var outputBias: Bool
    /// ε of both RMSNorms.
    public var normEpsilon: Float

    public init(activation: GatedActivation = .silu, qkvBias: Bool = false, outputBias: Bool = false, normEpsilon: Float) {
        self.activation = activation; self.qkvBias = qkvBias; self.outputBias = outputBias; self.normEpsilon = normEpsilon
    }

    /// The description of every layer (0-based) of a model of `architecture` with `config`.
    static func layers(_ architecture: LlamaArchitecture, config: LlamaConfig) -> [BlockDescription] {
        let one = BlockDescription(activation: .silu, qkvBias: architecture.qkvBias, outputBias: architecture.outputBias,
                                   normEpsilon: config.rmsNormEps)
        return Array(repeating: one, count: config.numHiddenLayers)
    }
}
