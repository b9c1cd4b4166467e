import OrderedCollections
import Tensors

/// A GGUF file (versions 2 and 3) mapped read-only: typed metadata in file order, tensor infos
/// with row-major shapes (GGUF stores `ne` innermost-first; steertool reverses it), and
/// zero-copy tensor data with dequantization to Float32 on request.
///
/// Parsing treats the file as hostile, in the spirit of candle's `gguf_file.rs`: every count
/// and length is checked against the bytes that remain before anything is allocated, arrays
/// nest at most `maxNestingDepth` deep, tensors have at most 4 dimensions, names and keys are
/// unique, tensor data is aligned to `general.alignment` (default 32), inside the file, and
/// non-overlapping.
public final class GGUFFile: TensorStore, Sendable {
    /// "GGUF" read as a little-endian UInt32.
    public static let magic: UInt32 = 0x4655_4747
    /// Default data alignment (`GGUF_DEFAULT_ALIGNMENT`).
    public static let defaultAlignment = 32
    /// Deepest array nesting accepted.
    public static let maxNestingDepth = 8
    /// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
    public static let maxDimensions = 4

    /// The mapped file.
    public let file: MappedFile
    /// Path used in errors.
    public var path: String { file.path }
    /// Format version (2 or 3).
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: OrderedDictionary<String, GGUFValue>
    /// Data alignment in bytes.
    public let alignment: Int
    /// Absolute offset of the tensor data section.
    public let dataOffset: Int
    /// Tensor names in file (tensor-info) order.
    public let tensorNames: [String]
    private let infos: [String: TensorInfo]

    /// Maps and validates the file at `path`.
    /// - Throws: `TensorsError.cannotMap` or `GGUFError`.
    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Validates an already mapped file.
    public init(file: MappedFile) throws(GGUFError) {
        self.file = file
        let h = try Self.parse(file.bytes, file: file.path)
        version = h.version
        metadata = h.metadata
        alignment = h.alignment
        dataOffset = h.dataOffset
        tensorNames = h.tensors.map(\.name)
        var m: [String: TensorInfo] = [:]
        for t in h.tensors { m[t.name] = t }
        infos = m
    }

    /// A parsed header.
    public struct Header: Sendable {
        public var version: UInt32
        public var metadata: OrderedDictionary<String, GGUFValue>
        public var alignment: Int
        public var dataOffset: Int
        /// Tensors in file order, with absolute byte ranges.
        public var tensors: [TensorInfo]
    }

