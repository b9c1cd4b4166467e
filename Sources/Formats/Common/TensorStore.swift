import Tensors

/// How a tensor's elements are stored in a file: a plain element type (safetensors, and the
/// plain GGML types seen through `DType`) or a GGML type, possibly block-quantized.
public enum StorageType: Hashable, Sendable, CustomStringConvertible {
    /// A safetensors element type.
    case safetensors(DType)
    /// A GGML tensor type as stored in GGUF (`F32`, `F16`, `Q8_0`, `Q4_K`, …).
    case ggml(GGMLType)

    /// The spelling steertool prints: safetensors names ("F32", "BF16") and GGML names ("Q4_K").
    public var description: String {
        switch self {
        case .safetensors(let d): d.rawValue
        case .ggml(let t): t.name
        }
    }

    /// Bytes needed for `elements` values of a tensor whose innermost dimension is `rowLength`,
    /// or nil on overflow or when `rowLength` is not a multiple of the block size.
    public func byteCount(elements: Int, rowLength: Int) -> Int? {
        switch self {
        case .safetensors(let d):
            let (n, o) = elements.multipliedReportingOverflow(by: d.byteSize)
            return o ? nil : n
        case .ggml(let t):
            return t.byteCount(elements: elements, rowLength: rowLength)
        }
    }
}

/// What a file says about one tensor, before reading its data.
public struct TensorInfo: Hashable, Sendable, CustomStringConvertible {
    /// The tensor's name as stored in the file.
    public let name: String
    /// Storage type of the elements.
    public let storage: StorageType
    /// Row-major shape, outermost first (GGUF's reversed `ne` order is already undone).
    public let shape: Shape
    /// Absolute byte range of the tensor's data within its file.
    public let byteRange: Range<Int>

    /// Creates an info; callers have validated `byteRange` against the file.
    public init(name: String, storage: StorageType, shape: Shape, byteRange: Range<Int>) {
        self.name = name
        self.storage = storage
        self.shape = shape
        self.byteRange = byteRange
    }

    /// Bytes of stored data.
    public var byteCount: Int { byteRange.count }

    public var description: String { "\(name) \(storage) \(shape) (\(byteCount) bytes)" }
}

/// A read-only collection of named tensors backed by mapped files (a safetensors file, a sharded
/// checkpoint, a GGUF file). Views returned by `rawBytes` point into the mapping and are valid
/// only while the store is alive.
public protocol TensorStore: AnyObject {
    /// Tensor names in file order (for sharded checkpoints: shard by shard, each in offset order).
    var tensorNames: [String] { get }
    /// What the file says about `name`, or nil if there is no such tensor.
    func info(_ name: String) -> TensorInfo?
    /// The tensor as Float32, row-major, converted or dequantized from its storage type.
    /// - Throws: the format's error when the tensor is missing or its type cannot be decoded.
    func tensor(named name: String) throws -> Tensor
    /// Zero-copy view of the tensor's stored bytes (valid while `self` is alive).
    func rawBytes(named name: String) throws -> UnsafeRawBufferPointer
    /// Streaming readers call this once they are done with `name`: its mapped pages leave the
    /// process's resident set (`MappedFile.Advice.dontNeed`), so a pass over a checkpoint holds
    /// about one tensor's pages, not the whole file. Unknown names are ignored.
    func releasePages(named name: String)
}

extension TensorStore {
    /// Infos of all tensors, in file order.
    public var tensorInfos: [TensorInfo] { tensorNames.compactMap { info($0) } }

    /// Total number of elements over all tensors (the parameter count of a model).
    public var parameterCount: Int { tensorInfos.reduce(0) { $0 + $1.shape.count } }
}
