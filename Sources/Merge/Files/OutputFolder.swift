import Foundation

/// Output folders of merges (an HF checkpoint, a PEFT adapter): refused when the folder exists
/// and is not empty unless `force`; created otherwise. Files inside are written atomically
/// (temporary file + rename) by Formats' writers.
enum OutputFolder {
    static func prepare(_ path: String, force: Bool) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw MergeError.io(path: path, reason: "exists and is not a folder") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            if !entries.isEmpty && !force { throw MergeError.outputExists(path) }
        } else {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw MergeError.io(path: path, reason: "cannot create folder: \(error.localizedDescription)")
            }
        }
    }

    /// Copies the small side files of an HF model folder (config, tokenizer, generation config)
    /// that exist in `source` into `destination`.
    static func copySideFiles(from source: String, to destination: String, force: Bool) throws {
        let names = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "tokenizer.model", "chat_template.jinja"]
        for n in names {
            let src = source + "/" + n, dst = destination + "/" + n
            guard FileManager.default.fileExists(atPath: src) else { continue }
            if FileManager.default.fileExists(atPath: dst) {
                guard force else { throw MergeError.outputExists(dst) }
                try? FileManager.default.removeItem(atPath: dst)
            }
            do { try FileManager.default.copyItem(atPath: src, toPath: dst) } catch {
                throw MergeError.io(path: dst, reason: "cannot copy \(src): \(error.localizedDescription)")
            }
        }
    }
}
