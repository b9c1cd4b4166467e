import Runtime
import Testing

/// ChatML recognition; the rendering itself is checked against transformers in the SmolLM2 suite.
@Suite("Tokenizer: chat templates")
struct TokenizerChatTemplateTests {
    @Test("non-ChatML templates are rejected with a clear error")
    func rejects() {
        let llama2 = "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"
        #expect(throws: TokenizerError.self) { try ChatTemplate(source: llama2) }
        let tools = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'}}{% endfor %}{% if tools %}{% endif %}"
        #expect(throws: TokenizerError.self) { try ChatTemplate(source: tools) }
    }
}
