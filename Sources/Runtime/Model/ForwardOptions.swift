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

    /// Run only these decoder layers (0-based; nil = all). A range that starts after layer 0
    /// needs `startResidual`; one that stops before the last layer needs `logits == .none`
    /// (there is no final hidden state to project). Lets layer-by-layer algorithms (sequential
    /// distillation) advance the residual stream one block at a time instead of re-running the
    /// model from the embedding for every layer.
    public var layers: Range<Int>?
    /// `[T, d]` residual entering the first layer of `layers`, used instead of the token
    /// embeddings (the tokens still fix T and the positions).
    public var startResidual: Tensor?
    /// The tokens are these sequences packed one after another (positive lengths summing to the
    /// token count): each starts at position 0 and attends only to its own tokens, so one call
    /// computes what one call per sequence computes, with one product per projection over all
    /// of them (the weights read once, not once per sequence). No KV cache, and logits `.all`
    /// or `.none`; activations, block outputs and logits keep the packed row order. nil: one
    /// sequence.
    public var sequenceLengths: [Int]?
    /// Where each sequence's prompt ends: its prompt's token count from position 0 (one entry,
    /// or one per packed sequence, each ≥ 1), for steering adapters that shift the last prompt
    /// token only (`SteeringPositions.last`); with a KV cache every call of one generation
    /// passes the same length, so only the call holding position `length − 1` is steered. nil:
    /// not stated (such adapters then refuse the pass).
    public var promptLengths: [Int]?

    /// The row ranges of the packed sequences (`sequenceLengths` laid end to end); nil for one
    /// sequence.
    public var sequenceRows: [Range<Int>]? {
        sequenceLengths.map { lengths in
            var start = 0
            return lengths.map { n in defer { start += n }; return start..<(start + n) }
        }
    }

    /// Options; the defaults compute all logits and nothing else.
    public init(logits: Logits = .all, blockOutputs: Bool = false, record: Set<HookSite> = [],
                layers: Range<Int>? = nil, startResidual: Tensor? = nil, sequenceLengths: [Int]? = nil,
                promptLengths: [Int]? = nil) {
        self.logits = logits; self.blockOutputs = blockOutputs; self.record = record
        self.layers = layers; self.startResidual = startResidual; self.sequenceLengths = sequenceLengths
        self.promptLengths = promptLengths
    }
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
}
