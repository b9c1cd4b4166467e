/// Errors of the Runtime module (model loading, tokenization, forward pass, generation),
/// each carrying what and where.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// The model's architecture is not one steertool runs.
    case unsupportedArchitecture(String, source: String)
    /// config.json (or the GGUF metadata mapped to it) could not be decoded.
    case invalidConfig(source: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(arch, source):
            return "\(source): architecture '\(arch)' is not supported (LlamaForCausalLM family only)"
        case let .invalidConfig(source, reason):
            return "\(source): invalid model config: \(reason)"
        }
    }
}
