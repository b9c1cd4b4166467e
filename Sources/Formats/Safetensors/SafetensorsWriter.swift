import Foundation
import OrderedCollections
import Tensors

/// One tensor to be written by a streaming writer: what the header says about it, and a closure
/// producing its bytes when the writer reaches it (so a converter holds about one tensor in
/// memory at a time).
public struct TensorRecord {
    /// Name in the output file.
    public var name: String
    /// Row-major shape.
    public var shape: Shape
    /// Storage type in the output file.
    public var storage: StorageType
    /// Produces exactly `byteCount` bytes of stored data.
    public var bytes: () throws -> [UInt8]

    /// A record whose bytes come from `produce`.
    public init(name: String, shape: Shape, storage: StorageType, bytes produce: @escaping () throws -> [UInt8]) {
        self.name = name
        self.shape = shape
        self.storage = storage
        self.bytes = produce
    }

    /// Bytes of stored data, or nil on overflow / a row length the type cannot block.
    public var byteCount: Int? { storage.byteCount(elements: shape.count, rowLength: shape.dims.last ?? 1) }
}

/// Writes safetensors files the way the Python `safetensors` library does: compact JSON header
/// with `__metadata__` first, padded with spaces to a multiple of 8 bytes, then the tensors'
/// data contiguously in the given order. Output goes through `AtomicFileWriter`.
public enum SafetensorsWriter {
    /// A record that encodes a Float32 tensor as `dtype` when written.
    public static func record(_ name: String, _ tensor: Tensor, as dtype: DType = .f32) -> TensorRecord {
        TensorRecord(name: name, shape: tensor.shape, storage: .safetensors(dtype)) {
            do {
                return try tensor.withUnsafeBufferPointer { try ElementCodec.encode($0, as: dtype) }
            } catch {
                throw FormatsError.unsupportedConversion(file: "", tensor: name, type: dtype.rawValue, reason: "\(error)")
            }
        }
    }

    /// A record with raw little-endian bytes already in `dtype` (length checked when written).
    public static func record(_ name: String, dtype: DType, shape: Shape, rawBytes: [UInt8]) -> TensorRecord {
        TensorRecord(name: name, shape: shape, storage: .safetensors(dtype)) { rawBytes }
    }

    /// The header bytes (JSON padded with spaces to a multiple of 8) for `records`.
    /// - Throws: `FormatsError` on a duplicate name, a GGML storage type, or a size overflow.
    public static func header(for records: [TensorRecord], metadata: OrderedDictionary<String, String>?, path: String) throws -> [UInt8] {
        var pairs: [(String, JSONValue)] = []
        if let metadata, !metadata.isEmpty {
            pairs.append(("__metadata__", .object(metadata.map { ($0.key, .string($0.value)) })))
        }
        var seen = Set<String>()
        var offset = 0
        for r in records {
            guard r.name != "__metadata__", seen.insert(r.name).inserted else {
                throw FormatsError.invalidModel(file: path, reason: "duplicate or reserved tensor name '\(r.name)'")
            }
            guard case .safetensors(let dtype) = r.storage else {
                throw FormatsError.unsupportedConversion(file: path, tensor: r.name, type: r.storage.description, reason: "safetensors stores only plain dtypes")
            }
            guard let n = r.byteCount else {
                throw FormatsError.invalidShape(file: path, tensor: r.name, shape: r.shape.dims, reason: "byte size overflows")
            }
            pairs.append((r.name, .object([
                ("dtype", .string(dtype.rawValue)),
                ("shape", .array(r.shape.dims.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + n)])),
            ])))
            offset += n
        }
        var json = Array(JSONValue.object(pairs).description.utf8)
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        return out
    }

    /// Writes `records` (in order) with optional `__metadata__` to `path`.
    /// - Throws: `FormatsError.outputExists` unless `force`; `FormatsError` when a record's
    ///   bytes have the wrong length; whatever a record's producer throws.
    public static func write(_ records: [TensorRecord], metadata: OrderedDictionary<String, String>? = nil, to path: String, force: Bool = false) throws {
        let head = try header(for: records, metadata: metadata, path: path)
        let out = try AtomicFileWriter(path: path, force: force)
        try out.write(head)
        for r in records {
            let bytes = try r.bytes()
            guard bytes.count == r.byteCount else {
                throw FormatsError.invalidShape(file: path, tensor: r.name, shape: r.shape.dims,
                                                reason: "producer gave \(bytes.count) bytes, expected \(r.byteCount ?? -1)")
            }
            try out.write(bytes)
        }
        try out.commit()
    }

    /// Writes a Hugging Face sharded checkpoint into `folder`: `model-0000i-of-0000n.safetensors`
    /// files of at most `maxShardBytes` of tensor data each (a larger tensor gets its own shard)
    /// and `model.safetensors.index.json` (`metadata.total_size`, `weight_map` sorted by name),
    /// as transformers' `save_pretrained`. With a single shard, writes `model.safetensors` only.
    /// - Returns: the file names written.
    @discardableResult
    public static func writeSharded(_ records: [TensorRecord], metadata: OrderedDictionary<String, String>? = nil,
                                    to folder: String, maxShardBytes: Int, force: Bool = false) throws -> [String] {
        var groups: [[TensorRecord]] = [[]]
        var size = 0
        var total = 0
        for r in records {
            guard let n = r.byteCount else {
                throw FormatsError.invalidShape(file: folder, tensor: r.name, shape: r.shape.dims, reason: "byte size overflows")
            }
            if !groups[groups.count - 1].isEmpty, size + n > maxShardBytes {
                groups.append([])
                size = 0
            }
            groups[groups.count - 1].append(r)
            size += n
            total += n
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if groups.count == 1 {
            try write(records, metadata: metadata, to: folder + "/" + Checkpoint.singleFileName, force: force)
            return [Checkpoint.singleFileName]
        }
        func pad(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        var names: [String] = []
        var weightMap: [(String, String)] = []
        for (i, g) in groups.enumerated() {
            let name = "model-\(pad(i + 1))-of-\(pad(groups.count)).safetensors"
            try write(g, metadata: metadata ?? ["format": "pt"], to: folder + "/" + name, force: force)
            names.append(name)
            weightMap += g.map { ($0.name, name) }
        }
        weightMap.sort { $0.0 < $1.0 }
        let index = JSONValue.object([
            ("metadata", .object([("total_size", .int(total))])),
            ("weight_map", .object(weightMap.map { ($0.0, .string($0.1)) })),
        ])
        let out = try AtomicFileWriter(path: folder + "/" + Checkpoint.indexFileName, force: force)
        try out.write(index.serialized(indent: 2) + "\n")
        try out.commit()
        names.append(Checkpoint.indexFileName)
        return names
    }
}
