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

/// A piece of a rendered conversation (`ChatTemplate.segments`).
public struct ChatSegment: Sendable, Equatable {
    /// The text.
    public var text: String
    /// Whether it is an assistant reply (content and closing marker), what training learns.
    public var isAssistantReply: Bool

    /// A piece.
    public init(text: String, isAssistantReply: Bool) {
        self.text = text; self.isAssistantReply = isAssistantReply
    }
}

/// A chat template, recognised from its Jinja source (there is no Jinja engine) or known for an
/// architecture whose files ship none. Three families, each rendered as transformers'
/// `apply_chat_template` renders the real templates (checked on Qwen2.5's and Qwen3's):
/// - ChatML: every message renders as `<|im_start|>{role}\n{content}<|im_end|>\n`, a generation
///   prompt is `<|im_start|>assistant\n`; templates like SmolLM2's and Qwen2.5's insert a default
///   system turn when the conversation does not start with one. Qwen's templates (`toolTurns`)
///   render `tool` messages as `<tool_response>` blocks inside one user turn per run of them, and
///   leave out roles other than system, user, assistant and tool.
/// - Qwen3: ChatML with reasoning. An assistant turn's `<think>…</think>` is cut off unless the
///   turn comes after the last user query; there it is kept (empty for the final turn when it has
///   none) as `<think>\n{reasoning}\n</think>\n\n{answer}`. `enable_thinking=False` opens the
///   reply with an empty think block.
/// - Gemma: BOS, then `<start_of_turn>{role}\n{content}<end_of_turn>\n` per message with the
///   assistant's role written `model`, content trimmed, a system message folded into the first user
///   turn as its first paragraph, and `<start_of_turn>model\n` as the generation prompt (the
///   template of Gemma-3's tokenizer_config.json).
/// Templates that use tools only under `{% if tools %}` are accepted: steertool passes no tools
/// and its messages carry no tool calls, so those branches never render. Any other template, or
/// a thinking template of another shape (QwQ, DeepSeek-R1 distills, Qwen3.5), is rejected.
public struct ChatTemplate: Sendable, Equatable {
    /// The template families steertool renders.
    public enum Style: String, Sendable, Equatable {
        case chatML = "ChatML", qwen3 = "Qwen3", gemma = "Gemma"
    }

    /// The family.
    public let style: Style
    /// The system message inserted when the first message is not a system one (nil: none).
    public let defaultSystemPrompt: String?
    /// Whether `tool` messages render as Qwen's `<tool_response>` blocks in a user turn (and roles
    /// other than system, user, assistant and tool are left out, as Qwen's templates do).
    public let toolTurns: Bool

