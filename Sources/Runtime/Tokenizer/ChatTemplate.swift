/// One chat turn.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user" or "assistant".
    public var role: String
    /// The text of the turn.
    public var content: String

    /// A turn.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A chat template of the ChatML family, recognised from its Jinja source (there is no Jinja
/// engine): every message renders as `<|im_start|>{role}\n{content}<|im_end|>\n`, a generation
/// prompt is `<|im_start|>assistant\n`, and templates like SmolLM2's insert a default system turn
/// when the conversation does not start with one. Any other template is rejected.
public struct ChatTemplate: Sendable, Equatable {
    /// The system message inserted when the first message is not a system one (nil: none).
    public let defaultSystemPrompt: String?

    /// Recognises `source`; throws `unsupportedChatTemplate` for anything outside ChatML.
    public init(source: String) throws {
        let compact = source.filter { !$0.isWhitespace }
        let markers = ["<|im_start|>", "<|im_end|>", "formessageinmessages"]
        for m in markers where !compact.contains(m) {
            throw TokenizerError.unsupportedChatTemplate(reason: "not ChatML (no \(m.debugDescription))")
        }
        let roleForms = ["message['role']", "message[\"role\"]", "message.role"]
        let contentForms = ["message['content']", "message[\"content\"]", "message.content"]
        guard roleForms.contains(where: compact.contains), contentForms.contains(where: compact.contains) else {
            throw TokenizerError.unsupportedChatTemplate(reason: "not ChatML (message role/content not rendered)")
        }
        for unsupported in ["tools", "tool_calls", "documents", "raise_exception", "namespace("] where compact.contains(unsupported) {
            throw TokenizerError.unsupportedChatTemplate(reason: "uses '\(unsupported)', which steertool does not render")
        }
        // SmolLM2 / Qwen style: {% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n…<|im_end|>\n' }}{% endif %}
        if let cond = source.range(of: "!= 'system'") ?? source.range(of: "!= \"system\""),
           let start = source.range(of: "<|im_start|>system", range: cond.upperBound..<source.endIndex),
           let end = source.range(of: "<|im_end|>", range: start.upperBound..<source.endIndex) {
            var text = String(source[start.upperBound..<end.lowerBound])
            text = text.replacingOccurrences(of: "\\n", with: "\n")
            guard text.hasPrefix("\n") else {
                throw TokenizerError.unsupportedChatTemplate(reason: "default system turn without a newline after the role")
            }
            self.defaultSystemPrompt = String(text.dropFirst())
        } else {
            self.defaultSystemPrompt = nil
        }
    }

    /// The prompt text of `messages`; with `addGenerationPrompt` it ends with the assistant's
    /// opening `<|im_start|>assistant\n`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        if let system = defaultSystemPrompt, messages.first?.role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }
}

extension Tokenizer {
    /// The model's chat template, recognised (throws when there is none or it is not ChatML).
    public func chatTemplate() throws -> ChatTemplate {
        guard let source = chatTemplateSource else {
            throw TokenizerError.unsupportedChatTemplate(reason: "the model has no chat template")
        }
        return try ChatTemplate(source: source)
    }

    /// Renders `messages` with the model's chat template and encodes the prompt (no BOS/EOS added
    /// beyond what the template writes: `addSpecialTokens: false`, as transformers'
    /// `apply_chat_template(tokenize=True)` does for templates that write their own markers).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [Int] {
        let text = try chatTemplate().render(messages, addGenerationPrompt: addGenerationPrompt)
        return encode(text, addSpecialTokens: false)
    }
}
