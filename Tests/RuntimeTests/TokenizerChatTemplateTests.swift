import Formats
import Runtime
import Testing

/// Template recognition, and rendering against transformers' `apply_chat_template` on real
/// templates (fixtures/tokenizer/chat-templates.json: Qwen2.5-7B-Instruct's and Qwen3-0.6B's, from
/// llama.cpp's models/templates, recorded by fixtures/generate/extra/chat_templates.py; SmolLM2's
/// is checked in its own suite).
@Suite("Tokenizer: chat templates")
struct TokenizerChatTemplateTests {
    static func references() throws -> JSONValue { try TokenizerFixtures.json("tokenizer/chat-templates.json") }

    @Test("non-ChatML templates and unguarded tool use are rejected with a clear error")
    func rejects() throws {
        let llama2 = "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"
        #expect(throws: TokenizerError.self) { try ChatTemplate(source: llama2) }
        let tools = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'}}{% endfor %}{{ tools | tojson }}"
        #expect(throws: TokenizerError.self) { try ChatTemplate(source: tools) }
        let guarded = "{% if tools %}{{ tools | tojson }}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'}}{% endfor %}"
        #expect(try ChatTemplate(source: guarded).style == .chatML)
    }

    @Test("Qwen2.5 and Qwen3 templates render every conversation as transformers does")
    func rendersAsTransformers() throws {
        let doc = try Self.references()
        let sources = try #require(doc["templates"]?.objectValue)
        let cases = try #require(doc["rendered"]?.arrayValue)
        #expect(cases.count >= 70)
        var templates: [String: ChatTemplate] = [:]
        for (name, source) in sources where !(doc["refused"]?.arrayValue ?? []).contains(.string(name)) {
            templates[name] = try ChatTemplate(source: try #require(source.stringValue))
        }
        #expect(templates["qwen2.5"]?.style == .chatML && templates["qwen2.5"]?.toolTurns == true)
        #expect(templates["qwen2.5"]?.defaultSystemPrompt == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        #expect(templates["qwen3"]?.style == .qwen3 && templates["qwen3"]?.defaultSystemPrompt == nil)
        for c in cases {
            let name = try #require(c["template"]?.stringValue)
            let template = try #require(templates[name])
            let messages = try #require(c["messages"]?.arrayValue).map {
                ChatMessage(role: $0["role"]?.stringValue ?? "", content: $0["content"]?.stringValue ?? "")
            }
            guard let addPrompt = c["add_generation_prompt"]?.boolValue else {
                Issue.record("case without add_generation_prompt"); continue
            }
            let thinking = c["enable_thinking"]?.boolValue ?? true
            let text = template.render(messages, addGenerationPrompt: addPrompt, enableThinking: thinking)
            #expect(text == c["text"]?.stringValue, "\(name) \(messages.map(\.role)) prompt \(addPrompt) thinking \(thinking)")
        }
    }

    @Test("thinking templates of other shapes (QwQ, R1 distills, Qwen3.5) and tool-call formats are refused, not rendered wrong")
    func refusesOtherShapes() throws {
        let doc = try Self.references()
        let refused = try #require(doc["refused"]?.arrayValue).compactMap(\.stringValue)
        #expect(refused.count == 4)
        for name in refused {
            let source = try #require(doc["templates"]?[name]?.stringValue)
            #expect(throws: TokenizerError.self, "\(name)") { try ChatTemplate(source: source) }
        }
    }
}
