/// Errors of the Merge module (LoRA merge, adapter and checkpoint merges).
public enum MergeError: Error, Equatable, CustomStringConvertible {
    /// A merge method name that steertool does not implement.
    case unknownMethod(String)

    public var description: String {
        switch self {
        case let .unknownMethod(m): return "unknown merge method '\(m)'"
        }
    }
}
