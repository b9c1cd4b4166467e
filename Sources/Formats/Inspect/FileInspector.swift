import Foundation
import Tensors

/// What `steertool inspect` reports about a file or folder: its format, metadata, and tensors.
public struct Inspection: Sendable {
    /// The kinds of input steertool recognizes.
    public enum Format: String, Sendable {
        case safetensors, huggingFaceModel = "hf-model", gguf, peftAdapter = "peft-adapter"
        case steeringAdapter = "steering-adapter", controlVector = "control-vector", torchPickle = "torch-bin"
    }

    /// One metadata entry: key, type name (GGUF value type, or "string"/"json"), value as JSON.
    public struct MetadataEntry: Sendable {
        public var key: String
        public var type: String
        public var value: JSONValue
    }

    public var path: String
    public var format: Format
    public var metadata: [MetadataEntry]
    /// Tensors in file order (byte ranges are absolute within their file).
    public var tensors: [TensorInfo]
    /// Sum of the tensors' element counts.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.shape.count } }
    /// Sum of the tensors' stored bytes.
    public var byteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Machine-readable form: `{"path", "format", "metadata": [{key, type, value}], "tensors":
    /// [{name, dtype, shape, bytes}], "parameters", "bytes"}`.
    public var json: JSONValue {
        .object([
            ("path", .string(path)), ("format", .string(format.rawValue)),
            ("metadata", .array(metadata.map { .object([("key", .string($0.key)), ("type", .string($0.type)), ("value", $0.value)]) })),
            ("tensors", .array(tensors.map {
                .object([("name", .string($0.name)), ("dtype", .string($0.storage.description)),
                         ("shape", .array($0.shape.dims.map { .int($0) })), ("bytes", .int($0.byteCount))])
            })),
            ("parameters", .int(parameterCount)), ("bytes", .int(byteCount)),
        ])
    }

    /// Human-readable form: a header, metadata (long arrays abbreviated), and a tensor table.
    public func text(maxArrayItems: Int = 8) -> String {
        var lines = ["\(path): \(format.rawValue)"]
        if !metadata.isEmpty {
            lines.append("metadata (\(metadata.count)):")
            for m in metadata {
                var v = m.value.description
                if case .array(let items) = m.value, items.count > maxArrayItems {
                    v = "[" + items.prefix(maxArrayItems).map(\.description).joined(separator: ",") + ",…] (\(items.count) items)"
                }
                if v.count > 160 { v = String(v.prefix(157)) + "…" }
                lines.append("  \(m.key) [\(m.type)] = \(v)")
            }
        }
        let nameWidth = min(60, tensors.map(\.name.count).max() ?? 4)
        lines.append("tensors (\(tensors.count)):")
        for t in tensors {
            let name = t.name.count < nameWidth ? t.name + String(repeating: " ", count: nameWidth - t.name.count) : t.name
            let dtype = t.storage.description.padding(toLength: 7, withPad: " ", startingAt: 0)
            lines.append("  \(name)  \(dtype) \(t.shape.description.padding(toLength: 16, withPad: " ", startingAt: 0)) \(t.byteCount) bytes")
        }
        lines.append("parameters: \(parameterCount)  bytes: \(byteCount)")
        return lines.joined(separator: "\n")
    }
}

