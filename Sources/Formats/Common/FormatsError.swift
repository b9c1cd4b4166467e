#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors shared by the Formats module that belong to no single format: file-system operations,
/// refused overwrites, conversions a storage type cannot express, and the HF / PEFT / steering
/// folder layouts. Format parsers have their own enums (`SafetensorsError`, `GGUFError`,
/// `PickleError`); every case names the file it concerns.
public enum FormatsError: Error, Equatable, CustomStringConvertible {
    /// A system call on `path` failed with C error number `errno`.
    case io(path: String, operation: String, errno: Int32)
    /// The output exists and the caller did not pass `force`.
    case outputExists(path: String)
    /// A required file or folder is missing or is not what the layout expects.
    case missingFile(path: String, reason: String)
    /// A tensor's values cannot be stored as (or read from) the given storage type.
    case unsupportedConversion(file: String, tensor: String, type: String, reason: String)
    /// A JSON document (config.json, adapter_config.json, an index, steering metadata) is invalid.
    case invalidJSON(file: String, reason: String)
    /// A tensor has a shape the operation cannot use.
    case invalidShape(file: String, tensor: String, shape: [Int], reason: String)
    /// A tensor the layout requires is absent.
    case missingTensor(file: String, tensor: String)
    /// A model/adapter description is inconsistent (wrong architecture, missing key, …).
    case invalidModel(file: String, reason: String)

    public var description: String {
        switch self {
        case let .io(path, op, e):
            return "\(path): \(op) failed: \(String(cString: strerror(e))) (errno \(e))"
        case let .outputExists(path):
            return "\(path): already exists (pass --force to replace it)"
        case let .missingFile(path, reason):
            return "\(path): \(reason)"
        case let .unsupportedConversion(file, tensor, type, reason):
            return "\(file): tensor '\(tensor)': cannot convert \(type): \(reason)"
        case let .invalidJSON(file, reason):
            return "\(file): invalid JSON: \(reason)"
        case let .invalidShape(file, tensor, shape, reason):
            return "\(file): tensor '\(tensor)' has shape \(shape): \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' not found"
        case let .invalidModel(file, reason):
            return "\(file): \(reason)"
        }
    }
}
