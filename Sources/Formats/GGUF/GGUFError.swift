/// Why a GGUF file was rejected or a tensor could not be read. `offset` is the byte offset in
/// the file where the problem was found.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The file does not start with "GGUF".
    case badMagic(file: String, found: UInt32)
    /// Versions other than 2 and 3 are not read (v1 used 32-bit counts).
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends inside a structure.
    case truncated(file: String, offset: Int, reading: String)
    /// A count or length is larger than the rest of the file could hold.
    case countTooLarge(file: String, offset: Int, what: String, count: UInt64)
    /// Unknown metadata value type.
    case unknownValueType(file: String, offset: Int, key: String, type: UInt32)
    /// Arrays nested deeper than the cap.
    case nestingTooDeep(file: String, offset: Int, key: String)
    /// The same metadata key twice.
    case duplicateKey(file: String, offset: Int, key: String)
    /// A metadata value has the wrong type for its key (e.g. `general.alignment`).
    case invalidMetadata(file: String, key: String, reason: String)
    /// The same tensor name twice.
    case duplicateTensor(file: String, tensor: String)
    /// A tensor has more than 4 dimensions, a zero/overflowing shape, or a row length the
    /// type's block size does not divide.
    case invalidTensorShape(file: String, tensor: String, dims: [UInt64], reason: String)
    /// Unknown GGML type number.
    case unknownTensorType(file: String, tensor: String, type: UInt32)
    /// Tensor data offset not aligned, past the end of the file, or overlapping another tensor.
    case invalidTensorOffset(file: String, tensor: String, offset: UInt64, reason: String)
    /// A string is not UTF-8.
    case invalidString(file: String, offset: Int)
    /// No tensor of that name.
    case tensorNotFound(file: String, tensor: String)
    /// The tensor's type has no dequantizer in steertool (the IQ*, TQ*, MXFP4, … families).
    case unsupportedTensorType(file: String, tensor: String, type: String)

    public var description: String {
        switch self {
        case let .badMagic(f, m):
            return "\(f): not a GGUF file (magic 0x\(String(m, radix: 16)) at offset 0)"
        case let .unsupportedVersion(f, v):
            return "\(f): GGUF version \(v) is not supported (need 2 or 3)"
        case let .truncated(f, off, what):
            return "\(f): file ends at offset \(off) while reading \(what)"
        case let .countTooLarge(f, off, what, n):
            return "\(f): \(what) \(n) at offset \(off) is larger than the rest of the file can hold"
        case let .unknownValueType(f, off, key, t):
            return "\(f): key '\(key)': unknown value type \(t) at offset \(off)"
        case let .nestingTooDeep(f, off, key):
            return "\(f): key '\(key)': arrays nested too deeply at offset \(off)"
        case let .duplicateKey(f, off, key):
            return "\(f): duplicate metadata key '\(key)' at offset \(off)"
        case let .invalidMetadata(f, key, reason):
            return "\(f): key '\(key)': \(reason)"
        case let .duplicateTensor(f, t):
            return "\(f): duplicate tensor name '\(t)'"
        case let .invalidTensorShape(f, t, dims, reason):
            return "\(f): tensor '\(t)' with dims \(dims): \(reason)"
        case let .unknownTensorType(f, t, type):
            return "\(f): tensor '\(t)': unknown GGML type \(type)"
        case let .invalidTensorOffset(f, t, off, reason):
            return "\(f): tensor '\(t)': data offset \(off): \(reason)"
        case let .invalidString(f, off):
            return "\(f): string at offset \(off) is not valid UTF-8"
        case let .tensorNotFound(f, t):
            return "\(f): no tensor named '\(t)'"
        case let .unsupportedTensorType(f, t, type):
            return "\(f): tensor '\(t)': dequantizing \(type) is not supported"
        }
    }
}