    /// Parses and validates a whole GGUF buffer (`bytes` is the entire file). Exposed for tests
    /// and fuzzing; `file` names the buffer in errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws(GGUFError) -> Header {
        var r = GGUFByteReader(bytes: bytes, file: file)
        let magic = try r.u32("magic")
        guard magic == Self.magic else { throw .badMagic(file: file, found: magic) }
        let version = try r.u32("version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(file: file, version: version) }
        let tensorCountOffset = r.offset
        let tensorCount = try r.u64("tensor count")
        let kvCountOffset = r.offset
        let kvCount = try r.u64("metadata count")
        // Each tensor info takes ≥ 24 bytes and each key-value ≥ 13: cap counts by what remains.
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw .countTooLarge(file: file, offset: tensorCountOffset, what: "tensor count", count: tensorCount)
        }
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw .countTooLarge(file: file, offset: kvCountOffset, what: "metadata count", count: kvCount)
        }
        var metadata = OrderedDictionary<String, GGUFValue>()
        for _ in 0..<Int(kvCount) {
            let keyOffset = r.offset
            let key = try r.string("metadata key")
            let typeOffset = r.offset
            let rawType = try r.u32("value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(file: file, offset: typeOffset, key: key, type: rawType)
            }
            let value = try r.value(type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw .duplicateKey(file: file, offset: keyOffset, key: key)
            }
        }
        var alignment = defaultAlignment
        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw .invalidMetadata(file: file, key: "general.alignment", reason: "must be a UINT32 power of two, found \(a.type) \(a)")
            }
            alignment = Int(v)
        }

        struct Raw { var name: String; var dims: [UInt64]; var type: GGMLType; var offset: UInt64 }
        var raws: [Raw] = []
        raws.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        for _ in 0..<Int(tensorCount) {
            let name = try r.string("tensor name")
            let nDimsOffset = r.offset
            let nDims = try r.u32("dimension count of '\(name)'")
            guard nDims <= UInt32(maxDimensions) else {
                throw .countTooLarge(file: file, offset: nDimsOffset, what: "dimension count of '\(name)'", count: UInt64(nDims))
            }
            var dims: [UInt64] = []
            for _ in 0..<Int(nDims) { dims.append(try r.u64("dimensions of '\(name)'")) }
            let rawType = try r.u32("type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else { throw .unknownTensorType(file: file, tensor: name, type: rawType) }
            let offset = try r.u64("data offset of '\(name)'")
            guard names.insert(name).inserted else { throw .duplicateTensor(file: file, tensor: name) }
            raws.append(Raw(name: name, dims: dims, type: type, offset: offset))
        }
        let (padded, o) = r.offset.addingReportingOverflow(alignment - 1)
        guard !o else { throw .truncated(file: file, offset: r.offset, reading: "data section") }
        var dataOffset = padded / alignment * alignment
        // A file without tensors (llama.cpp's vocab-only GGUFs) may end right after its metadata,
        // without alignment padding; llama.cpp and gguf-py read those.
        if raws.isEmpty { dataOffset = min(dataOffset, bytes.count) }
        guard dataOffset <= bytes.count else { throw .truncated(file: file, offset: bytes.count, reading: "padding before tensor data") }
        let dataLength = bytes.count - dataOffset

        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(raws.count)
        for t in raws {
            // ne[0] is innermost in GGUF; a row-major Shape lists the outermost first.
            var dims: [Int] = []
            for d in t.dims.reversed() {
                guard d <= UInt64(Int.max) else {
                    throw .invalidTensorShape(file: file, tensor: t.name, dims: t.dims, reason: "dimension overflows")
                }
                dims.append(Int(d))
            }
            guard let shape = Shape.checked(dims) else {
                throw .invalidTensorShape(file: file, tensor: t.name, dims: t.dims, reason: "element count overflows")
            }
            guard let size = t.type.byteCount(elements: shape.count, rowLength: dims.last ?? 1) else {
                throw .invalidTensorShape(file: file, tensor: t.name, dims: t.dims,
                                          reason: "row length is not a multiple of \(t.type)'s block size \(t.type.blockSize), or the byte size overflows")
            }
            guard t.offset % UInt64(alignment) == 0 else {
                throw .invalidTensorOffset(file: file, tensor: t.name, offset: t.offset, reason: "not a multiple of the alignment \(alignment)")
            }
            guard t.offset <= UInt64(dataLength), UInt64(size) <= UInt64(dataLength) - t.offset else {
                throw .invalidTensorOffset(file: file, tensor: t.name, offset: t.offset,
                                           reason: "\(size) bytes of data run past the end of the data section (\(dataLength) bytes)")
            }
            let start = dataOffset + Int(t.offset)
            tensors.append(TensorInfo(name: t.name, storage: .ggml(t.type), shape: shape, byteRange: start..<(start + size)))
        }
        let sorted = tensors.filter { !$0.byteRange.isEmpty }.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
            throw .invalidTensorOffset(file: file, tensor: b.name, offset: UInt64(b.byteRange.lowerBound - dataOffset),
                                       reason: "overlaps the data of '\(a.name)'")
        }
        return Header(version: version, metadata: metadata, alignment: alignment, dataOffset: dataOffset, tensors: tensors)
    }

    public func info(_ name: String) -> TensorInfo? { infos[name] }

    public func releasePages(named name: String) {
        if let info = infos[name] { file.advise(.dontNeed, range: info.byteRange) }
    }

    public func rawBytes(named name: String) throws -> UnsafeRawBufferPointer {
        guard let info = infos[name] else { throw GGUFError.tensorNotFound(file: path, tensor: name) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[info.byteRange])
    }

    /// The tensor as Float32, dequantized.
    /// - Throws: `GGUFError.unsupportedTensorType` for types without a dequantizer.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = infos[name] else { throw GGUFError.tensorNotFound(file: path, tensor: name) }
        guard case .ggml(let type) = info.storage, GGMLDequantizer.supports(type) else {
            throw GGUFError.unsupportedTensorType(file: path, tensor: name, type: info.storage.description)
        }
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[info.byteRange])
        file.advise(.willNeed, range: info.byteRange)
        let values = [Float](unsafeUninitializedCapacity: info.shape.count) { out, n in
            GGMLDequantizer.dequantize(raw, type: type, into: out)  // writes every element
            n = info.shape.count
        }
        return Tensor(shape: info.shape, scalars: values)
    }

    /// `general.architecture`, if present.
    public var architecture: String? { metadata["general.architecture"]?.stringValue }
}

/// A bounds-checked little-endian cursor over a GGUF buffer.
struct GGUFByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    private(set) var offset = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        guard n <= remaining else { throw .truncated(file: file, offset: bytes.count, reading: what()) }
    }

    mutating func scalar<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what())
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 { try scalar(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 { try scalar(UInt64.self, what()) }

    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let lengthOffset = offset
        let n = try u64(what())
        guard n <= UInt64(remaining) else {
            throw .countTooLarge(file: file, offset: lengthOffset, what: "length of \(what())", count: n)
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))])
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw .invalidString(file: file, offset: lengthOffset)
        }
        offset += Int(n)
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try scalar(UInt8.self, what))
        case .int8: return .int8(try scalar(Int8.self, what))
        case .uint16: return .uint16(try scalar(UInt16.self, what))
        case .int16: return .int16(try scalar(Int16.self, what))
        case .uint32: return .uint32(try scalar(UInt32.self, what))
        case .int32: return .int32(try scalar(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try scalar(UInt32.self, what)))
        case .bool:
            let b = try scalar(UInt8.self, what)
            guard b <= 1 else { throw .invalidMetadata(file: file, key: key, reason: "BOOL byte \(b) at offset \(offset - 1) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .uint64: return .uint64(try scalar(UInt64.self, what))
        case .int64: return .int64(try scalar(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try scalar(UInt64.self, what)))
        case .array:
            guard depth < GGUFFile.maxNestingDepth else { throw .nestingTooDeep(file: file, offset: offset, key: key) }
            let typeOffset = offset
            let rawType = try u32("array element type of '\(key)'")
            guard let element = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(file: file, offset: typeOffset, key: key, type: rawType)
            }
            let countOffset = offset
            let count = try u64("array length of '\(key)'")
            guard count <= UInt64(remaining / element.minimumSize) else {
                throw .countTooLarge(file: file, offset: countOffset, what: "array length of '\(key)'", count: count)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { items.append(try value(element, key: key, depth: depth + 1)) }
            return .array(elementType: element, items)
        }
    }
}
