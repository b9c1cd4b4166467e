/// The seven linear projections of a Llama decoder layer. Raw values are the Hugging Face / PEFT
/// module names. Every projection is stored `[out, in]` and computes `x · Wᵀ` on `[tokens, in]`.
public enum LlamaProjection: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// "self_attn" or "mlp": the submodule holding the projection in Hugging Face names.
    public var module: String {
        switch self {
        case .q, .k, .v, .o: "self_attn"
        case .gate, .up, .down: "mlp"
        }
    }

    /// Input width of the projection under `config`.
    public func inputSize(_ config: LlamaConfig) -> Int {
        switch self {
        case .q, .k, .v, .gate, .up: config.hiddenSize
        case .o: config.numAttentionHeads * config.headDim
        case .down: config.intermediateSize
        }
    }

    /// Output width of the projection under `config`.
    public func outputSize(_ config: LlamaConfig) -> Int {
        switch self {
        case .q: config.numAttentionHeads * config.headDim
        case .k, .v: config.numKeyValueHeads * config.headDim
        case .o, .down: config.hiddenSize
        case .gate, .up: config.intermediateSize
        }
    }

    /// `model.layers.<layer>.<module>.<name>` (append ".weight" or ".bias").
    public func modulePath(layer: Int) -> String { "model.layers.\(layer).\(module).\(rawValue)" }

    public var description: String { rawValue }

    /// Whether the projection sits in the attention half of the block (q, k, v, o).
    public var isAttention: Bool { self == .q || self == .k || self == .v || self == .o }
}
