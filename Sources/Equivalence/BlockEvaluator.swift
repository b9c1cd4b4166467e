import Foundation
import Runtime
import Tensors

/// Everything one Llama decoder layer computes on one sequence, tokens as rows (`[T, ·]`, row t
/// at position `positions.lowerBound + t`, causal attention within the sequence).
///
/// Block: h → n₁ = RMSNorm₁(h) → Attn(n₁) → Y = h + Attn → u = RMSNorm₂(Y) →
/// a_g = u·W_gᵀ, a_u = u·W_uᵀ, m = SiLU(a_g) ⊙ a_u → X = m·W_dᵀ → Z = Y + X.
public struct BlockActivations: Sendable {
    /// Block input h `[T, d]`.
    public var input: Tensor
    /// n₁ = RMSNorm₁(h) `[T, d]` (input of q, k, v).
    public var normedInput: Tensor
    /// ρ₁ `[T]`: 1/√(mean(h²) + eps) per token.
    public var inverseRMS1: [Float]
    /// Queries after RoPE `[T, heads·head_dim]`.
    public var queries: Tensor
    /// Keys after RoPE `[T, kv_heads·head_dim]`.
    public var keys: Tensor
    /// Values `[T, kv_heads·head_dim]`.
    public var values: Tensor
    /// Attention probabilities `[heads·T, T]`: rows h·T..<(h+1)·T are head h's softmax (zero
    /// above the diagonal).
    public var probabilities: Tensor
    /// Concatenated head outputs, the o_proj input `[T, heads·head_dim]`.
    public var attentionContext: Tensor
    /// o_proj output Attn(n₁) `[T, d]` (HookSite `attentionOutput`).
    public var attentionOutput: Tensor
    /// Y = h + Attn `[T, d]` (HookSite `mlpInput`).
    public var mlpInput: Tensor
    /// u = RMSNorm₂(Y) `[T, d]` (input of gate and up).
    public var normedMLPInput: Tensor
    /// ρ₂ `[T]`.
    public var inverseRMS2: [Float]
    /// a_g `[T, d_ff]`.
    public var gatePreActivation: Tensor
    /// a_u `[T, d_ff]`.
    public var upPreActivation: Tensor
    /// m = SiLU(a_g) ⊙ a_u `[T, d_ff]` (the down_proj input).
    public var hidden: Tensor
    /// X = m·W_dᵀ `[T, d]` (HookSite `mlpOutput`).
    public var mlpOutput: Tensor
    /// Z = Y + X `[T, d]` (HookSite `blockOutput`).
    public var output: Tensor
    /// Positions of the rows.
    public var positions: Range<Int>
}

/// First-order changes of a block's outputs (tokens as rows, `[T, d]` each), the JVP of the
/// block along a weight delta and/or an input tangent.
public struct BlockTangent: Sendable {
    /// δAttn: change of the o_proj output.
    public var attentionOutput: Tensor
    /// δY = δh + δAttn.
    public var mlpInput: Tensor
    /// δX: change of the down_proj output (includes the effect of δY through RMSNorm₂).
    public var mlpOutput: Tensor
    /// δZ = δY + δX: the first-order shift of the block output.
    public var output: Tensor
}

/// A steering shift injected at one site of the block during `BlockEvaluator.forward`:
/// the activation `a` at `site` becomes `a + layer.shift(a)`.
public struct BlockIntervention: Sendable {
    public var site: HookSiteKind
    public var layer: SteeringLayer
    public var activation: SteeringActivation

    public init(site: HookSiteKind, layer: SteeringLayer, activation: SteeringActivation = .identity) {
        self.site = site; self.layer = layer; self.activation = activation
    }
}

/// Evaluates one Llama decoder layer (config + `LlamaWeights.Layer` held f32, PyTorch
/// `[out, in]` orientation) on a sequence `[T, d]`, and its forward-mode derivative (JVP) along weight
/// deltas on any of the seven projections and along an input tangent. Everything is batched
/// over tokens with gemms (per head for attention); no per-token loops call BLAS.
public struct BlockEvaluator: Sendable {
    public let config: LlamaConfig
    /// The layer, matrices held f32 (widened on construction when given in another format).
    public let weights: LlamaWeights.Layer
    public let rope: RotaryEmbedding
    /// The gated MLP's activation (SiLU for the Llama family).
    let activation = GatedActivation.silu

