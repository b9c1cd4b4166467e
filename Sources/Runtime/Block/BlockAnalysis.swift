import Tensors

/// Everything one Llama decoder layer computes on one sequence, tokens as rows (`[T, ·]`, row t
/// at position `positions.lowerBound + t`, causal attention within the sequence).
///
/// Block: h → n₁ = RMSNorm₁(h) → Attn(n₁) → Y = h + Attn → u = RMSNorm₂(Y) →
/// a_g = u·W_gᵀ, a_u = u·W_uᵀ, m = φ(a_g) ⊙ a_u → X = m·W_dᵀ → Z = Y + X.
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
    /// m = φ(a_g) ⊙ a_u `[T, d_ff]` (the down_proj input).
    public var hidden: Tensor
    /// X = m·W_dᵀ `[T, d]` (HookSite `mlpOutput`).
    public var mlpOutput: Tensor
    /// Z = Y + X `[T, d]` (HookSite `blockOutput`).
    public var output: Tensor
    /// Positions of the rows.
    public var positions: Range<Int>
    /// With q/k norms (Gemma-3): q and k as projected, before their norms (`[T, heads·hd]`,
    /// `[T, kv_heads·hd]`), and 1/RMS per head row (`[T·heads]`, `[T·kv_heads]`).
    public var queriesProjected: Tensor? = nil, keysProjected: Tensor? = nil
    public var inverseRMSQuery: [Float]? = nil, inverseRMSKey: [Float]? = nil
    /// With output norms (Gemma-3): o_proj's and down_proj's outputs before their norms `[T, d]`
    /// and 1/RMS per row `[T]`; `attentionOutput` and `mlpOutput` are then the normed values.
    public var attentionProjected: Tensor? = nil, mlpProjected: Tensor? = nil
    public var inverseRMSAttention: [Float]? = nil, inverseRMSMLP: [Float]? = nil
}

extension Tensor {
    /// The same values as `[rows·heads, columns/heads]`: one row per head (per-head norms).
    func perHeadRows(_ heads: Int) -> Tensor { Tensor(shape: [rows * heads, columns / heads], scalars: scalars) }
    /// The same values as `[rows, columns]`.
    func reshaped(rows r: Int, columns c: Int) -> Tensor { Tensor(shape: [r, c], scalars: scalars) }
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

/// A steering shift injected at one site of the block during `DecoderBlock.record`:
/// the activation `a` at `site` becomes `a + layer.shift(a)`.
public struct BlockIntervention: Sendable {
    public var site: HookSiteKind
    public var layer: SteeringLayer
    public var activation: SteeringActivation

    /// The shift `layer` (with `activation`) at `site`.
    public init(site: HookSiteKind, layer: SteeringLayer, activation: SteeringActivation = .identity) {
        self.site = site; self.layer = layer; self.activation = activation
    }
}


extension ProjectionWeight {
    /// x · Wᵀ `[T, out]` for x `[T, in]` (`multiply(_:tokens:into:ldo:)`).
    public func multiply(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.columns == columns, "multiply: \(x.shape) by a [\(rows), \(columns)] matrix")
        return Tensor(shape: [x.rows, rows]) { o in
            x.withUnsafeBufferPointer { multiply($0.baseAddress!, tokens: x.rows, into: o.baseAddress!, ldo: rows) }
        }
    }

    /// g · W `[T, in]` for g `[T, out]` (`multiplyTransposed(_:tokens:ldg:into:ldo:accumulate:)`).
    public func multiplyTransposed(_ g: Tensor) -> Tensor {
        precondition(g.rank == 2 && g.columns == rows, "multiplyTransposed: \(g.shape) by a [\(rows), \(columns)] matrix")
        return Tensor(shape: [g.rows, columns]) { o in
            g.withUnsafeBufferPointer { multiplyTransposed($0.baseAddress!, tokens: g.rows, ldg: rows, into: o.baseAddress!, ldo: columns) }
        }
    }
}

