/// What `DecoderBlock.backward` needs from one layer's forward, saved by `DecoderBlock.forward`
/// when given a tape: row-major `[rows, width]` copies of the activations the operations'
/// backward sides read. Keys and values (after RoPE) are not copied: they stay in the pass's
/// `KVCache`.
final class BlockTape {
    private let arena = FloatArena()
    let rows: Int
    /// h (block input, after its hooks) and RMSNorm₁(h) `[rows, d]`; 1/RMS per row `[rows]`.
    let blockInput, attentionNormed, inverseRMS1: UnsafeMutablePointer<Float>
    /// q after RoPE and the attention heads before o_proj `[rows, heads·hd]`.
    let queries, attentionHeads: UnsafeMutablePointer<Float>
    /// Y (after its hooks) and RMSNorm₂(Y) `[rows, d]`; 1/RMS per row `[rows]`.
    let mlpInput, mlpNormed, inverseRMS2: UnsafeMutablePointer<Float>
    /// a_g, a_u and m = φ(a_g) ⊙ a_u `[rows, d_ff]`.
    let gatePreactivation, upPreactivation, mlpHidden: UnsafeMutablePointer<Float>
    /// With q/k norms (Gemma-3): q and k as projected, before their norms `[rows, heads·hd]`,
    /// `[rows, kvHeads·hd]`, and 1/RMS per head row `[rows·heads]`, `[rows·kvHeads]`.
    let queriesProjected, keysProjected, inverseRMSQuery, inverseRMSKey: UnsafeMutablePointer<Float>?
    /// With output norms (Gemma-3): o and X as projected, before their norms `[rows, d]`, and
    /// 1/RMS per row `[rows]`.
    let attentionProjected, mlpProjected, inverseRMSAttention, inverseRMSMLP: UnsafeMutablePointer<Float>?

    /// A tape for `rows` tokens of a layer like `layer` (its optional norms decide what is kept).
    init(rows: Int, config c: LlamaConfig, layer: LlamaWeights.Layer) {
        self.rows = rows
        let d = c.hiddenSize, qw = c.numAttentionHeads * c.headDim, ff = c.intermediateSize
        let kvw = c.numKeyValueHeads * c.headDim
        let alloc = arena.make
        blockInput = alloc(rows * d); attentionNormed = alloc(rows * d); inverseRMS1 = alloc(rows)
        queries = alloc(rows * qw); attentionHeads = alloc(rows * qw)
        mlpInput = alloc(rows * d); mlpNormed = alloc(rows * d); inverseRMS2 = alloc(rows)
        gatePreactivation = alloc(rows * ff); upPreactivation = alloc(rows * ff); mlpHidden = alloc(rows * ff)
        let qkNorms = layer.queryNorm != nil && layer.keyNorm != nil
        queriesProjected = qkNorms ? alloc(rows * qw) : nil
        keysProjected = qkNorms ? alloc(rows * kvw) : nil
        inverseRMSQuery = qkNorms ? alloc(rows * c.numAttentionHeads) : nil
        inverseRMSKey = qkNorms ? alloc(rows * c.numKeyValueHeads) : nil
        let outputNorms = layer.attentionOutputNorm != nil && layer.mlpOutputNorm != nil
        attentionProjected = outputNorms ? alloc(rows * d) : nil
        mlpProjected = outputNorms ? alloc(rows * d) : nil
        inverseRMSAttention = outputNorms ? alloc(rows) : nil
        inverseRMSMLP = outputNorms ? alloc(rows) : nil
    }
}

/// Scratch of `DecoderBlock.backward`, allocated once per pass and reused by every layer.
final class BlockGradientBuffers {
    private let arena = FloatArena()
    let gm, gGate, gUp, gNormed2, gMLPInput, gHeads, gq, gk, gv, gNormed1, attention, lora: UnsafeMutablePointer<Float>
    /// Gradients before an output norm (`[T, d]`, o then X) and before the q/k norms (`[T, heads·hd]`, `[T, kvHeads·hd]`).
    let gProjected, gqProjected, gkProjected: UnsafeMutablePointer<Float>

    /// Buffers for a pass of `T` rows whose longest attended sequence has `sequenceRows` rows
    /// (default: one sequence of all `T`): the attention scratch is 2·sequenceRows².
    init(rows T: Int, config c: LlamaConfig, maxLoRARank: Int, sequenceRows: Int? = nil) {
        let d = c.hiddenSize, qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim
        let ff = c.intermediateSize
        let alloc = arena.make
        gm = alloc(T * ff); gGate = alloc(T * ff); gUp = alloc(T * ff)
        gNormed2 = alloc(T * d); gMLPInput = alloc(T * d); gHeads = alloc(T * qw)
        gq = alloc(T * qw); gk = alloc(T * kvw); gv = alloc(T * kvw); gNormed1 = alloc(T * d)
        let S = sequenceRows ?? T
        attention = alloc(2 * S * S); lora = alloc(2 * T * max(maxLoRARank, 1))
        gProjected = alloc(T * d); gqProjected = alloc(T * qw); gkProjected = alloc(T * kvw)
    }
}
