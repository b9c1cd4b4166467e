import Foundation
import Runtime
import TestSupport
import Testing

/// fixtures/tokenizer: a byte-level BPE trained with HF tokenizers, and its encodings recorded by
/// the same library (with and without the BOS template).
@Suite("Tokenizer: tokenizer.json")
struct TokenizerJSONTests {
    @Test("fixture strings encode exactly as HF tokenizers, with and without special tokens, and decode back")
    func encodings() throws {
        let tok = try Tokenizer.load(modelPath: Fixtures.path("tokenizer/tokenizer.json"))
        let entries = try #require(try TokenizerFixtures.json("tokenizer/encodings.json").arrayValue)
        #expect(entries.count >= 15)
        for e in entries {
            let text = try #require(e["text"]?.stringValue)
            let ids = try #require(e["ids"]?.arrayValue).compactMap(\.intValue)
            let withSpecial = try #require(e["ids_with_special"]?.arrayValue).compactMap(\.intValue)
            #expect(tok.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
            #expect(tok.encode(text, addSpecialTokens: true) == withSpecial, "\(text.debugDescription)")
            #expect(tok.decode(ids) == text, "decode of \(text.debugDescription)")
        }
    }

    @Test("an HF folder loads its tokenizer.json and takes BOS/EOS and the chat template from tokenizer_config.json")
    func folder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.path("tokenizer/tokenizer.json"), toPath: dir.appendingPathComponent("tokenizer.json").path)
        let config = #"{"bos_token": "<|endoftext|>", "eos_token": {"content": "<|im_end|>"}, "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"}"#
        try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try Tokenizer.load(modelPath: dir.path)
        #expect(tok.bosTokenID == 0)
        #expect(tok.eosTokenID == 2)
        let entries = try #require(try TokenizerFixtures.json("tokenizer/encodings.json").arrayValue)
        let first = try #require(entries.first { ($0["text"]?.stringValue ?? "").count > 5 })
        #expect(tok.encode(try #require(first["text"]?.stringValue), addSpecialTokens: true)
                == (try #require(first["ids_with_special"]?.arrayValue)).compactMap(\.intValue))
        let template = try tok.chatTemplate().template
        #expect(template.defaultSystemPrompt == nil)
        #expect(template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
                == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("Llama-2-style tokenizer.json (character BPE, byte fallback, ▁ normalizer, Strip decoder) encodes and decodes as HF tokenizers")
    func sentencePieceStyle() throws {
        let tok = try Tokenizer.load(modelPath: Fixtures.path("vocab/hf-spm-bpe.tokenizer.json"))
        #expect(tok.addsBOS && tok.bosTokenID == 1)
        let entries = try #require(try TokenizerFixtures.json("vocab/hf-spm-bpe.encodings.json").arrayValue)
        #expect(entries.count >= 50)
        var sawByteFallback = false
        for e in entries {
            let text = try #require(e["text"]?.stringValue)
            let ids = try #require(e["ids"]?.arrayValue).compactMap(\.intValue)
            let withSpecial = try #require(e["ids_with_special"]?.arrayValue).compactMap(\.intValue)
            #expect(tok.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
            #expect(tok.encode(text, addSpecialTokens: true) == withSpecial, "\(text.debugDescription)")
            #expect(tok.decode(ids) == e["decoded"]?.stringValue, "decode of \(text.debugDescription)")
            if ids.contains(where: { (3..<259).contains($0) }) { sawByteFallback = true }
        }
        #expect(sawByteFallback)
    }

    @Test("the tiny model's GGUF copy (tokenizer.ggml.*) and its HF folder encode the fixture strings as HF tokenizers",
          arguments: ["tiny/gguf/base.f32.gguf", "tiny/base"])
    func convertedCopies(path: String) throws {
        let tok = try Tokenizer.load(modelPath: Fixtures.path(path))
        let entries = try #require(try TokenizerFixtures.json("tokenizer/encodings.json").arrayValue)
        for e in entries {
            let text = try #require(e["text"]?.stringValue)
            #expect(tok.encode(text, addSpecialTokens: false) == (try #require(e["ids"]?.arrayValue)).compactMap(\.intValue), "\(path): \(text.debugDescription)")
            #expect(tok.encode(text, addSpecialTokens: true) == (try #require(e["ids_with_special"]?.arrayValue)).compactMap(\.intValue), "\(path): \(text.debugDescription)")
        }
    }
}