/// The block for analysis, on tensors: a recorded forward (every intermediate, an optional
/// steering shift at one site), its tangent along weight deltas and an input tangent (the
/// first-order map), and the adjoint of that tangent with respect to the weights. Every step is
/// one of the block's operations; `forward` is the same pass the model runs.
extension DecoderBlock {
    /// Runs the layer on h `[T, d]` at positions `positions` (causal attention within the
    /// sequence; the positions set RoPE's angles), adding `intervention`'s shift at its site, and
    /// keeps every intermediate, the attention probabilities included.
    /// - Throws: `RuntimeError.invalidArgument` when h is not `[T, d]` with T = positions.count.
    public func record(_ h: Tensor, positions: Range<Int>, rotary: RotaryEmbedding, config c: LlamaConfig,
                       intervention: BlockIntervention? = nil) throws -> BlockActivations {
        let T = h.rows, d = c.hiddenSize, kvw = c.numKeyValueHeads * c.headDim
        guard h.rank == 2, h.columns == d, T == positions.count, T > 0 else {
            throw RuntimeError.invalidArgument("block input \(h.shape) for \(positions.count) positions of width \(d)")
        }
        let buf = BlockBuffers(rows: T, config: c, maxLoRARank: loras.values.flatMap { $0 }.map(\.rank).max() ?? 0, useBLAS: true)
        let tape = BlockTape(rows: T, config: c, layer: weights)
        var keys = Tensor(shape: [T, kvw]), values = Tensor(shape: [T, kvw])
        h.withUnsafeBufferPointer { buf.x.update(from: $0.baseAddress!, count: T * d) }
        func tensor(_ p: UnsafePointer<Float>, _ columns: Int) -> Tensor {
            Tensor(shape: [T, columns]) { $0.baseAddress!.update(from: p, count: T * columns) }
        }
        // The tape keeps what the block's backward reads; the three hook-site outputs it lacks are
        // copied as they pass their sites (after the intervention).
        var sites: [HookSiteKind: Tensor] = [:]
        try keys.withUnsafeMutableBufferPointer { kp in
            try values.withUnsafeMutableBufferPointer { vp in
                try forward(buffers: buf, rows: T, start: 0, keys: kp.baseAddress!, values: vp.baseAddress!,
                            rotation: rotary.tables(positions: positions), config: c, tape: tape) { kind, x in
                    if let iv = intervention, iv.site == kind {
                        let a = tensor(x, d)
                        let shifted = a + iv.layer.shift(a, activation: iv.activation)
                        shifted.withUnsafeBufferPointer { x.update(from: $0.baseAddress!, count: T * d) }
                    }
                    if kind == .attentionOutput || kind == .mlpOutput || kind == .blockOutput { sites[kind] = tensor(x, d) }
                }
            }
        }
        let qw = c.numAttentionHeads * c.headDim, ff = c.intermediateSize
        let queries = tensor(tape.queries, qw)
        let probabilities = CausalAttention.probabilities(queries: queries, keys: keys, heads: c.numAttentionHeads,
                                                          kvHeads: c.numKeyValueHeads, scale: description.attentionScale,
                                                          window: description.slidingWindow)
        func floats(_ p: UnsafeMutablePointer<Float>?, _ n: Int) -> [Float]? { p.map { Array(UnsafeBufferPointer(start: $0, count: n)) } }
        var out = BlockActivations(
            input: tensor(tape.blockInput, d), normedInput: tensor(tape.attentionNormed, d),
            inverseRMS1: Array(UnsafeBufferPointer(start: tape.inverseRMS1, count: T)),
            queries: queries, keys: keys, values: values, probabilities: probabilities,
            attentionContext: tensor(tape.attentionHeads, qw), attentionOutput: sites[.attentionOutput]!,
            mlpInput: tensor(tape.mlpInput, d), normedMLPInput: tensor(tape.mlpNormed, d),
            inverseRMS2: Array(UnsafeBufferPointer(start: tape.inverseRMS2, count: T)),
            gatePreActivation: tensor(tape.gatePreactivation, ff), upPreActivation: tensor(tape.upPreactivation, ff),
            hidden: tensor(tape.mlpHidden, ff), mlpOutput: sites[.mlpOutput]!, output: sites[.blockOutput]!,
            positions: positions)
        out.queriesProjected = tape.queriesProjected.map { tensor($0, qw) }
        out.keysProjected = tape.keysProjected.map { tensor($0, kvw) }
        out.inverseRMSQuery = floats(tape.inverseRMSQuery, T * c.numAttentionHeads)
        out.inverseRMSKey = floats(tape.inverseRMSKey, T * c.numKeyValueHeads)
        out.attentionProjected = tape.attentionProjected.map { tensor($0, d) }
        out.mlpProjected = tape.mlpProjected.map { tensor($0, d) }
        out.inverseRMSAttention = floats(tape.inverseRMSAttention, T)
        out.inverseRMSMLP = floats(tape.inverseRMSMLP, T)
        return out
    }

