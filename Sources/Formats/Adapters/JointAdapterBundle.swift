import Foundation

/// A joint weight + activation adapter (the paper's joint adaptation) as one folder:
/// ```
/// <bundle>/joint.json              {"format": "steertool-joint", "version": 1,
///                                   "lora": "lora", "steering": "steering.safetensors", ...}
/// <bundle>/lora/                   PEFT LoRA folder (the weight part)
/// <bundle>/steering.safetensors    steertool steering file (the activation part, post-block)
/// ```
/// `forward`/`generate`/`eval` apply both parts unmerged; `merge lora --adapter <bundle>` folds the LoRA into the
/// base and keeps the steering file.
public enum JointAdapterBundle {
    /// Manifest file name inside the bundle.
    public static let manifestName = "joint.json"
    /// Value of the manifest's `format` key.
    public static let formatName = "steertool-joint"

    /// The two parts of a bundle on disk.
    public struct Parts: Sendable, Equatable {
        /// The PEFT LoRA folder.
        public var loraPath: String
        /// The steering adapter file.
        public var steeringPath: String
    }

    /// Whether `path` is a folder holding a `joint.json` manifest.
    public static func isBundle(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: path + "/" + manifestName)
    }

    /// Reads and checks the manifest: format, version, and both parts present inside the bundle.
    /// - Throws: `FormatsError.missingFile` / `.invalidJSON` / `.invalidModel` naming the bundle.
    public static func read(_ path: String) throws -> Parts {
        let manifestPath = path + "/" + manifestName
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw FormatsError.missingFile(path: manifestPath, reason: "a joint adapter bundle needs \(manifestName)")
        }
        guard let object = try? JSONParser.parse([UInt8](data)), object.objectValue != nil else {
            throw FormatsError.invalidJSON(file: manifestPath, reason: "not a JSON object")
        }
        guard object["format"]?.stringValue == formatName else {
            throw FormatsError.invalidModel(file: manifestPath, reason: "format is not '\(formatName)'")
        }
        guard let version = object["version"]?.intValue, version >= 1, version <= FormatsModule.steertoolFormatVersion else {
            throw FormatsError.invalidModel(file: manifestPath, reason: "unsupported version \(object["version"]?.description ?? "none")")
        }
        guard let lora = object["lora"]?.stringValue, let steering = object["steering"]?.stringValue,
              isInside(lora), isInside(steering) else {
            throw FormatsError.invalidModel(file: manifestPath, reason: "'lora' and 'steering' must name parts inside the bundle")
        }
        let parts = Parts(loraPath: path + "/" + lora, steeringPath: path + "/" + steering)
        guard FileManager.default.fileExists(atPath: parts.loraPath + "/adapter_config.json") else {
            throw FormatsError.missingFile(path: parts.loraPath, reason: "the bundle's LoRA part (a PEFT folder) is missing")
        }
        guard FileManager.default.fileExists(atPath: parts.steeringPath) else {
            throw FormatsError.missingFile(path: parts.steeringPath, reason: "the bundle's steering part is missing")
        }
        return parts
    }

    /// Writes a bundle: both parts into a temporary folder next to `path`, then renamed into place.
    /// An existing `path` is replaced only with `force` (and only after the new bundle is complete).
    /// - Parameters:
    ///   - writeLoRA: writes the PEFT folder at the path it is given (it does not exist yet).
    ///   - steering: the activation part.
    ///   - details: extra manifest keys (e.g. ranks, the projection interval).
    public static func write(to path: String, force: Bool = false, details: [String: String] = [:],
                             steering: SteeringAdapterFile, writeLoRA: (String) throws -> Void) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) && !force { throw FormatsError.outputExists(path: path) }
        let parent = (path as NSString).deletingLastPathComponent
        let scratch = (parent.isEmpty ? "." : parent) + "/.steertool-joint-\(UUID().uuidString)"
        do {
            try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            try writeLoRA(scratch + "/lora")
            try steering.write(to: scratch + "/steering.safetensors")
            var manifest: [(String, JSONValue)] = [("format", .string(formatName)), ("version", .int(FormatsModule.steertoolFormatVersion)),
                                                   ("lora", .string("lora")), ("steering", .string("steering.safetensors"))]
            let fixed = Set(manifest.map(\.0))
            manifest += details.keys.sorted().filter { !fixed.contains($0) }.map { ($0, .string(details[$0]!)) }
            let data = Data((JSONValue.object(manifest).serialized(indent: 2) + "\n").utf8)
            guard fm.createFile(atPath: scratch + "/" + manifestName, contents: data) else {
                throw FormatsError.io(path: scratch + "/" + manifestName, operation: "create", errno: errno)
            }
            if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
            try fm.moveItem(atPath: scratch, toPath: path)
        } catch {
            try? fm.removeItem(atPath: scratch)
            throw error
        }
    }

    private static func isInside(_ relative: String) -> Bool {
        !relative.isEmpty && !relative.hasPrefix("/") && !relative.split(separator: "/").contains("..")
    }
}
