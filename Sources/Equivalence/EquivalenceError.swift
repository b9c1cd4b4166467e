/// Errors of the Equivalence module (shift computation, adapter fitting, Theorem 3.1, fold-back).
public enum EquivalenceError: Error, Equatable, CustomStringConvertible {
    /// Two inputs that must describe the same model do not.
    case modelMismatch(String)
    /// A tensor's shape is not what the layer or the fit needs: `what` names the tensor.
    case shapeMismatch(what: String, expected: [Int], found: [Int])
    /// The configuration is not supported (e.g. an unknown RoPE type); `reason` says why.
    case unsupportedConfiguration(String)
    /// A fit needs more tokens (rows) than it was given.
    case tooFewTokens(what: String, needed: Int, found: Int)
    /// An argument is outside what the function accepts.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .modelMismatch(what): return "models do not match: \(what)"
        case let .shapeMismatch(what, expected, found):
            return "\(what): expected shape \(expected), found \(found)"
        case let .unsupportedConfiguration(reason): return "unsupported configuration: \(reason)"
        case let .tooFewTokens(what, needed, found):
            return "\(what): needs at least \(needed) tokens, got \(found)"
        case let .invalidArgument(what): return what
        }
    }
}
