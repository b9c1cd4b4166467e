/// Errors of steering-adapter arithmetic and conversion (`SteeringArithmetic`, `SteeringFiles`,
/// `AuthorsAdapterImport`). Every case names what it is about (tensor, layer, file) so the CLI
/// can print it as one line.
public enum SteeringAdapterError: Error, Equatable, CustomStringConvertible {
    /// A parameter value outside what the operation accepts (e.g. rank 0).
    case invalidParameter(name: String, value: String, reason: String)
    /// Tensors whose shapes must agree do not (dimensions outermost first).
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    /// A tensor the input needs is absent from `source`.
    case missingTensor(name: String, source: String)
    /// The adapters cannot be combined as asked (different sites, mixed activations…).
    case incompatibleInputs(String)
    /// The operation is not defined for this adapter (e.g. SVD re-compression of SiLU, a linear
    /// adapter as a control vector).
    case unsupported(String)
    /// A LAPACK failure or another numerical breakdown, with the tensor it happened on.
    case numerical(tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, reason): return "invalid \(name) = \(value): \(reason)"
        case let .shapeMismatch(t, e, f): return "tensor '\(t)': expected shape \(e), found \(f)"
        case let .missingTensor(n, s): return "tensor '\(n)' is missing from \(s)"
        case let .incompatibleInputs(why): return "incompatible inputs: \(why)"
        case let .unsupported(why): return "unsupported: \(why)"
        case let .numerical(t, why): return "tensor '\(t)': \(why)"
        }
    }
}
