import OrderedCollections
import Tensors

/// A safetensors file mapped read-only: an 8-byte little-endian header length N, N bytes of JSON
/// header (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`),
/// then the data section. Validation follows the reference Rust crate: header length ≤ 100 MB,
/// header starts with `{`, known dtypes, `elements × size == end − begin` with overflow checks,
/// offsets (sorted) contiguous from 0 with no gap or overlap and covering the data section
/// exactly, `__metadata__` a string→string map. Tensor data is never copied on open.
public final class SafetensorsFile: TensorStore, Sendable {
    /// Largest header accepted (the reference crate's `MAX_HEADER_SIZE`).
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// The mapped file.
    public let file: MappedFile
    /// Path used in errors.
    public var path: String { file.path }
    /// `__metadata__` in header order (empty when absent).
    public let metadata: OrderedDictionary<String, String>
    /// Tensor names in data-offset order.
    public let tensorNames: [String]
    /// Absolute offset of the data section (8 + header length).
    public let dataOffset: Int
    private let infos: [String: TensorInfo]

    /// Maps and validates the file at `path`.
    /// - Throws: `TensorsError.cannotMap` or `SafetensorsError`.
    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Validates an already mapped file.
    public init(file: MappedFile) throws(SafetensorsError) {
        self.file = file
        let header = try Self.parse(file.bytes, file: file.path)
        metadata = header.metadata
        tensorNames = header.tensors.map(\.name)
        dataOffset = header.dataOffset
        var map: [String: TensorInfo] = [:]
        for t in header.tensors { map[t.name] = t }
        infos = map
    }

    /// A parsed header: tensors in offset order with absolute byte ranges.
    public struct Header: Sendable {
        public var metadata: OrderedDictionary<String, String>
        public var tensors: [TensorInfo]
        public var dataOffset: Int
    }

    /// Parses and validates the header of a whole safetensors buffer (`bytes` is the entire file).
    /// Exposed for tests and fuzzing; `file` names the buffer in errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws(SafetensorsError) -> Header {
        guard bytes.count >= 8 else { throw .fileTooSmall(file: file, size: bytes.count) }
        let n = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= maxHeaderLength else { throw .headerTooLarge(file: file, length: n) }
        let headerLength = Int(n)
        guard 8 + headerLength <= bytes.count else { throw .headerPastEnd(file: file, length: n, fileSize: bytes.count) }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard headerLength > 0, headerBytes[0] == UInt8(ascii: "{") else { throw .invalidHeaderStart(file: file) }
        let json: JSONValue
        do {
            json = try JSONParser.parse(headerBytes)
        } catch {
            throw .invalidHeaderJSON(file: file, offset: 8 + error.offset, reason: error.reason)
        }
        guard let pairs = json.objectValue else { throw .invalidHeaderJSON(file: file, offset: 8, reason: "header is not an object") }

        var metadata = OrderedDictionary<String, String>()
        struct Entry { var name: String; var dtype: DType; var shape: Shape; var begin: Int; var end: Int }
        var entries: [Entry] = []
        entries.reserveCapacity(pairs.count)
        for (name, value) in pairs {
            if name == "__metadata__" {
                guard let m = value.objectValue else { throw .invalidMetadata(file: file, reason: "not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw .invalidMetadata(file: file, reason: "value of \"\(k)\" is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let fields = value.objectValue else { throw .invalidTensorEntry(file: file, tensor: name, reason: "entry is not an object") }
            for (k, _) in fields where k != "dtype" && k != "shape" && k != "data_offsets" {
                throw .invalidTensorEntry(file: file, tensor: name, reason: "unknown field \"\(k)\"")
            }
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw .invalidTensorEntry(file: file, tensor: name, reason: "missing or non-string \"dtype\"")
            }
            guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDType(file: file, tensor: name, dtype: dtypeName) }
            guard let dimsJSON = value["shape"]?.arrayValue else {
                throw .invalidTensorEntry(file: file, tensor: name, reason: "missing or non-array \"shape\"")
            }
            var dims: [Int] = []
            for d in dimsJSON {
                guard let v = d.intValue, case .number(let lit) = d, Int(lit) != nil else {
                    throw .invalidShape(file: file, tensor: name, shape: d.description)
                }
                dims.append(v)
            }
            guard let shape = Shape.checked(dims) else { throw .invalidShape(file: file, tensor: name, shape: "\(dims)") }
            guard let offs = value["data_offsets"]?.arrayValue, offs.count == 2,
                  case .number(let b) = offs[0], case .number(let e) = offs[1],
                  let begin = Int(b), let end = Int(e), begin >= 0, end >= begin else {
                throw .invalidTensorEntry(file: file, tensor: name, reason: "\"data_offsets\" must be [begin, end] with 0 ≤ begin ≤ end")
            }
            let (needed, overflow) = shape.count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow else { throw .invalidShape(file: file, tensor: name, shape: "\(dims)") }
            guard needed == end - begin else {
                throw .byteLengthMismatch(file: file, tensor: name, expected: needed, found: end - begin)
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        // Sort by offsets (stable on ties, so zero-sized tensors keep header order), then demand
        // contiguity from 0: any gap or overlap is an error, as in the reference crate.
        let order = entries.indices.sorted { (entries[$0].begin, entries[$0].end, $0) < (entries[$1].begin, entries[$1].end, $1) }
        let dataOffset = 8 + headerLength
        let dataLength = bytes.count - dataOffset
        var expected = 0
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(order.count)
        for i in order {
            let e = entries[i]
            guard e.begin == expected else {
                throw .nonContiguousOffsets(file: file, tensor: e.name, expectedStart: expected, found: e.begin)
            }
            expected = e.end
            guard e.end <= dataLength else { throw .truncatedTensor(file: file, tensor: e.name, end: e.end, dataLength: dataLength) }
            tensors.append(TensorInfo(
                name: e.name, storage: .safetensors(e.dtype), shape: e.shape,
                byteRange: (dataOffset + e.begin)..<(dataOffset + e.end)))
        }
        guard expected == dataLength else { throw .dataNotCovered(file: file, tensorsEnd: expected, dataLength: dataLength) }
        return Header(metadata: metadata, tensors: tensors, dataOffset: dataOffset)
    }

    public func info(_ name: String) -> TensorInfo? { infos[name] }

    public func rawBytes(named name: String) throws -> UnsafeRawBufferPointer {
        guard let info = infos[name] else { throw SafetensorsError.tensorNotFound(file: path, tensor: name) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[info.byteRange])
    }

    public func releasePages(named name: String) {
        if let info = infos[name] { file.advise(.dontNeed, range: info.byteRange) }
    }

    public func tensor(named name: String) throws -> Tensor {
        guard let info = infos[name] else { throw SafetensorsError.tensorNotFound(file: path, tensor: name) }
        guard case .safetensors(let dtype) = info.storage else {
            throw SafetensorsError.unsupportedConversion(file: path, tensor: name, dtype: info.storage.description)
        }
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[info.byteRange])
        let values = [Float](unsafeUninitializedCapacity: info.shape.count) { out, n in
            ElementCodec.decode(raw, dtype: dtype, into: out)  // writes every element
            n = info.shape.count
        }
        return Tensor(shape: info.shape, scalars: values)
    }
}
