import Foundation
import Formats
import Runtime
import Testing

/// Malformed or unsupported tokenizer descriptions give errors that name what is wrong.
@Suite("Tokenizer: bad input")
struct TokenizerHostileTests {
    static func doc(_ json: String) throws -> JSONValue { try JSONParser.parse(Array(json.utf8)) }

    static let base = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": PRE, "decoder": {"type": "ByteLevel"}}"#

    @Test("unknown pre-tokenizer patterns and types are named")
    func unknownPreTokenizer() throws {
        let split = #"{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}"#
        do {
            _ = try TokenizerJSONLoader.build(try Self.doc(Self.base.replacingOccurrences(of: "PRE", with: split)), config: nil, source: "t.json")
            Issue.record("accepted an unknown Split pattern")
        } catch let e as TokenizerError {
            #expect("\(e)".contains(#"\w+"#) && "\(e)".contains("t.json"))
        }
        do {
            _ = try TokenizerJSONLoader.build(try Self.doc(Self.base.replacingOccurrences(of: "PRE", with: #"{"type": "Whitespace"}"#)), config: nil, source: "t.json")
            Issue.record("accepted Whitespace")
        } catch let e as TokenizerError {
            #expect(e == .unsupportedPreTokenizer("Whitespace", source: "t.json"))
        }
    }

    @Test("a merge naming a token outside the vocabulary is rejected with its index")
    func badMerge() throws {
        let json = Self.base.replacingOccurrences(of: "PRE", with: "null").replacingOccurrences(of: #"["a b"]"#, with: #"["a b", "b c"]"#)
        #expect(throws: TokenizerError.invalidFormat(source: "t.json", reason: "merge 1 'b c' names a token outside the vocabulary")) {
            try TokenizerJSONLoader.build(try Self.doc(json), config: nil, source: "t.json")
        }
    }

    @Test("non-BPE models, missing model, bad ids are rejected")
    func badModel() throws {
        #expect(throws: TokenizerError.unsupportedModel("Unigram", source: "t.json")) {
            try TokenizerJSONLoader.build(try Self.doc(#"{"model": {"type": "Unigram", "vocab": []}}"#), config: nil, source: "t.json")
        }
        #expect(throws: TokenizerError.self) {
            try TokenizerJSONLoader.build(try Self.doc(#"{"normalizer": null}"#), config: nil, source: "t.json")
        }
        #expect(throws: TokenizerError.self) {
            try TokenizerJSONLoader.build(try Self.doc(#"{"model": {"type": "BPE", "vocab": {"a": -5}, "merges": []}}"#), config: nil, source: "t.json")
        }
        #expect(throws: TokenizerError.self) {
            try TokenizerJSONLoader.build(try Self.doc(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}"#), config: nil, source: "t.json")
        }
        // A single token claiming a huge id must not size an allocation.
        #expect(throws: TokenizerError.self) {
            try TokenizerJSONLoader.build(try Self.doc(#"{"model": {"type": "BPE", "vocab": {"a": 16000000}, "merges": []}}"#), config: nil, source: "t.json")
        }
    }

    @Test("GGUF metadata: unknown pre-tokenizer, unknown model, mismatched counts, ids out of range")
    func gguf() throws {
        let tokens = ["a", "b", "ab"]
        #expect(throws: TokenizerError.unsupportedPreTokenizer("mystery", source: "m.gguf")) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "gpt2", pre: "mystery", tokens: tokens, merges: ["a b"]), source: "m.gguf")
        }
        #expect(throws: TokenizerError.unsupportedModel("t5", source: "m.gguf")) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "t5", tokens: tokens), source: "m.gguf")
        }
        #expect(throws: TokenizerError.self) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "llama", tokens: tokens, scores: [0, 0]), source: "m.gguf")
        }
        #expect(throws: TokenizerError.self) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "gpt2", pre: "gpt-2", tokens: tokens, tokenTypes: [1, 1]), source: "m.gguf")
        }
        #expect(throws: TokenizerError.self) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "gpt2", pre: "gpt-2", tokens: tokens, bosTokenID: 7), source: "m.gguf")
        }
        #expect(throws: TokenizerError.self) {
            try Tokenizer(gguf: GGUFTokenizerMetadata(model: "gpt2", pre: "gpt-2", tokens: tokens, merges: ["ab"]), source: "m.gguf")
        }
    }

    @Test("GGUF metadata of the wrong type names the key and the type it should be")
    func ggufMetadataTypes() throws {
        let good: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string("gpt-2"),
            "tokenizer.ggml.tokens": .array(elementType: .string, [.string("a"), .string("b")]),
            "tokenizer.ggml.bos_token_id": .uint32(1),
        ]
        #expect(try GGUFTokenizerMetadata(metadata: { good[$0] }, source: "m.gguf").bosTokenID == 1)
        let cases: [(String, GGUFValue, String)] = [
            ("tokenizer.ggml.model", .uint32(1), "a string"),
            ("tokenizer.ggml.bos_token_id", .string("1"), "an integer"),
            ("tokenizer.ggml.add_bos_token", .uint8(1), "a bool"),
            ("tokenizer.ggml.tokens", .array(elementType: .string, [.string("a"), .uint8(2)]), "an array of strings"),
            ("tokenizer.ggml.scores", .string("0"), "an array of numbers"),
            ("tokenizer.ggml.token_type", .array(elementType: .int64, [.int64(1), .int64(1 << 40)]), "an array of integers"),
        ]
        for (key, value, what) in cases {
            var m = good
            m[key] = value
            #expect(throws: TokenizerError.invalidFormat(source: "m.gguf", reason: "\(key) is not \(what)")) {
                try GGUFTokenizerMetadata(metadata: { m[$0] }, source: "m.gguf")
            }
        }
    }

    @Test("files that are not tokenizers")
    func files() throws {
        #expect(throws: TokenizerError.self) { try Tokenizer.load(modelPath: "/nonexistent/tokenizer.json") }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-bad-\(UUID().uuidString).json")
        try Data("{\"model\": ".utf8).write(to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        #expect(throws: TokenizerError.self) { try Tokenizer.load(modelPath: tmp.path) }
    }

    @Test("ids out of range are reported by validate and skipped by decode")
    func outOfRange() throws {
        let tok = try TokenizerFixtures.vocab("gpt-2")
        #expect(throws: TokenizerError.tokenOutOfRange(id: 999_999, vocabularySize: tok.vocabularySize)) { try tok.validate([0, 999_999]) }
        #expect(tok.decode([999_999, -1]) == "")
    }

    @Test("a long word without spaces (heap path) and a long text encode without trouble")
    func longInput() throws {
        let tok = try TokenizerFixtures.vocab("gpt-2")
        let word = String(repeating: "abcdefgh", count: 500)
        let ids = tok.encode(word, addSpecialTokens: false)
        #expect(tok.decode(ids) == word)
        let spm = try TokenizerFixtures.vocab("llama-spm")
        let text = String(repeating: "Hello world, this is a test. ", count: 200)
        #expect(spm.decode(spm.encode(text, addSpecialTokens: false)) == text)
    }

    @Test("a truncated vocab GGUF is an error at every cut, never a crash")
    func truncatedGGUF() throws {
        let bytes = try TokenizerFixtures.vocabGGUF("llama-spm")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-cut-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for cut in [4, 8, 24, 100, 5000, bytes.count / 3, bytes.count / 2, bytes.count - 9] {
            try bytes.prefix(cut).write(to: tmp)
            #expect(throws: (any Error).self, "cut at \(cut)") { try Tokenizer.load(modelPath: tmp.path) }
        }
    }
}
