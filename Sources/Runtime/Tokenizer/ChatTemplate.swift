import Foundation

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

/// A chat template, recognised from its Jinja source (there is no Jinja engine) or known for an
/// architecture whose files ship none. Two families:
/// - ChatML: every message renders as `<|im_start|>{role}\n{content}<|im_end|>\n`, a generation
///   prompt is `<|im_start|>assistant\n`, and templates like SmolLM2's insert a default system turn
///   when the conversation does not start with one.
/// - Gemma: BOS, then `<start_of_turn>{role}\n{content}<end_of_turn>\n` per message with the
///   assistant's role written `model`, content trimmed, a system message folded into the first user
///   turn as its first paragraph, and `<start_of_turn>model\n` as the generation prompt (the
///   template of Gemma-3's tokenizer_config.json).
/// Any other template is rejected.
public struct ChatTemplate: Sendable, Equatable {
    /// The template families steertool renders.
    public enum Style: String, Sendable, Equatable {
        case chatML = "ChatML", gemma = "Gemma"
    }

    /// The family.
    public let style: Style
    /// The system message inserted when the first message is not a system one (nil: none).
    public let defaultSystemPrompt: String?

    /// The template of `style` with no default system turn.
    public init(style: Style) {
        self.style = style; self.defaultSystemPrompt = nil
    }

    /// The template an architecture's models use when their files carry none (Gemma-3's GGUFs
    /// have no `tokenizer.chat_template`); nil when steertool knows none. `architecture` is a
    /// Hugging Face class name or a GGUF `general.architecture`.
    public static func known(architecture: String) -> ChatTemplate? {
        switch architecture {
        case "Gemma3ForCausalLM", "gemma3", "gemma3_text": ChatTemplate(style: .gemma)
        default: nil
        }
    }

    /// Recognises `source`; throws `unsupportedChatTemplate` for anything outside the two families.
    public init(source: String) throws {
        let compact = source.filter { !$0.isWhitespace }
        if compact.contains("<start_of_turn>"), compact.contains("<end_of_turn>") {
            for unsupported in ["tools", "tool_calls", "raise_exception", "image", "audio"] where compact.contains(unsupported) {
                throw TokenizerError.unsupportedChatTemplate(reason: "uses '\(unsupported)', which steertool does not render")
            }
            self = ChatTemplate(style: .gemma)
            return
        }
        let markers = ["<|im_start|>", "<|im_end|>", "formessageinmessages"]
        for m in markers where !compact.contains(m) {
            throw TokenizerError.unsupportedChatTemplate(reason: "neither ChatML nor Gemma (no \(m.debugDescription))")
        }
        let roleForms = ["message['role']", "message[\"role\"]", "message.role"]
        let contentForms = ["message['content']", "message[\"content\"]", "message.content"]
        guard roleForms.contains(where: compact.contains), contentForms.contains(where: compact.contains) else {
            throw TokenizerError.unsupportedChatTemplate(reason: "not ChatML (message role/content not rendered)")
        }
        for unsupported in ["tools", "tool_calls", "documents", "raise_exception", "namespace("] where compact.contains(unsupported) {
            throw TokenizerError.unsupportedChatTemplate(reason: "uses '\(unsupported)', which steertool does not render")
        }
        style = .chatML
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

    /// Whether the rendered prompt starts with the BOS token (written by the template itself:
    /// Gemma's `{{ bos_token }}`), which `Tokenizer.encodeChat` puts in as an id.
    public var beginsWithBOS: Bool { style == .gemma }

    /// The marker that closes a turn; generation of a reply stops at it.
    public var endOfTurn: String {
        switch style {
        case .chatML: "<|im_end|>"
        case .gemma: "<end_of_turn>"
        }
    }

    /// The prompt text of `messages` (without Gemma's leading BOS, see `beginsWithBOS`); with
    /// `addGenerationPrompt` it ends with the assistant's opening.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch style {
        case .chatML:
            if let system = defaultSystemPrompt, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(system)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .gemma:
            var turns = messages[...]
            var prefix = ""
            if let first = turns.first, first.role == "system" {
                prefix = first.content.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n"
                turns = turns.dropFirst()
            }
            for (i, m) in turns.enumerated() {
                let role = m.role == "assistant" ? "model" : m.role
                out += "<start_of_turn>\(role)\n" + (i == 0 ? prefix : "")
                    + m.content.trimmingCharacters(in: .whitespacesAndNewlines) + "<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }
        }
        return out
    }
}

extension Tokenizer {
    /// The model's chat template, recognised; when the model ships none, the template steertool
    /// knows for `architecture` (`ChatTemplate.known`), with `fallback` true so a caller can say so.
    /// - Throws: `TokenizerError.unsupportedChatTemplate` when there is none or it is not one of
    ///   the families steertool renders.
    public func chatTemplate(architecture: String? = nil) throws -> (template: ChatTemplate, fallback: Bool) {
        guard let source = chatTemplateSource else {
            if let architecture, let known = ChatTemplate.known(architecture: architecture) { return (known, true) }
            throw TokenizerError.unsupportedChatTemplate(reason: "the model has no chat template")
        }
        return (try ChatTemplate(source: source), false)
    }

    /// Renders `messages` with `template` and encodes the prompt (no BOS/EOS added beyond what the
    /// template writes: `addSpecialTokens: false`, as transformers' `apply_chat_template(tokenize=True)`
    /// does for templates that write their own markers; a template that begins with BOS gets the id).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, template: ChatTemplate) -> [Int] {
        let text = template.render(messages, addGenerationPrompt: addGenerationPrompt)
        let bos = template.beginsWithBOS ? bosTokenID.map { [$0] } ?? [] : []
        return bos + encode(text, addSpecialTokens: false)
    }

    /// `encodeChat` with the model's own template (`chatTemplate(architecture:)`).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, architecture: String? = nil) throws -> [Int] {
        encodeChat(messages, addGenerationPrompt: addGenerationPrompt, template: try chatTemplate(architecture: architecture).template)
    }

    /// The id of `template`'s end-of-turn marker when it is one token of this vocabulary (a reply
    /// stops there), else nil.
    public func endOfTurnID(_ template: ChatTemplate) -> Int? {
        let ids = encode(template.endOfTurn, addSpecialTokens: false)
        return ids.count == 1 ? ids[0] : nil
    }
}
