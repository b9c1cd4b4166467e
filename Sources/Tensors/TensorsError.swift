/// Errors of the Tensors module: file mapping and LAPACK failures. Shape mismatches between
/// tensors built by steertool itself are programmer errors and trap instead.
public enum TensorsError: Error, Equatable, CustomStringConvertible {
    /// `open`/`fstat`/`mmap` failed; `errno` is the C error number.
    case cannotMap(path: String, operation: String, errno: Int32)
    /// A LAPACK routine returned `info != 0` (negative: bad argument; positive: no convergence
    /// or a singular/rank-deficient problem, routine-specific).
    case lapackFailure(routine: String, info: Int32, shape: String)
    /// An argument's value is outside what the routine accepts.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .cannotMap(path, op, e):
            return "\(path): \(op) failed: \(String(cString: strerror(e))) (errno \(e))"
        case let .lapackFailure(routine, info, shape):
            return "LAPACK \(routine) failed with info \(info) on a \(shape) matrix"
        case let .invalidArgument(what):
            return what
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
