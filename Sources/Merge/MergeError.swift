/// Errors of the Merge module (LoRA merge, adapter and checkpoint merges). Every case names what
/// it is about (method, tensor, module, key) so the CLI can print it as one line.
public enum MergeError: Error, Equatable, CustomStringConvertible {
    /// A merge method name that steertool does not implement.
    case unknownMethod(String)
    /// A parameter value outside what the method accepts (e.g. density outside (0, 1]).
    case invalidParameter(name: String, value: String, reason: String)
    /// Inputs whose shapes must agree do not.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    /// A tensor one input lacks while another has it.
    case missingTensor(name: String, source: String)
    /// The inputs cannot be combined as asked (different ranks for `linear`, mixed activations…).
    case incompatibleInputs(String)
    /// A mergekit YAML config that steertool cannot honour: unknown keys name themselves.
    case invalidConfig(String)
    /// The operation is not defined for this kind of adapter (e.g. SVD re-compression of SiLU).
    case unsupported(String)
    /// A LAPACK failure or another numerical breakdown, with the tensor it happened on.
    case numerical(tensor: String, reason: String)
    /// An output already exists and `force` was not given.
    case outputExists(String)
    /// Reading or writing a file failed.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownMethod(m): return "unknown merge method '\(m)'"
        case let .invalidParameter(name, value, reason): return "invalid \(name) = \(value): \(reason)"
        case let .shapeMismatch(t, e, f): return "tensor '\(t)': expected shape \(e), found \(f)"
        case let .missingTensor(n, s): return "tensor '\(n)' is missing from \(s)"
        case let .incompatibleInputs(why): return "incompatible inputs: \(why)"
        case let .invalidConfig(why): return "merge config: \(why)"
        case let .unsupported(why): return "unsupported: \(why)"
        case let .numerical(t, why): return "tensor '\(t)': \(why)"
        case let .outputExists(p): return "\(p) exists (pass --force to overwrite)"
        case let .io(p, why): return "\(p): \(why)"
        }
    }
}
