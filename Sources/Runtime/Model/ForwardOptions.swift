import Tensors

/// What a forward pass computes and returns beyond the residual stream.
public struct ForwardOptions: Sendable, Equatable {
    /// Which rows of logits to compute.
    public enum Logits: Sendable, Equatable {
        /// `[T, vocab]`, one row per input token.
        case all
        /// `[1, vocab]` for the last input token only (generation).
        case lastPosition
        /// No logits (`[0, vocab]`); skips the final norm and lm_head.
        case none
    }

    /// Which logits rows to compute (all by default).
    public var logits: Logits
    /// Return the output of every block (`ForwardResult.blockOutputs`).
    public var blockOutputs: Bool
    /// Sites whose activations (after all hooks there) are returned in `ForwardResult.activations`.
    public var record: Set<HookSite>
    /// Layers whose `LayerIntermediates` are returned (the first-order map's inputs).
    public var intermediateLayers: Set<Int>

    /// Options; the defaults compute all logits and nothing else.
    /// Run only these decoder layers (0-based; nil = all). A range that starts after layer 0
    /// needs `startResidual`; one that stops before the last layer needs `logits == .none`
    /// (there is no final hidden state to project). Lets layer-by-layer algorithms (sequential
    /// distillation) advance the residual stream one block at a time instead of re-running the
    /// model from the embedding for every layer.
    public var layers: Range<Int>?
    /// `[T, d]` residual entering the first layer of `layers`, used instead of the token
    /// embeddings (the tokens still fix T and the positions).
    public var startResidual: Tensor?

    public init(logits: Logits = .all, blockOutputs: Bool = false, record: Set<HookSite> = [],
                intermediateLayers: Set<Int> = [], layers: Range<Int>? = nil, startResidual: Tensor? = nil) {
        self.logits = logits; self.blockOutputs = blockOutputs; self.record = record
        self.intermediateLayers = intermediateLayers
        self.layers = layers; self.startResidual = startResidual
    }
}

/// The per-layer values the first-order map needs, captured during the forward pass (no second
/// pass). All `[T, ·]` with the T tokens of the call as rows; each is the value the next
/// operation consumed, i.e. after any hook at its site.
public struct LayerIntermediates: Sendable, Equatable {
    /// h: residual entering the block `[T, d]`.
    public var blockInput: Tensor
    /// RMSNorm₁(h) `[T, d]`: the input of q/k/v.
    public var attentionNormed: Tensor
    /// Attention heads concatenated, before o_proj `[T, heads·head_dim]`.
    public var attentionHeads: Tensor
    /// o_proj output before its residual add `[T, d]`.
    public var attentionOutput: Tensor
    /// Y = h + Attn `[T, d]`.
    public var mlpInput: Tensor
    /// u = RMSNorm₂(Y) `[T, d]`.
    public var mlpNormed: Tensor
    /// a_g = u·W_gateᵀ `[T, d_ff]`.
    public var gatePreactivation: Tensor
    /// a_u = u·W_upᵀ `[T, d_ff]`.
    public var upPreactivation: Tensor
    /// m = SiLU(a_g) ⊙ a_u `[T, d_ff]`.
    public var mlpHidden: Tensor
    /// X = m·W_downᵀ `[T, d]`.
    public var mlpOutput: Tensor
    /// Z = Y + X `[T, d]`.
    public var blockOutput: Tensor
}

/// What `LlamaModel.forward` returns.
public struct ForwardResult: Sendable {
    /// Logits `[T, vocab]`, `[1, vocab]` (last position) or `[0, vocab]` per `ForwardOptions.logits`.
    public var logits: Tensor
    /// Output of block l `[T, d]` (after its MLP residual add and its blockOutput hooks, before
    /// the final norm) for every layer l, when requested; else empty.
    public var blockOutputs: [Tensor]
    /// Recorded activations `[T, d]` by site (`ForwardOptions.record`).
    public var activations: [HookSite: Tensor]
    /// Captured intermediates by layer (`ForwardOptions.intermediateLayers`).
    public var intermediates: [Int: LayerIntermediates]
}
