import OrderedCollections
import Tensors

/// Writes GGUF version 3 files as gguf-py's `GGUFWriter` does: header (magic, version, tensor
/// count, metadata count), metadata key-values, tensor infos (dims innermost-first, offsets
/// relative to the data section, each tensor's size padded to the alignment), zero padding to
/// the alignment, then each tensor's data followed by zero padding to the alignment. Tensor
/// bytes are produced one record at a time (see `TensorRecord`); output goes through
/// `AtomicFileWriter`.
public enum GGUFWriter {
    /// The version written.
    public static let version: UInt32 = 3

    /// A record that encodes a Float32 tensor as `type` when written.
    /// - Precondition: `GGMLQuantizer.supports(type)`.
    public static func record(_ name: String, _ tensor: Tensor, as type: GGMLType) -> TensorRecord {
        precondition(GGMLQuantizer.supports(type), "GGUFWriter cannot encode \(type)")
        return TensorRecord(name: name, shape: tensor.shape, storage: .ggml(type)) {
            tensor.withUnsafeBufferPointer { GGMLQuantizer.quantize($0, as: type) }
        }
    }

    /// Encoded bytes of one metadata value (without its type tag).
    public static func encode(_ value: GGUFValue, into out: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        switch value {
        case .uint8(let v): put(v)
        case .int8(let v): put(v)
        case .uint16(let v): put(v)
        case .int16(let v): put(v)
        case .uint32(let v): put(v)
        case .int32(let v): put(v)
        case .float32(let v): put(v.bitPattern)
        case .bool(let v): put(UInt8(v ? 1 : 0))
        case .string(let s):
            let u = Array(s.utf8)
            put(UInt64(u.count))
            out.append(contentsOf: u)
        case let .array(t, items):
            put(t.rawValue)
            put(UInt64(items.count))
            for item in items { encode(item, into: &out) }
        case .uint64(let v): put(v)
        case .int64(let v): put(v)
        case .float64(let v): put(v.bitPattern)
        }
    }

    /// Writes `metadata` and `records` to `path`. The alignment is `general.alignment` when
    /// present (a UINT32 power of two), else 32.
    /// - Throws: `FormatsError` for mismatched array element types, unencodable shapes, a
    ///   duplicate name, a record producing the wrong byte count, or an existing output without `force`.
    public static func write(metadata: OrderedDictionary<String, GGUFValue>, tensors records: [TensorRecord],
                             to path: String, force: Bool = false) throws {
        var alignment = GGUFFile.defaultAlignment
        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw FormatsError.invalidModel(file: path, reason: "general.alignment must be a UINT32 power of two")
            }
            alignment = Int(v)
        }
        func pad(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        func checkArrays(_ key: String, _ v: GGUFValue) throws {
            guard case let .array(t, items) = v else { return }
            for item in items {
                guard item.type == t else {
                    throw FormatsError.invalidModel(file: path, reason: "metadata '\(key)': array of \(t) holds a \(item.type)")
                }
                try checkArrays(key, item)
            }
        }
        var head: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { head.append(contentsOf: $0) } }
        put(GGUFFile.magic)
        put(version)
        put(UInt64(records.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            try checkArrays(key, value)
            encode(.string(key), into: &head)
            put(value.type.rawValue)
            encode(value, into: &head)
        }
        var offset = 0
        var sizes: [Int] = []
        var seen = Set<String>()
        for r in records {
            guard seen.insert(r.name).inserted else { throw FormatsError.invalidModel(file: path, reason: "duplicate tensor name '\(r.name)'") }
            guard case .ggml(let type) = r.storage, let size = r.byteCount, r.shape.rank <= GGUFFile.maxDimensions else {
                throw FormatsError.invalidShape(file: path, tensor: r.name, shape: r.shape.dims,
                                                reason: "cannot be stored as \(r.storage) in GGUF (rank ≤ 4, rows a multiple of the block size)")
            }
            encode(.string(r.name), into: &head)
            put(UInt32(r.shape.rank))
            for d in r.shape.dims.reversed() { put(UInt64(d)) }
            put(type.rawValue)
            put(UInt64(offset))
            offset += pad(size)
            sizes.append(size)
        }
        let out = try AtomicFileWriter(path: path, force: force)
        try out.write(head)
        try out.writeZeros(pad(head.count) - head.count)
        for (r, size) in zip(records, sizes) {
            let bytes = try r.bytes()
            guard bytes.count == size else {
                throw FormatsError.invalidShape(file: path, tensor: r.name, shape: r.shape.dims, reason: "producer gave \(bytes.count) bytes, expected \(size)")
            }
            try out.write(bytes)
            try out.writeZeros(pad(size) - size)
        }
        try out.commit()
    }
}
