import Foundation
import Runtime
import TestSupport
import Testing

/// The real SmolLM2-135M-Instruct GGUF (`tokenizer.ggml.model` gpt2, pre `smollm`, ChatML
/// template in metadata) against transformers' tokenizer for the same file
/// (fixtures/smollm2/encodings.json, chat.json).
@Suite("Tokenizer: SmolLM2 GGUF")
struct TokenizerSmolLM2Tests {
    static func tokenizer() throws -> Tokenizer {
        guard FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF) else {
            throw TokenizerFixtures.Missing(path: Fixtures.smolLM2Missing)
        }
        return try Tokenizer.load(modelPath: Fixtures.smolLM2GGUF)
    }

    @Test("fixture strings encode exactly as transformers, with and without special tokens, and decode back")
    func encodings() throws {
        let tok = try Self.tokenizer()
        #expect(tok.vocabularySize == 49152)
        let entries = try #require(try TokenizerFixtures.json("smollm2/encodings.json").arrayValue)
        #expect(entries.count >= 15)
        for e in entries {
            let text = try #require(e["text"]?.stringValue)
            let ids = try #require(e["ids"]?.arrayValue).compactMap(\.intValue)
            #expect(tok.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
            if let withSpecial = e["ids_with_special"]?.arrayValue?.compactMap(\.intValue) {
                #expect(tok.encode(text, addSpecialTokens: true) == withSpecial, "\(text.debugDescription)")
            }
            #expect(tok.decode(ids) == text, "decode of \(text.debugDescription)")
        }
    }

    @Test("the ChatML template renders and encodes the conversation as transformers' apply_chat_template")
    func chat() throws {
        let tok = try Self.tokenizer()
        let doc = try TokenizerFixtures.json("smollm2/chat.json")
        let messages = try #require(doc["messages"]?.arrayValue).map {
            ChatMessage(role: $0["role"]?.stringValue ?? "", content: $0["content"]?.stringValue ?? "")
        }
        let addPrompt = doc["add_generation_prompt"]?.boolValue ?? true
        let template = try tok.chatTemplate().template
        #expect(template.defaultSystemPrompt == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        #expect(template.render(messages, addGenerationPrompt: addPrompt) == doc["text"]?.stringValue)
        #expect(try tok.encodeChat(messages, addGenerationPrompt: addPrompt)
                == (try #require(doc["ids"]?.arrayValue)).compactMap(\.intValue))
    }

    @Test("EOS is <|im_end|>, BOS is not added, the chat markers are special")
    func specials() throws {
        let tok = try Self.tokenizer()
        #expect(tok.eosTokenID == 2 && tok.bosTokenID == 1 && !tok.addsBOS)
        #expect(tok.specialTokenIDs.isSuperset(of: [0, 1, 2]))
        #expect(tok.decode([1, 4093, 2], skipSpecialTokens: true) == "user")
    }

    @Test("calibration text is cut into plain consecutive windows (no BOS to put first)")
    func calibrationSequences() throws {
        let tok = try Self.tokenizer()
        let text = String(repeating: "def reverse(xs):\n    return xs[::-1]\n", count: 20)
        let sequences = try CalibrationSequences.cut(text, source: "t", tokenizer: tok, sequenceLength: 16)
        let ids = tok.encode(text, addSpecialTokens: false)
        let kept = Array(sequences.joined())
        #expect(kept == Array(ids.prefix(kept.count)) && ids.count - kept.count <= 1, "every token once, in order (a 1-token tail dropped)")
        #expect(sequences.dropLast().allSatisfy { $0.count == 16 })
    }
}