    /// δy of the per-head norm `gain` at x `[T, heads·hd]` (1/RMS per head row) along dx, or dx without a norm.
    private static func headNormTangent(_ x: Tensor?, _ r: [Float]?, _ gain: Tensor?, heads: Int, _ dx: Tensor?) -> Tensor? {
        guard let dx else { return nil }
        guard let x, let r, let gain else { return dx }
        return RMSNorm.tangent(x.perHeadRows(heads), inverseRMS: r, gain: gain, dx: dx.perHeadRows(heads)).reshaped(rows: dx.rows, columns: dx.columns)
    }

    /// δy of the output norm `gain` at x `[T, d]` along dx, or dx without a norm.
    private static func outputNormTangent(_ x: Tensor?, _ r: [Float]?, _ gain: Tensor?, _ dx: Tensor) -> Tensor {
        guard let x, let r, let gain else { return dx }
        return RMSNorm.tangent(x, inverseRMS: r, gain: gain, dx: dx)
    }

    /// The first-order change of the block's outputs at `a` along a weight delta and, optionally,
    /// an input tangent δh `[T, d]`: the Jacobian–vector product of Z (and of Attn, Y, X) through
    /// RMSNorm₁, q/k/v with RoPE, causal softmax attention, o_proj, the residual, RMSNorm₂ and the
    /// gated MLP. `changed` lists the projections the delta touches and `delta(p, x)` returns
    /// x·ΔW_pᵀ for them:
    /// δX = δm·W_dᵀ + m·ΔW_dᵀ, δm = (φ′(a_g) ⊙ a_u) ⊙ δa_g + φ(a_g) ⊙ δa_u,
    /// δa_g = δu·W_gᵀ + u·ΔW_gᵀ (same for up), δu = RMSNorm₂′(Y)·δY.
    public func tangent(_ a: BlockActivations, rotary: RotaryEmbedding, config c: LlamaConfig,
                        changed: Set<LlamaProjection>, delta: (LlamaProjection, Tensor) -> Tensor?,
                        inputTangent: Tensor? = nil) -> BlockTangent {
        let w = weights
        func plus(_ x: Tensor?, _ p: LlamaProjection, _ input: Tensor) -> Tensor? {
            guard changed.contains(p), let part = delta(p, input) else { return x }
            return x.map { $0 + part } ?? part
        }
        var dAttn = Tensor(shape: a.input.shape)
        if changed.contains(where: \.isAttention) || inputTangent != nil {
            let heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
            let dn1 = inputTangent.map { RMSNorm.tangent(a.input, inverseRMS: a.inverseRMS1, gain: w.inputNorm, dx: $0) }
            var dq = Self.headNormTangent(a.queriesProjected, a.inverseRMSQuery, w.queryNorm, heads: heads,
                                          plus(dn1.map { w.q.multiply($0) }, .q, a.normedInput))
            var dk = Self.headNormTangent(a.keysProjected, a.inverseRMSKey, w.keyNorm, heads: kvHeads,
                                          plus(dn1.map { w.k.multiply($0) }, .k, a.normedInput))
            let dv = plus(dn1.map { w.v.multiply($0) }, .v, a.normedInput)
            let rotation = rotary.tables(positions: a.positions)
            if dq != nil { rotation.rotate(&dq!, heads: heads) }
            if dk != nil { rotation.rotate(&dk!, heads: kvHeads) }
            let dContext = CausalAttention.tangent(queries: a.queries, keys: a.keys, values: a.values, probabilities: a.probabilities,
                                                   dq: dq, dk: dk, dv: dv, heads: heads, kvHeads: kvHeads,
                                                   scale: description.attentionScale)
            dAttn = Self.outputNormTangent(a.attentionProjected, a.inverseRMSAttention, w.attentionOutputNorm,
                                           plus(w.o.multiply(dContext), .o, a.attentionContext)!)
        }
        let dY = inputTangent.map { dAttn + $0 } ?? dAttn
        let du = RMSNorm.tangent(a.mlpInput, inverseRMS: a.inverseRMS2, gain: w.mlpNorm, dx: dY)
        let dag = plus(w.gate.multiply(du), .gate, a.normedMLPInput)!
        let dau = plus(w.up.multiply(du), .up, a.normedMLPInput)!
        let coef = description.activation.tangentCoefficients(gate: a.gatePreActivation, up: a.upPreActivation)
        let dm = Tensor(shape: dag.shape, scalars: zip(zip(coef.gate.scalars, dag.scalars), zip(coef.up.scalars, dau.scalars))
            .map { $0.0 * $0.1 + $1.0 * $1.1 })
        let dX = Self.outputNormTangent(a.mlpProjected, a.inverseRMSMLP, w.mlpOutputNorm, plus(w.down.multiply(dm), .down, a.hidden)!)
        return BlockTangent(attentionOutput: dAttn, mlpInput: dY, mlpOutput: dX, output: dY + dX)
    }

