import Foundation
import Runtime
import Tensors

/// Evaluates one decoder layer (config + `LlamaWeights.Layer` held f32, PyTorch
/// `[out, in]` orientation) on a sequence `[T, d]`, its forward-mode derivative (JVP) along weight
/// deltas on any of the seven projections and along an input tangent, and the adjoint of that
/// with respect to the weights: the first-order map. The computation is the model's own block
/// (`Runtime.DecoderBlock`: `record`, `tangent`, `weightCotangent`); this type checks shapes
/// and speaks in Equivalence's weight deltas.
public struct FirstOrderMap: Sendable {
    public let config: LlamaConfig
    /// The layer's index (0-based): it picks the layer's description (window, RoPE table).
    public let layer: Int
    /// The layer, matrices held f32 (widened on construction when given in another format).
    public let weights: LlamaWeights.Layer
    /// The layer's RoPE frequencies (Gemma-3's sliding-window layers have their own).
    public let rope: RotaryEmbedding
    /// The model's block over these weights: every computation below is one of its methods.
    let block: DecoderBlock

    /// - Throws: `EquivalenceError.shapeMismatch` when a weight does not fit the config, or
    ///   `.unsupportedConfiguration` when the heads do not divide, or the runtime's error for a
    ///   RoPE type other than default/linear/llama3 (frequencies are `Runtime.RotaryEmbedding`'s).
    public init(config: LlamaConfig, weights given: LlamaWeights.Layer, layer: Int = 0) throws {
        let weights = given.widened()
        let d = config.hiddenSize, hd = config.headDim
        let nq = config.numAttentionHeads * hd, nkv = config.numKeyValueHeads * hd
        guard config.numKeyValueHeads > 0, config.numAttentionHeads % config.numKeyValueHeads == 0 else {
            throw EquivalenceError.unsupportedConfiguration("heads \(config.numAttentionHeads) not a multiple of kv heads \(config.numKeyValueHeads)")
        }
        let shapes: [(String, [Int]?, [Int])] = [
            ("input_layernorm", weights.inputNorm.shape.dims, [d]), ("post_attention_layernorm", weights.mlpNorm.shape.dims, [d]),
            ("q_proj.bias", weights.qBias?.shape.dims, [nq]), ("k_proj.bias", weights.kBias?.shape.dims, [nkv]),
            ("v_proj.bias", weights.vBias?.shape.dims, [nkv]), ("o_proj.bias", weights.oBias?.shape.dims, [d]),
        ] + LlamaProjection.allCases.map { ($0.rawValue, weights[$0].dims, [$0.outputSize(config), $0.inputSize(config)]) }
        for case let (name, found?, shape) in shapes where found != shape {
            throw EquivalenceError.shapeMismatch(what: name, expected: shape, found: found)
        }
        let description = BlockDescription(config: config, layer: layer)
        var ropeConfig = config
        if description.rotary == .local, let local = config.localRope { ropeConfig.rope = local }
        self.config = config
        self.layer = layer
        self.weights = weights
        self.rope = try RotaryEmbedding(config: ropeConfig)
        self.block = DecoderBlock(description: description, weights: weights)
    }

    /// The f32 matrix `[out, in]` of projection `p` (held f32: no copy).
    func matrix(_ p: LlamaProjection) -> Tensor { weights[p].dense }

    /// The same layer with `t · ΔW` added to the weights (dense), for exact (oracle) shifts.
    public func applying(_ delta: LayerWeightDelta, scale t: Float = 1) throws -> FirstOrderMap {
        try delta.validate(against: weights)
        return try FirstOrderMap(config: config, weights: weights.adding(delta, scale: t), layer: layer)
    }

    private func checkInput(_ h: Tensor, _ what: String) throws {
        guard h.rank == 2, h.columns == config.hiddenSize else {
            throw EquivalenceError.shapeMismatch(what: what, expected: [h.rank == 2 ? h.rows : -1, config.hiddenSize], found: h.shape.dims)
        }
    }

    /// Runs the block on `h` `[T, d]` at positions `positionOffset ..< positionOffset + T`,
    /// optionally adding a steering shift at one site, and keeps every intermediate
    /// (`DecoderBlock.record`: the model's own block).
    public func forward(_ h: Tensor, positionOffset: Int = 0, intervention: BlockIntervention? = nil) throws -> BlockActivations {
        try checkInput(h, "block input")
        return try block.record(h, positions: positionOffset..<(positionOffset + h.rows), rotary: rope, config: config,
                                intervention: intervention)
    }

    /// The first-order change of the block's outputs at `a` along the weight delta `delta`
    /// (any subset of the seven projections, dense or LoRA) and, optionally, the input tangent
    /// δh `[T, d]` (`DecoderBlock.tangent`).
    public func jvp(_ a: BlockActivations, delta: LayerWeightDelta, inputTangent: Tensor? = nil) throws -> BlockTangent {
        try delta.validate(against: weights)
        if let dh = inputTangent, dh.shape != a.input.shape {
            throw EquivalenceError.shapeMismatch(what: "input tangent", expected: a.input.shape.dims, found: dh.shape.dims)
        }
        return block.tangent(a, rotary: rope, config: config, changed: Set(delta.projections.keys),
                             delta: { p, x in delta[p]?.apply(x) }, inputTangent: inputTangent)
    }

    /// The adjoint of `jvp` with respect to the weights: for a cotangent G = ∂L/∂Z `[T, d]` of
    /// the block output, ∂L/∂W_p `[out, in]` for each requested projection p, i.e. the ΔW_p
    /// with ⟨jvp(ΔW), G⟩_F = Σ_p ⟨ΔW_p, result[p]⟩_F for every delta (`DecoderBlock.weightCotangent`).
    public func weightCotangent(_ a: BlockActivations, outputCotangent g: Tensor, projections: Set<LlamaProjection>) throws -> [LlamaProjection: Tensor] {
        guard g.shape == a.output.shape else {
            throw EquivalenceError.shapeMismatch(what: "output cotangent", expected: a.output.shape.dims, found: g.shape.dims)
        }
        return block.weightCotangent(a, outputCotangent: g, projections: projections, rotary: rope, config: config)
    }
}
