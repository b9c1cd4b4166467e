import Foundation
import Formats
import Runtime
import Testing
import TestSupport

/// Training JSONL → token sequences with loss targets (the tiny model's byte-level tokenizer;
/// Qwen2.5's real ChatML template from fixtures/tokenizer/chat-templates.json for chat lines).
@Suite("Training data")
struct TrainingDataTests {
    static func tokenizer() throws -> Tokenizer { try Tokenizer.load(modelPath: Fixtures.path("tiny/base")) }
    static func qwenTemplate() throws -> ChatTemplate {
        let doc = try TokenizerFixtures.json("tokenizer/chat-templates.json")
        return try ChatTemplate(source: try #require(doc["templates"]?["qwen2.5"]?.stringValue))
    }
    /// tiny/base/config.json's eos_token_id.
    static let eos = 0
    static func options(template: ChatTemplate? = nil, chat: Bool = false, maxLength: Int = 256, vocab: Int = 1024) -> TrainingDataOptions {
        TrainingDataOptions(template: template, chatPrompts: chat, maxLength: maxLength, vocabularySize: vocab, endOfSequence: eos)
    }
    /// The decoded target tokens of an example, runs of consecutive targets joined by "|".
    static func targetText(_ e: TrainingExample, _ tok: Tokenizer) -> String {
        var runs: [[Int]] = []
        for (i, t) in e.targets.enumerated() where t {
            if i > 0, e.targets[i - 1], !runs.isEmpty { runs[runs.count - 1].append(e.tokens[i]) } else { runs.append([e.tokens[i]]) }
        }
        return runs.map { tok.decode($0) }.joined(separator: "|")
    }

    @Test func promptCompletionAndText() throws {
        let tok = try Self.tokenizer()
        let eos = Self.eos
        let jsonl = """
        {"prompt": "The capital of France is", "completion": " Paris.", "id": 7}

        {"prompt": "", "completion": "Hello"}
        """
        let data = try TrainingData.parse(jsonl, source: "d.jsonl", tokenizer: tok, options: Self.options())
        #expect(data.kind == .promptCompletion && data.examples.map(\.line) == [1, 3])
        let e = data.examples[0]
        let prompt = tok.prefixTokenIDs + tok.encode("The capital of France is", addSpecialTokens: false)
        let completion = tok.encode(" Paris.", addSpecialTokens: false)
        #expect(e.tokens == prompt + completion + [eos])
        #expect(e.targets == prompt.map { _ in false } + completion.map { _ in true } + [true])
        #expect(e.targetCount == completion.count + 1)
        let text = try TrainingData.parse(#"{"text": "one two three"}"#, source: "t.jsonl", tokenizer: tok, options: Self.options())
        let t = text.examples[0]
        #expect(text.kind == .text && t.tokens == tok.prefixTokenIDs + tok.encode("one two three", addSpecialTokens: false) + [eos])
        #expect(t.targets == [false] + Array(repeating: true, count: t.tokens.count - 1) || tok.prefixTokenIDs.isEmpty)
        #expect(!t.targets[0] && t.targets.dropFirst().allSatisfy { $0 })
    }

    /// Messages through Qwen2.5's template: the tokens are the rendered text (default system
    /// turn included), the targets exactly the assistant replies with their `<|im_end|>`.
    @Test func messagesLearnAssistantReplies() throws {
        let tok = try Self.tokenizer(), template = try Self.qwenTemplate()
        let line = #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "See you."}]}"#
        let data = try TrainingData.parse(line, source: "m.jsonl", tokenizer: tok, options: Self.options(template: template))
        let e = try #require(data.examples.first)
        let messages = [ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello!"),
                        ChatMessage(role: "user", content: "Bye"), ChatMessage(role: "assistant", content: "See you.")]
        #expect(tok.decode(e.tokens) == template.render(messages, addGenerationPrompt: false))
        #expect(Self.targetText(e, tok) == "Hello!<|im_end|>|See you.<|im_end|>")
        // A prompt/completion line with --chat is the same conversation of one turn each.
        let chat = try TrainingData.parse(#"{"prompt": "Hi", "completion": "Hello!"}"#, source: "c.jsonl", tokenizer: tok,
                                          options: Self.options(template: template, chat: true))
        #expect(Self.targetText(chat.examples[0], tok) == "Hello!<|im_end|>")
        #expect(tok.decode(chat.examples[0].tokens).hasPrefix("<|im_start|>system\nYou are Qwen"))
    }

    /// Every bad line is one error naming the file and line.
    @Test(arguments: [
        ("{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": ", "bad.jsonl:2: invalid JSON"),
        ("{\"prompt\": \"a\"}", "bad.jsonl:1: missing \"completion\""),
        ("{\"prompt\": \"a\", \"completion\": \"\"}", "bad.jsonl:1: empty \"completion\""),
        ("{\"prompt\": \"a\", \"completion\": 3}", "bad.jsonl:1: \"completion\" is not a string"),
        ("{\"text\": \"a\"}\n\n{\"prompt\": \"a\", \"completion\": \"b\"}", "bad.jsonl:3: a {\"prompt\", \"completion\"} line, but line 1 is {\"text\"}"),
        ("{\"prompt\": \"a\", \"completion\": \"\(String(repeating: "word ", count: 40))\"}", "bad.jsonl:1: "),
        ("{\"answer\": \"a\"}", "bad.jsonl:1: no training keys"),
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}", "bad.jsonl:1: chat lines need the model's chat template"),
        ("", "bad.jsonl: no training lines"),
    ]) func badLinesAreNamed(text: String, message: String) throws {
        let tok = try Self.tokenizer()
        #expect {
            try TrainingData.parse(text, source: "bad.jsonl", tokenizer: tok, options: Self.options(maxLength: 32))
        } throws: { "\($0)".hasPrefix(message) }
    }

    @Test func longLinesVocabularyAndMessagesAreChecked() throws {
        let tok = try Self.tokenizer(), template = try Self.qwenTemplate()
        let long = "{\"text\": \"\(String(repeating: "word ", count: 40))\"}"
        #expect { try TrainingData.parse(long, source: "l.jsonl", tokenizer: tok, options: Self.options(maxLength: 16)) } throws: {
            "\($0)".contains("l.jsonl:1: ") && "\($0)".contains("longer than the limit of 16")
        }
        // A tokenizer larger than the model's vocabulary: ids past it are refused by line.
        #expect { try TrainingData.parse(#"{"text": "zebra quartz"}"#, source: "v.jsonl", tokenizer: tok, options: Self.options(vocab: 40)) } throws: {
            "\($0)".contains("v.jsonl:1: token id") && "\($0)".contains("outside the model's vocabulary of 40")
        }
        for (line, reason) in [
            (#"{"messages": [{"role": "user", "content": "a"}]}"#, "no assistant reply to learn"),
            (#"{"messages": [{"role": "tool", "content": "a"}, {"role": "assistant", "content": "b"}]}"#, "role \"tool\""),
            (#"{"messages": [{"role": "user"}]}"#, "messages[0] is not"),
            (#"{"messages": []}"#, "not a non-empty list"),
        ] {
            #expect { try TrainingData.parse(line, source: "m.jsonl", tokenizer: tok, options: Self.options(template: template)) } throws: {
                "\($0)".hasPrefix("m.jsonl:1: ") && "\($0)".contains(reason)
            }
        }
    }
}