    /// - Throws: `EquivalenceError.shapeMismatch` when a weight does not fit the config, or
    ///   `.unsupportedConfiguration` when the heads do not divide, or the runtime's error for a
    ///   RoPE type other than default/linear/llama3 (frequencies are `Runtime.RotaryEmbedding`'s).
    public init(config: LlamaConfig, weights given: LlamaWeights.Layer) throws {
        let weights = given.widened()
        let d = config.hiddenSize, hd = config.headDim, dff = config.intermediateSize
        let nq = config.numAttentionHeads * hd, nkv = config.numKeyValueHeads * hd
        guard config.numKeyValueHeads > 0, config.numAttentionHeads % config.numKeyValueHeads == 0 else {
            throw EquivalenceError.unsupportedConfiguration("heads \(config.numAttentionHeads) not a multiple of kv heads \(config.numKeyValueHeads)")
        }
        let expected: [(String, [Int], [Int])] = [
            ("input_layernorm", weights.inputNorm.shape.dims, [d]), ("q_proj", weights.q.dims, [nq, d]),
            ("k_proj", weights.k.dims, [nkv, d]), ("v_proj", weights.v.dims, [nkv, d]), ("o_proj", weights.o.dims, [d, nq]),
            ("post_attention_layernorm", weights.postAttentionNorm.shape.dims, [d]), ("gate_proj", weights.gate.dims, [dff, d]),
            ("up_proj", weights.up.dims, [dff, d]), ("down_proj", weights.down.dims, [d, dff]),
        ]
        for (name, found, shape) in expected where found != shape {
            throw EquivalenceError.shapeMismatch(what: name, expected: shape, found: found)
        }
        let biases: [(String, Tensor?, Int)] = [("q_proj.bias", weights.qBias, nq), ("k_proj.bias", weights.kBias, nkv),
                                                ("v_proj.bias", weights.vBias, nkv), ("o_proj.bias", weights.oBias, d)]
        for (name, b, n) in biases {
            if let b, b.shape.dims != [n] { throw EquivalenceError.shapeMismatch(what: name, expected: [n], found: b.shape.dims) }
        }
        self.config = config
        self.weights = weights
        self.rope = try RotaryEmbedding(config: config)
    }

    /// The f32 matrix `[out, in]` of projection `p` (held f32: no copy).
    func matrix(_ p: LlamaProjection) -> Tensor { weights[p].dense }

    /// The same layer with `t · ΔW` added to the weights (dense), for exact (oracle) shifts.
    public func applying(_ delta: LayerWeightDelta, scale t: Float = 1) throws -> BlockEvaluator {
        try delta.validate(against: weights)
        return try BlockEvaluator(config: config, weights: weights.adding(delta, scale: t))
    }

    private func checkInput(_ h: Tensor, _ what: String) throws {
        guard h.rank == 2, h.columns == config.hiddenSize else {
            throw EquivalenceError.shapeMismatch(what: what, expected: [h.rank == 2 ? h.rows : -1, config.hiddenSize], found: h.shape.dims)
        }
    }

    /// Runs the block on `h` `[T, d]` at positions `positionOffset ..< positionOffset + T`,
    /// optionally adding a steering shift at one site, and keeps every intermediate.
    public func forward(_ h: Tensor, positionOffset: Int = 0, intervention: BlockIntervention? = nil) throws -> BlockActivations {
        try checkInput(h, "block input")
        let t = h.rows
        let heads = config.numAttentionHeads, kvHeads = config.numKeyValueHeads, hd = config.headDim
        let eps = config.rmsNormEps
        func steer(_ x: Tensor, _ site: HookSiteKind) -> Tensor {
            guard let iv = intervention, iv.site == site else { return x }
            return x + iv.layer.shift(x, activation: iv.activation)
        }
        let input = steer(h, .blockInput)
        let (n1, rho1) = RMSNorm.forward(input, gain: weights.inputNorm, eps: eps)
        var q = addBias(matmul(n1, matrix(.q), transposeB: true), weights.qBias)
        var k = addBias(matmul(n1, matrix(.k), transposeB: true), weights.kBias)
        let v = addBias(matmul(n1, matrix(.v), transposeB: true), weights.vBias)
        let positions = positionOffset..<(positionOffset + t)
        let (cosT, sinT) = rope.tables(positions: positions)
        rope.rotate(&q, heads: heads, cos: cosT, sin: sinT)
        rope.rotate(&k, heads: kvHeads, cos: cosT, sin: sinT)
        let (context, probs) = CausalAttention.forwardKeepingProbabilities(queries: q, keys: k, values: v,
                                                                            heads: heads, kvHeads: kvHeads)
        let attn = steer(addBias(matmul(context, matrix(.o), transposeB: true), weights.oBias), .attentionOutput)
        let y = steer(input + attn, .mlpInput)
        let (u, rho2) = RMSNorm.forward(y, gain: weights.postAttentionNorm, eps: eps)
        let ag = matmul(u, matrix(.gate), transposeB: true)
        let au = matmul(u, matrix(.up), transposeB: true)
        let m = activation.forward(gate: ag, up: au)
        let x = steer(matmul(m, matrix(.down), transposeB: true), .mlpOutput)
        let z = steer(y + x, .blockOutput)
        return BlockActivations(
            input: input, normedInput: n1, inverseRMS1: rho1, queries: q, keys: k, values: v, probabilities: probs,
            attentionContext: context, attentionOutput: attn, mlpInput: y, normedMLPInput: u, inverseRMS2: rho2,
            gatePreActivation: ag, upPreActivation: au, hidden: m, mlpOutput: x, output: z, positions: positions)
    }

