import Foundation
import Formats
import Runtime
import TestSupport

/// Reading the recorded tokenizer references.
enum TokenizerFixtures {
    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String { "fixture missing: \(path)" }
    }

    static func json(_ relative: String) throws -> JSONValue {
        let path = Fixtures.path(relative)
        guard let data = FileManager.default.contents(atPath: path) else { throw Missing(path: path) }
        return try JSONParser.parse([UInt8](data))
    }

    /// llama.cpp's test pairs: `.inp` strings split on "\n__ggml_vocab_test__\n", `.out` one line
    /// of space-separated ids per string (as tests/test-tokenizer-0.cpp reads them).
    static func vocabTests(_ name: String) throws -> [(text: String, ids: [Int])] {
        let base = Fixtures.path("vocab/ggml-vocab-\(name).gguf")
        guard let inp = FileManager.default.contents(atPath: base + ".inp"),
              let out = FileManager.default.contents(atPath: base + ".out") else { throw Missing(path: base + ".inp/.out") }
        let raw = [UInt8](inp)
        let sep = Array("\n__ggml_vocab_test__\n".utf8)
        var texts: [String] = []
        var start = 0, i = 0
        while i + sep.count <= raw.count {
            if Array(raw[i..<(i + sep.count)]) == sep {
                texts.append(String(decoding: raw[start..<i], as: UTF8.self))
                i += sep.count
                start = i
            } else {
                i += 1
            }
        }
        // The file ends with a separator; like the C++ reader, no empty string after it.
        if start < raw.count { texts.append(String(decoding: raw[start...], as: UTF8.self)) }
        var lines = String(decoding: out, as: UTF8.self).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let ids = lines.map { $0.split(separator: " ").compactMap { Int($0) } }
        guard texts.count == ids.count else { throw Missing(path: "\(base): \(texts.count) strings but \(ids.count) id lines") }
        return Array(zip(texts, ids)).map { (text: $0.0, ids: $0.1) }
    }

    static func vocab(_ name: String) throws -> Tokenizer {
        try Tokenizer.load(modelPath: Fixtures.path("vocab/ggml-vocab-\(name).gguf"))
    }
}
