/// An intervention site inside decoder layer `layer` (0-based). Each site carries a
/// `[tokens, d]` activation matrix (tokens as rows) that a hook may read or add to.
public enum HookSite: Hashable, Sendable, CustomStringConvertible {
    /// Residual stream entering the block (h).
    case blockInput(Int)
    /// o_proj output, before its residual add (Attn(RMSNorm₁(h)); pre-MLP / LoFIT-like site).
    case attentionOutput(Int)
    /// Residual after the attention add, Y = h + Attn, before RMSNorm₂.
    case mlpInput(Int)
    /// down_proj output, before its residual add (X; post-MLP / ReFT-like site).
    case mlpOutput(Int)
    /// Block output after the MLP residual add, Z = Y + X (post-block, the paper's site).
    case blockOutput(Int)

    /// The 0-based layer index.
    public var layer: Int {
        switch self {
        case let .blockInput(l), let .attentionOutput(l), let .mlpInput(l), let .mlpOutput(l), let .blockOutput(l): return l
        }
    }

    /// The site's kind without a layer.
    public var kind: HookSiteKind {
        switch self {
        case .blockInput: return .blockInput
        case .attentionOutput: return .attentionOutput
        case .mlpInput: return .mlpInput
        case .mlpOutput: return .mlpOutput
        case .blockOutput: return .blockOutput
        }
    }

    /// Builds the site of `kind` at `layer`.
    public init(_ kind: HookSiteKind, layer: Int) {
        switch kind {
        case .blockInput: self = .blockInput(layer)
        case .attentionOutput: self = .attentionOutput(layer)
        case .mlpInput: self = .mlpInput(layer)
        case .mlpOutput: self = .mlpOutput(layer)
        case .blockOutput: self = .blockOutput(layer)
        }
    }

    public var description: String { "\(kind.rawValue)(\(layer))" }
}

/// The five site kinds; raw values are the spellings used in files and on the command line.
public enum HookSiteKind: String, Sendable, CaseIterable, Codable {
    case blockInput = "block_input", attentionOutput = "attention_output", mlpInput = "mlp_input"
    case mlpOutput = "mlp_output", blockOutput = "block_output"
}