/// Recognizes and summarizes a model, adapter or tensor file.
public enum FileInspector {
    /// Inspects `path`: a GGUF file (models and control vectors), a safetensors file (plain or a
    /// steering adapter), a `.safetensors.index.json`, an HF model folder, a PEFT adapter folder,
    /// or a torch `.bin`.
    /// - Throws: the format's error for a malformed file; `FormatsError.missingFile` for an
    ///   unrecognized path.
    public static func inspect(path: String) throws -> Inspection {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatsError.missingFile(path: path, reason: "no such file or folder")
        }
        if isDir.boolValue {
            if FileManager.default.fileExists(atPath: path + "/adapter_config.json") { return try peft(path) }
            return try hfModel(path)
        }
        if path.hasSuffix(".json") { return try hfModel(path) }
        if path.hasSuffix(".bin") { return try torchBin(path) }
        let file = try MappedFile(path: path)
        if file.count >= 4, file.bytes.loadUnaligned(as: UInt32.self) == GGUFFile.magic {
            return try gguf(GGUFFile(file: file))
        }
        let st = try SafetensorsFile(file: file)
        let md = st.metadata.map { Inspection.MetadataEntry(key: $0.key, type: "string", value: .string($0.value)) }
        let format: Inspection.Format = st.metadata["format"] == SteeringAdapterFile.formatName ? .steeringAdapter : .safetensors
        if format == .steeringAdapter { _ = try SteeringAdapterFile.load(path: path) }  // validate its layout too
        return Inspection(path: path, format: format, metadata: md, tensors: st.tensorInfos)
    }

    static func gguf(_ g: GGUFFile) throws -> Inspection {
        var md = [Inspection.MetadataEntry(key: "GGUF.version", type: "UINT32", value: .int(Int(g.version)))]
        for (k, v) in g.metadata {
            var type = v.type.description
            if case .array(let t, _) = v { type += "[\(t)]" }
            md.append(.init(key: k, type: type, value: json(v)))
        }
        let format: Inspection.Format = g.architecture == ControlVectorFile.architecture ? .controlVector : .gguf
        return Inspection(path: g.path, format: format, metadata: md, tensors: g.tensorInfos)
    }

    static func hfModel(_ path: String) throws -> Inspection {
        let ck = try Checkpoint(path: path)
        var md: [Inspection.MetadataEntry] = ck.metadata.map { .init(key: $0.key, type: "string", value: .string($0.value)) }
        md.append(.init(key: "shards", type: "json", value: .array(ck.shards.map { .string(URL(fileURLWithPath: $0.path).lastPathComponent) })))
        if let c = ck.configJSON, let j = try? JSONParser.parse([UInt8](c)) { md.append(.init(key: "config.json", type: "json", value: j)) }
        return Inspection(path: path, format: .huggingFaceModel, metadata: md, tensors: ck.tensorInfos)
    }

    static func peft(_ path: String) throws -> Inspection {
        let a = try PEFTAdapter.load(directory: path)
        var md: [Inspection.MetadataEntry] = [.init(key: "adapter_config.json", type: "json", value: a.config.raw)]
        md.append(.init(key: "modules", type: "json", value: .array(a.modules.map {
            .object([("name", .string($0.name)), ("rank", .int($0.rank)), ("scale", .float($0.scale))])
        })))
        let st = path + "/adapter_model.safetensors"
        var tensors: [TensorInfo] = []
        if FileManager.default.fileExists(atPath: st) { tensors = try SafetensorsFile(path: st).tensorInfos }
        else {
            for m in a.modules {
                tensors.append(TensorInfo(name: PEFTAdapter.prefix + m.name + ".lora_A.weight", storage: .safetensors(.f32), shape: m.a.shape, byteRange: 0..<(m.a.count * 4)))
                tensors.append(TensorInfo(name: PEFTAdapter.prefix + m.name + ".lora_B.weight", storage: .safetensors(.f32), shape: m.b.shape, byteRange: 0..<(m.b.count * 4)))
            }
        }
        return Inspection(path: path, format: .peftAdapter, metadata: md, tensors: tensors)
    }

    static func torchBin(_ path: String) throws -> Inspection {
        let t = try TorchPickleReader.load(path: path)
        let infos = t.keys.sorted().map { k in
            TensorInfo(name: k, storage: .safetensors(.f32), shape: t[k]?.shape ?? [], byteRange: 0..<((t[k]?.count ?? 0) * 4))
        }
        return Inspection(path: path, format: .torchPickle, metadata: [], tensors: infos)
    }

    /// A GGUF value as JSON (numbers exact, strings as strings, arrays nested).
    public static func json(_ v: GGUFValue) -> JSONValue {
        switch v {
        case .bool(let b): .bool(b)
        case .string(let s): .string(s)
        case .float32(let f): f.isFinite ? .float(f) : .string("\(f)")
        case .float64(let d): d.isFinite ? .double(d) : .string("\(d)")
        case .array(_, let items): .array(items.map(json))
        case .uint64(let u): .number(String(u))
        default: .int(v.intValue ?? 0)
        }
    }
}