    /// The MLP's elementwise derivative coefficients at the recorded pre-activations:
    /// `gate` = φ′(a_g) ⊙ a_u, `up` = φ(a_g), so δm = gate ⊙ δa_g + up ⊙ δa_u.
    func mlpCoefficients(_ a: BlockActivations) -> (gate: Tensor, up: Tensor) {
        activation.tangentCoefficients(gate: a.gatePreActivation, up: a.upPreActivation)
    }

    /// The first-order change of the block's outputs at `a` along the weight delta `delta`
    /// (any subset of the seven projections, dense or LoRA) and, optionally, the input tangent
    /// `inputTangent` δh `[T, d]`: the Jacobian–vector product of Z (and of Attn, Y, X) through
    /// RMSNorm₁, q/k/v with RoPE, causal softmax attention with GQA, o_proj, the residual,
    /// RMSNorm₂ and the SwiGLU MLP:
    /// δX = δm·W_dᵀ + m·ΔW_dᵀ, δm = (SiLU′(a_g) ⊙ a_u) ⊙ δa_g + SiLU(a_g) ⊙ δa_u,
    /// δa_g = δu·W_gᵀ + u·ΔW_gᵀ (same for up), δu = RMSNorm₂′(Y)·δY.
    public func jvp(_ a: BlockActivations, delta: LayerWeightDelta, inputTangent: Tensor? = nil) throws -> BlockTangent {
        try delta.validate(against: weights)
        let t = a.input.rows, d = config.hiddenSize
        if let dh = inputTangent {
            guard dh.shape == a.input.shape else {
                throw EquivalenceError.shapeMismatch(what: "input tangent", expected: a.input.shape.dims, found: dh.shape.dims)
            }
        }
        var dAttn = Tensor(shape: [t, d])
        if delta.touchesAttention || inputTangent != nil {
            dAttn = attentionTangent(a, delta: delta, inputTangent: inputTangent)
        }
        var dY = dAttn
        if let dh = inputTangent { accumulate(&dY, dh) }
        let du = RMSNorm.tangent(a.mlpInput, inverseRMS: a.inverseRMS2, gain: weights.postAttentionNorm, dx: dY)
        var dag = matmul(du, matrix(.gate), transposeB: true)
        if let dg = delta[.gate] { accumulate(&dag, dg.apply(a.normedMLPInput)) }
        var dau = matmul(du, matrix(.up), transposeB: true)
        if let dup = delta[.up] { accumulate(&dau, dup.apply(a.normedMLPInput)) }
        let coef = mlpCoefficients(a)
        let dm = hadamardSum(coef.gate, dag, coef.up, dau)
        var dX = matmul(dm, matrix(.down), transposeB: true)
        if let dd = delta[.down] { accumulate(&dX, dd.apply(a.hidden)) }
        return BlockTangent(attentionOutput: dAttn, mlpInput: dY, mlpOutput: dX, output: dY + dX)
    }

    /// δAttn `[T, d]` along `delta` (q, k, v, o parts) and δh.
    private func attentionTangent(_ a: BlockActivations, delta: LayerWeightDelta, inputTangent: Tensor?) -> Tensor {
        let t = a.input.rows
        let heads = config.numAttentionHeads, kvHeads = config.numKeyValueHeads
        let dn1 = inputTangent.map { RMSNorm.tangent(a.input, inverseRMS: a.inverseRMS1, gain: weights.inputNorm, dx: $0) }
        func projTangent(_ p: LlamaProjection, _ w: Tensor) -> Tensor? {
            var out: Tensor? = dn1.map { matmul($0, w, transposeB: true) }
            if let dp = delta[p] {
                let part = dp.apply(a.normedInput)
                if out == nil { out = part } else { accumulate(&out!, part) }
            }
            return out
        }
        let (cosT, sinT) = rope.tables(positions: a.positions)
        var dq = projTangent(.q, matrix(.q))
        var dk = projTangent(.k, matrix(.k))
        let dv = projTangent(.v, matrix(.v))
        if dq != nil { rope.rotate(&dq!, heads: heads, cos: cosT, sin: sinT) }
        if dk != nil { rope.rotate(&dk!, heads: kvHeads, cos: cosT, sin: sinT) }
        let dContext = CausalAttention.tangent(queries: a.queries, keys: a.keys, values: a.values, probabilities: a.probabilities,
                                               dq: dq, dk: dk, dv: dv, heads: heads, kvHeads: kvHeads)
        var dAttn = matmul(dContext, matrix(.o), transposeB: true)
        if let dO = delta[.o] { accumulate(&dAttn, dO.apply(a.attentionContext)) }
        return dAttn
    }
}
