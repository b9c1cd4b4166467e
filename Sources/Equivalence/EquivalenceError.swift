/// Errors of the Equivalence module (shift computation, adapter fitting, fold-back).
public enum EquivalenceError: Error, Equatable, CustomStringConvertible {
    /// Two inputs that must describe the same model do not.
    case modelMismatch(String)

    public var description: String {
        switch self {
        case let .modelMismatch(what): return "models do not match: \(what)"
        }
    }
}
