/// Why a safetensors file (or a sharded checkpoint's index) was rejected. Every case names the
/// file; offsets are byte offsets from the start of the file unless stated otherwise.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    /// The file is shorter than the 8-byte header-length prefix.
    case fileTooSmall(file: String, size: Int)
    /// The header length exceeds the 100 MB cap of the reference implementation.
    case headerTooLarge(file: String, length: UInt64)
    /// `8 + header length` runs past the end of the file.
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    /// The header does not start with `{` (as the reference crate requires).
    case invalidHeaderStart(file: String)
    /// The header is not valid UTF-8 JSON; `offset` is the file offset of the problem.
    case invalidHeaderJSON(file: String, offset: Int, reason: String)
    /// A tensor entry is malformed (not an object, missing/extra key, wrong value type).
    case invalidTensorEntry(file: String, tensor: String, reason: String)
    /// The dtype string is not one steertool knows.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A shape dimension is negative or the element count overflows.
    case invalidShape(file: String, tensor: String, shape: String)
    /// `elements × dtype size` differs from the data-offset span.
    case byteLengthMismatch(file: String, tensor: String, expected: Int, found: Int)
    /// Offsets are not contiguous: a tensor starts where the previous one did not end
    /// (a gap or an overlap); both offsets are relative to the data section.
    case nonContiguousOffsets(file: String, tensor: String, expectedStart: Int, found: Int)
    /// The tensors end before the data section does: bytes after the last tensor (relative offsets).
    case dataNotCovered(file: String, tensorsEnd: Int, dataLength: Int)
    /// A tensor's data runs past the end of the file (a truncated file or shard): where it ends
    /// and how many data bytes the file holds.
    case truncatedTensor(file: String, tensor: String, end: Int, dataLength: Int)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(file: String, reason: String)
    /// No tensor of that name.
    case tensorNotFound(file: String, tensor: String)
    /// A sharded checkpoint's index is inconsistent.
    case invalidIndex(file: String, reason: String)
    /// The tensor's stored type cannot be decoded to Float32.
    case unsupportedConversion(file: String, tensor: String, dtype: String)

    public var description: String {
        switch self {
        case let .fileTooSmall(f, size):
            return "\(f): not a safetensors file: \(size) bytes, need at least 8 for the header length"
        case let .headerTooLarge(f, n):
            return "\(f): header length \(n) exceeds the 100000000-byte limit"
        case let .headerPastEnd(f, n, size):
            return "\(f): header length \(n) runs past the end of the \(size)-byte file"
        case let .invalidHeaderStart(f):
            return "\(f): header does not start with '{' (at offset 8)"
        case let .invalidHeaderJSON(f, off, reason):
            return "\(f): header is not valid JSON: \(reason) (file offset \(off))"
        case let .invalidTensorEntry(f, t, reason):
            return "\(f): tensor '\(t)': \(reason)"
        case let .unknownDType(f, t, d):
            return "\(f): tensor '\(t)': unknown dtype \"\(d)\""
        case let .invalidShape(f, t, s):
            return "\(f): tensor '\(t)': invalid shape \(s) (negative dimension or element count overflow)"
        case let .byteLengthMismatch(f, t, e, found):
            return "\(f): tensor '\(t)': shape and dtype need \(e) bytes but data_offsets span \(found)"
        case let .nonContiguousOffsets(f, t, e, found):
            return "\(f): tensor '\(t)': data starts at \(found), expected \(e) (gap or overlap in data_offsets)"
        case let .truncatedTensor(f, t, end, len):
            return "\(f): tensor '\(t)' ends at data offset \(end) but the file holds \(len) bytes of data (truncated?)"
        case let .dataNotCovered(f, end, len):
            return "\(f): tensors end at data offset \(end) but the data section has \(len) bytes"
        case let .invalidMetadata(f, reason):
            return "\(f): __metadata__: \(reason)"
        case let .tensorNotFound(f, t):
            return "\(f): no tensor named '\(t)'"
        case let .invalidIndex(f, reason):
            return "\(f): \(reason)"
        case let .unsupportedConversion(f, t, d):
            return "\(f): tensor '\(t)': cannot convert \(d) to Float32"
        }
    }
}