    /// The adjoint of `tangent` with respect to the weights: for a cotangent G = ∂L/∂Z `[T, d]`
    /// of the block output, ∂L/∂W_p `[out, in]` for each requested projection p, i.e. the ΔW_p
    /// with ⟨tangent(ΔW), G⟩_F = Σ_p ⟨ΔW_p, result[p]⟩_F. The reverse sweep of the block's
    /// backward (`RMSNorm.backward`, `GatedActivation`'s factors, `CausalAttention.backward` on
    /// the recorded probabilities, RoPE by −θ), each weight gradient gyᵀ·x.
    public func weightCotangent(_ a: BlockActivations, outputCotangent g: Tensor, projections: Set<LlamaProjection>,
                                rotary: RotaryEmbedding, config c: LlamaConfig) -> [LlamaProjection: Tensor] {
        let w = weights
        /// ∂L/∂x before a norm with `gain` at x from gy, or gy without a norm.
        func beforeNorm(_ x: Tensor?, _ r: [Float]?, _ gain: Tensor?, heads: Int = 1, _ gy: Tensor) -> Tensor {
            guard let x, let r, let gain else { return gy }
            if heads == 1 { return RMSNorm.backward(x, inverseRMS: r, gain: gain, gy: gy) }
            return RMSNorm.backward(x.perHeadRows(heads), inverseRMS: r, gain: gain, gy: gy.perHeadRows(heads))
                .reshaped(rows: gy.rows, columns: gy.columns)
        }
        var out: [LlamaProjection: Tensor] = [:]
        let gX = beforeNorm(a.mlpProjected, a.inverseRMSMLP, w.mlpOutputNorm, g)     // ∂L/∂(down_proj output)
        if projections.contains(.down) { out[.down] = matmul(gX, a.hidden, transposeA: true) }
        let needGateUp = projections.contains(.gate) || projections.contains(.up)
        let needAttention = projections.contains { $0.isAttention }
        guard needGateUp || needAttention else { return out }
        let coef = description.activation.tangentCoefficients(gate: a.gatePreActivation, up: a.upPreActivation)
        let gm = w.down.multiplyTransposed(gX)                                   // [T, d_ff]
        let gag = Tensor(shape: gm.shape, scalars: zip(gm.scalars, coef.gate.scalars).map { $0 * $1 })
        let gau = Tensor(shape: gm.shape, scalars: zip(gm.scalars, coef.up.scalars).map { $0 * $1 })
        if projections.contains(.gate) { out[.gate] = matmul(gag, a.normedMLPInput, transposeA: true) }
        if projections.contains(.up) { out[.up] = matmul(gau, a.normedMLPInput, transposeA: true) }
        guard needAttention else { return out }
        let gu = w.gate.multiplyTransposed(gag) + w.up.multiplyTransposed(gau)
        let gy = g + RMSNorm.backward(a.mlpInput, inverseRMS: a.inverseRMS2, gain: w.mlpNorm, gy: gu)
        let gO = beforeNorm(a.attentionProjected, a.inverseRMSAttention, w.attentionOutputNorm, gy)   // ∂L/∂(o_proj output)
        if projections.contains(.o) { out[.o] = matmul(gO, a.attentionContext, transposeA: true) }
        guard projections.contains(.q) || projections.contains(.k) || projections.contains(.v) else { return out }
        let heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        var (gq, gk, gv) = CausalAttention.backward(queries: a.queries, keys: a.keys, values: a.values,
                                                    probabilities: a.probabilities, gradient: w.o.multiplyTransposed(gO),
                                                    heads: heads, kvHeads: kvHeads, scale: description.attentionScale)
        let rotation = rotary.tables(positions: a.positions)
        rotation.rotate(&gq, heads: heads, backward: true)
        rotation.rotate(&gk, heads: kvHeads, backward: true)
        gq = beforeNorm(a.queriesProjected, a.inverseRMSQuery, w.queryNorm, heads: heads, gq)
        gk = beforeNorm(a.keysProjected, a.inverseRMSKey, w.keyNorm, heads: kvHeads, gk)
        if projections.contains(.q) { out[.q] = matmul(gq, a.normedInput, transposeA: true) }
        if projections.contains(.k) { out[.k] = matmul(gk, a.normedInput, transposeA: true) }
        if projections.contains(.v) { out[.v] = matmul(gv, a.normedInput, transposeA: true) }
        return out
    }
}
