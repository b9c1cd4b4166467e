import Foundation
import Formats

extension Tokenizer {
    /// Loads the tokenizer of a model: an HF folder (`tokenizer.json`, with
    /// `tokenizer_config.json` when present), a `tokenizer.json` file (its folder's
    /// `tokenizer_config.json` is used when present) or a GGUF file (`tokenizer.ggml.*`).
    public static func load(modelPath path: String) throws -> Tokenizer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or folder")
        }
        if isDir.boolValue {
            let json = (path as NSString).appendingPathComponent("tokenizer.json")
            guard FileManager.default.fileExists(atPath: json) else {
                throw TokenizerError.unreadable(path: path, reason: "folder has no tokenizer.json")
            }
            return try loadJSON(json)
        }
        if try isGGUF(path) {
            return try Tokenizer(ggufPath: path)
        }
        return try loadJSON(path)
    }

    private static func loadJSON(_ json: String) throws -> Tokenizer {
        let config = ((json as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        return try TokenizerJSONLoader.load(tokenizerJSON: json, configJSON: FileManager.default.fileExists(atPath: config) ? config : nil)
    }

    private static func isGGUF(_ path: String) throws -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "cannot open")
        }
        defer { try? h.close() }
        let magic = (try? h.read(upToCount: 4)) ?? Data()
        return magic == Data("GGUF".utf8)
    }
}
