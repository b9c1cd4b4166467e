/// Errors of the Runtime module (model loading, tokenization, forward pass, generation),
/// each carrying what and where.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// The model's architecture is not one steertool runs.
    case unsupportedArchitecture(String, source: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(arch, source):
            return "\(source): architecture '\(arch)' is not supported (LlamaForCausalLM family only)"
        }
    }
}