    /// The template of `style` with no default system turn and no tool turns.
    public init(style: Style) {
        self.style = style; self.defaultSystemPrompt = nil; self.toolTurns = false
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

    /// The pieces of Qwen3's template that define its rendering (whitespace removed); a thinking
    /// template without every one of them renders differently and is rejected.
    private static let qwen3Markers = [
        "ns.last_query_index",
        "message.content.split('</think>')[-1].lstrip('\\n')",
        "'\\n<think>\\n'+reasoning_content.strip('\\n')+'\\n</think>\\n\\n'+content.lstrip('\\n')",
        "enable_thinkingisdefinedandenable_thinkingisfalse",
        "'<think>\\n\\n</think>\\n\\n'",
    ]

    /// Recognises `source`; throws `unsupportedChatTemplate` for anything outside the three families.
    public init(source: String) throws {
        let compact = source.filter { !$0.isWhitespace }
        /// Refuses the template when it uses any of `words`.
        func refuse(_ words: [String]) throws {
            for word in words where compact.contains(word) {
                throw TokenizerError.unsupportedChatTemplate(reason: "uses '\(word)', which steertool does not render")
            }
        }
        if compact.contains("<start_of_turn>"), compact.contains("<end_of_turn>") {
            try refuse(["tools", "tool_calls", "raise_exception", "image", "audio"])
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
        let thinks = ["<think>", "</think>", "enable_thinking", "reasoning_content"].contains(where: compact.contains)
        if thinks {
            for marker in Self.qwen3Markers where !compact.contains(marker) {
                throw TokenizerError.unsupportedChatTemplate(
                    reason: "a reasoning template that is not Qwen3's (no \(marker.debugDescription)); steertool renders Qwen3's only")
            }
        }
        let toolsGuarded = compact.range(of: #"\{%-?iftools-?%\}"#, options: .regularExpression) != nil
        var unsupported = ["documents", "raise_exception", "image", "video"]
        if !toolsGuarded { unsupported += ["tools", "tool_calls"] }
        if !thinks { unsupported.append("namespace(") }
        try refuse(unsupported)
        style = thinks ? .qwen3 : .chatML
        toolTurns = compact.contains("<tool_response>")
        if toolTurns, !compact.contains("{{-'<|im_start|>user'}}") {
            throw TokenizerError.unsupportedChatTemplate(reason: "tool responses outside a user turn, which steertool does not render")
        }
        defaultSystemPrompt = try Self.defaultSystem(in: source)
        if style == .qwen3, defaultSystemPrompt != nil {
            throw TokenizerError.unsupportedChatTemplate(reason: "a Qwen3 template with a default system turn")
        }
    }

    /// The literal system turn of a template that writes one when the conversation has none:
    /// SmolLM2's `{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n…<|im_end|>\n' }}`
    /// or Qwen2.5's `{%- else %}{{- '<|im_start|>system\nYou are Qwen…<|im_end|>\n' }}` after
    /// `{%- if messages[0]['role'] == 'system' %}`: the first `<|im_start|>system` followed by
    /// literal text (no quote, so not `+ messages[0]['content']`) up to `<|im_end|>`.
    private static func defaultSystem(in source: String) throws -> String? {
        var searchFrom = source.startIndex
        while let start = source.range(of: "<|im_start|>system", range: searchFrom..<source.endIndex) {
            searchFrom = start.upperBound
            guard let end = source.range(of: "<|im_end|>", range: start.upperBound..<source.endIndex) else { return nil }
            let literal = source[start.upperBound..<end.lowerBound]
            if literal.contains("'") || literal.contains("\"") || literal.contains("{") { continue }
            let text = literal.replacingOccurrences(of: "\\n", with: "\n")
            guard text.hasPrefix("\n") else {
                throw TokenizerError.unsupportedChatTemplate(reason: "default system turn without a newline after the role")
            }
            return String(text.dropFirst())
        }
        return nil
    }

    /// Whether the rendered prompt starts with the BOS token (written by the template itself:
    /// Gemma's `{{ bos_token }}`), which `Tokenizer.encodeChat` puts in as an id.
    public var beginsWithBOS: Bool { style == .gemma }

    /// Whether the template has Qwen3's `enable_thinking` switch.
    public var hasThinkingSwitch: Bool { style == .qwen3 }

    /// The marker that closes a turn; generation of a reply stops at it.
    public var endOfTurn: String {
        switch style {
        case .chatML, .qwen3: "<|im_end|>"
        case .gemma: "<end_of_turn>"
        }
    }

    /// The prompt text of `messages` (without Gemma's leading BOS, see `beginsWithBOS`); with
    /// `addGenerationPrompt` it ends with the assistant's opening. `enableThinking` false is
    /// Qwen3's `enable_thinking=False` (the reply opens with an empty think block); other
    /// families have no such switch and ignore it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool = true) -> String {
        segments(messages, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking).map(\.text).joined()
    }

    /// `render`'s text cut into consecutive pieces, each marked whether it is an assistant reply:
    /// the content of an assistant turn as the template writes it (Qwen3's think block included)
    /// and the end-of-turn marker that closes it (`<|im_end|>`, `<end_of_turn>`), which is what
    /// a model trained on the conversation learns to produce; everything else (roles, openings,
    /// the newline after a turn, other turns) is not. Joined, the pieces are `render`'s text.
    public func segments(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool = true) -> [ChatSegment] {
        var out = SegmentWriter()
        switch style {
        case .chatML, .qwen3:
            if let system = defaultSystemPrompt, messages.first?.role != "system" {
                out.context("<|im_start|>system\n\(system)<|im_end|>\n")
            }
            let lastQuery = messages.lastIndex { $0.role == "user" && !($0.content.hasPrefix("<tool_response>") && $0.content.hasSuffix("</tool_response>")) }
                ?? messages.count - 1
            for (i, m) in messages.enumerated() {
                switch m.role {
                case "tool" where toolTurns:
                    if i == 0 || messages[i - 1].role != "tool" { out.context("<|im_start|>user") }
                    out.context("\n<tool_response>\n\(m.content)\n</tool_response>")
                    if i == messages.count - 1 || messages[i + 1].role != "tool" { out.context("<|im_end|>\n") }
                case "assistant":
                    out.context("<|im_start|>assistant\n")
                    out.reply((style == .qwen3 ? Self.qwen3Assistant(m.content, keepsReasoning: i > lastQuery, isLast: i == messages.count - 1)
                                              : m.content) + "<|im_end|>")
                    out.context("\n")
                case "system", "user":
                    out.context("<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n")
                default:
                    if !toolTurns && style == .chatML { out.context("<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n") }
                }
            }
            if addGenerationPrompt {
                out.context("<|im_start|>assistant\n")
                if style == .qwen3, !enableThinking { out.context("<think>\n\n</think>\n\n") }
            }
        case .gemma:
            var turns = messages[...]
            var prefix = ""
            if let first = turns.first, first.role == "system" {
                prefix = first.content.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n"
                turns = turns.dropFirst()
            }
            for (i, m) in turns.enumerated() {
                let body = (i == 0 ? prefix : "") + m.content.trimmingCharacters(in: .whitespacesAndNewlines)
                if m.role == "assistant" {
                    out.context("<start_of_turn>model\n")
                    out.reply(body + "<end_of_turn>")
                    out.context("\n")
                } else {
                    out.context("<start_of_turn>\(m.role)\n" + body + "<end_of_turn>\n")
                }
            }
            if addGenerationPrompt { out.context("<start_of_turn>model\n") }
        }
        return out.pieces
    }

    /// Collects segments, merging neighbours of the same kind.
    private struct SegmentWriter {
        var pieces: [ChatSegment] = []
        mutating func context(_ text: String) { append(text, reply: false) }
        mutating func reply(_ text: String) { append(text, reply: true) }
        private mutating func append(_ text: String, reply: Bool) {
            guard !text.isEmpty else { return }
            if let last = pieces.last, last.isAssistantReply == reply { pieces[pieces.count - 1].text += text }
            else { pieces.append(ChatSegment(text: text, isAssistantReply: reply)) }
        }
    }

    /// A Qwen3 assistant turn's text after `<|im_start|>assistant\n`: the answer after the last
    /// `</think>` (leading newlines dropped) and the reasoning between the last `<think>` before
    /// the first `</think>` and it; the reasoning block is written when the turn follows the last
    /// user query and is the final turn or has reasoning.
    private static func qwen3Assistant(_ content: String, keepsReasoning: Bool, isLast: Bool) -> String {
        var answer = content
        var reasoning = ""
        if content.contains("</think>") {
            let parts = content.components(separatedBy: "</think>")
            answer = String(parts[parts.count - 1].drop { $0 == "\n" })
            let before = String(parts[0].reversed().drop { $0 == "\n" }.reversed())
            reasoning = String((before.components(separatedBy: "<think>").last ?? before).drop { $0 == "\n" })
        }
        guard keepsReasoning, isLast || !reasoning.isEmpty else { return answer }
        let trimmed = String(reasoning.drop { $0 == "\n" }.reversed().drop { $0 == "\n" }.reversed())
        return "<think>\n\(trimmed)\n</think>\n\n" + answer.drop { $0 == "\n" }
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
    /// `enableThinking` as in `ChatTemplate.render`.
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, template: ChatTemplate,
                           enableThinking: Bool = true) -> [Int] {
        let text = template.render(messages, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking)
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
