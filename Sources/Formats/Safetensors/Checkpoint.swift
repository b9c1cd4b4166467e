import Foundation
import OrderedCollections
import Tensors

/// A Hugging Face model as steertool reads it: one safetensors file, or a folder holding
/// `model.safetensors` or a sharded `model.safetensors.index.json` (with its shards), plus the
/// raw bytes of `config.json` when present. Tensors are routed to their shard by name; data stays
/// in the mapped files until asked for.
public final class Checkpoint: TensorStore, Sendable {
    /// The folder (or, for a bare file, the file's folder).
    public let directory: String
    /// The shards in the order their tensors are listed.
    public let shards: [SafetensorsFile]
    /// Tensor names: shard by shard, each in data-offset order.
    public let tensorNames: [String]
    /// `config.json` bytes, if the folder has one.
    public let configJSON: Data?
    /// `__metadata__` of the first shard.
    public let metadata: OrderedDictionary<String, String>
    /// The index file's `metadata` object (e.g. `total_size`), for sharded checkpoints.
    public let indexMetadata: JSONValue?
    private let route: [String: Int]

    /// Name of the single-file checkpoint inside a folder.
    public static let singleFileName = "model.safetensors"
    /// Name of the shard index inside a folder.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens a folder, a `.safetensors` file, or a `model.safetensors.index.json`.
    /// - Throws: `FormatsError.missingFile`, `SafetensorsError`, `TensorsError.cannotMap`.
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatsError.missingFile(path: path, reason: "no such file or folder")
        }
        let folder: String
        var indexPath: String?
        var singlePath: String?
        if isDir.boolValue {
            folder = path
            let idx = path + "/" + Self.indexFileName
            let single = path + "/" + Self.singleFileName
            if FileManager.default.fileExists(atPath: idx) {
                indexPath = idx
            } else if FileManager.default.fileExists(atPath: single) {
                singlePath = single
            } else {
                throw FormatsError.missingFile(path: path, reason: "folder has neither \(Self.singleFileName) nor \(Self.indexFileName)")
            }
        } else {
            folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            if path.hasSuffix(".json") { indexPath = path } else { singlePath = path }
        }
        directory = folder
        let configPath = folder + "/config.json"
        configJSON = FileManager.default.fileExists(atPath: configPath) ? try Data(contentsOf: URL(fileURLWithPath: configPath)) : nil

        if let singlePath {
            let f = try SafetensorsFile(path: singlePath)
            shards = [f]
            tensorNames = f.tensorNames
            metadata = f.metadata
            indexMetadata = nil
            route = Dictionary(uniqueKeysWithValues: f.tensorNames.map { ($0, 0) })
            return
        }
        let indexFile = indexPath!
        let data = try Data(contentsOf: URL(fileURLWithPath: indexFile))
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch {
            throw SafetensorsError.invalidIndex(file: indexFile, reason: "not valid JSON: \(error)")
        }
        guard let weightMap = json["weight_map"]?.objectValue else {
            throw SafetensorsError.invalidIndex(file: indexFile, reason: "no \"weight_map\" object")
        }
        var shardNames: [String] = []
        var wanted: [String: String] = [:]
        for (tensor, v) in weightMap {
            guard let shard = v.stringValue else {
                throw SafetensorsError.invalidIndex(file: indexFile, reason: "weight_map[\"\(tensor)\"] is not a string")
            }
            guard !shard.contains("/"), shard != "..", shard != ".", !shard.isEmpty else {
                throw SafetensorsError.invalidIndex(file: indexFile, reason: "shard name \"\(shard)\" is not a plain file name")
            }
            wanted[tensor] = shard
            if !shardNames.contains(shard) { shardNames.append(shard) }
        }
        shardNames.sort()
        var files: [SafetensorsFile] = []
        var names: [String] = []
        var r: [String: Int] = [:]
        for (i, shard) in shardNames.enumerated() {
            let shardPath = folder + "/" + shard
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw FormatsError.missingFile(path: shardPath, reason: "shard listed in \(Self.indexFileName) is missing")
            }
            let f = try SafetensorsFile(path: shardPath)
            for name in f.tensorNames where wanted[name] == shard {
                r[name] = i
                names.append(name)
            }
            files.append(f)
        }
        for (tensor, shard) in weightMap.map({ ($0.0, $0.1.stringValue ?? "") }) where r[tensor] == nil {
            throw SafetensorsError.invalidIndex(file: indexFile, reason: "tensor '\(tensor)' is mapped to \(shard) but that shard does not hold it")
        }
        shards = files
        tensorNames = names
        route = r
        metadata = files.first?.metadata ?? [:]
        indexMetadata = json["metadata"]
    }

    /// The shard holding `name`, or nil.
    public func shard(holding name: String) -> SafetensorsFile? { route[name].map { shards[$0] } }

    public func info(_ name: String) -> TensorInfo? { shard(holding: name)?.info(name) }

    public func tensor(named name: String) throws -> Tensor {
        guard let s = shard(holding: name) else { throw SafetensorsError.tensorNotFound(file: directory, tensor: name) }
        return try s.tensor(named: name)
    }

    public func releasePages(named name: String) {
        shard(holding: name)?.releasePages(named: name)
    }

    public func rawBytes(named name: String) throws -> UnsafeRawBufferPointer {
        guard let s = shard(holding: name) else { throw SafetensorsError.tensorNotFound(file: directory, tensor: name) }
        return try s.rawBytes(named: name)
    }
}
