import Foundation

/// One training sequence: its token ids and which of them are targets of the loss.
public struct TrainingExample: Sendable, Equatable {
    /// Token ids, BOS (or the template's opening) first.
    public var tokens: [Int]
    /// `targets[t]`: token t is predicted (from positions 0..<t) and counts in the loss; always
    /// false at t = 0, same length as `tokens`.
    public var targets: [Bool]
    /// The 1-based line of the data file it came from.
    public var line: Int

    /// An example.
    public init(tokens: [Int], targets: [Bool], line: Int) {
        self.tokens = tokens; self.targets = targets; self.line = line
    }

    /// Positions counted in the loss.
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Tokens before the first target (the prompt; ≥ 1, since target 0 is never set).
    public var promptLength: Int { targets.firstIndex(of: true) ?? tokens.count }

    /// Runs of consecutive targets (1 for one prompt followed by one completion).
    public var targetRuns: Int { zip([false] + targets, targets).reduce(0) { $0 + (!$1.0 && $1.1 ? 1 : 0) } }
}

/// The kinds of training line; a file holds one kind.
public enum TrainingLineKind: String, Sendable, Equatable {
    /// `{"prompt", "completion"}`: loss on the completion's tokens (and the EOS or end-of-turn
    /// marker after it).
    case promptCompletion = "{\"prompt\", \"completion\"}"
    /// `{"text"}`: loss on every token after the first.
    case text = "{\"text\"}"
    /// `{"messages": [{"role", "content"}, …]}`: the chat template applied, loss on the
    /// assistant replies (`ChatTemplate.segments`).
    case messages = "{\"messages\"}"
}

/// How training lines become token sequences.
public struct TrainingDataOptions: Sendable {
    /// The model's chat template: `messages` lines need it; with `chatPrompts` a
    /// `prompt`/`completion` line is rendered as a user turn and an assistant reply.
    public var template: ChatTemplate?
    /// Render `prompt`/`completion` lines through `template`.
    public var chatPrompts: Bool
    /// Longest sequence accepted (the model's context, or a smaller `--max-length`); a longer one
    /// is an error naming its line, never cut.
    public var maxLength: Int
    /// The model's vocabulary size: every id must be below it.
    public var vocabularySize: Int
    /// The id that ends a non-chat sequence (the model config's first EOS; nil: the tokenizer's).
    public var endOfSequence: Int?
    /// Why `template` is nil (the model has none, or one steertool does not render), for the
    /// error of a chat line.
    public var templateUnavailable: String = "the model has no chat template"

    /// Options.
    public init(template: ChatTemplate? = nil, chatPrompts: Bool = false, maxLength: Int, vocabularySize: Int, endOfSequence: Int? = nil) {
        self.template = template; self.chatPrompts = chatPrompts; self.maxLength = maxLength; self.vocabularySize = vocabularySize
        self.endOfSequence = endOfSequence
    }
}

/// A JSONL training file read into sequences with loss targets.
///
/// Without a chat template: `prompt`/`completion` is BOS (the tokenizer's prefix ids) + prompt +
/// completion + EOS, prompt and completion tokenized separately so the boundary is exact, the
/// loss on the completion and EOS; `text` is BOS + text + EOS, the loss on everything after BOS.
/// With one (`messages`, or `chatPrompts`): the rendered conversation (Gemma's BOS first), each
/// segment tokenized on its own, the loss on the assistant replies and their end-of-turn markers.
/// Blank lines are skipped; keys other than the kind's are ignored.
public struct TrainingData: Sendable {
    /// The file read.
    public let path: String
    /// Its kind.
    public let kind: TrainingLineKind
    /// One example per non-blank line, in file order.
    public let examples: [TrainingExample]

    /// Data made in code (`load` reads a file).
    public init(path: String, kind: TrainingLineKind, examples: [TrainingExample]) {
        self.path = path; self.kind = kind; self.examples = examples
    }

    /// Reads `path`.
    /// - Throws: `RuntimeError.invalidData` naming the file and line for invalid JSON, a line of
    ///   no known kind or of another kind than the first, a missing or empty completion or text,
    ///   a malformed or reply-less `messages`, chat lines without a template, a sequence longer
    ///   than `options.maxLength` or without a target, an id outside the model's vocabulary;
    ///   `.invalidArgument` for an unreadable, non-UTF-8 or empty file.
    public static func load(path: String, tokenizer: Tokenizer, options: TrainingDataOptions) throws -> TrainingData {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the training data")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError.invalidArgument("\(path): not UTF-8 text")
        }
        return try parse(text, source: path, tokenizer: tokenizer, options: options)
    }

    /// Parses JSONL `text`; `source` names it in errors (see `load`).
    public static func parse(_ text: String, source: String, tokenizer: Tokenizer, options: TrainingDataOptions) throws -> TrainingData {
        var examples: [TrainingExample] = []
        var first: (kind: TrainingLineKind, line: Int)?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            func fail(_ reason: String) -> RuntimeError { .invalidData(file: source, line: line, reason: reason) }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw fail("invalid JSON (a JSON object per line)")
            }
            let kind: TrainingLineKind
            if object["messages"] != nil { kind = .messages }
            else if object["prompt"] != nil || object["completion"] != nil { kind = .promptCompletion }
            else if object["text"] != nil { kind = .text }
            else {
                throw fail("no training keys: expected {\"prompt\", \"completion\"}, {\"text\"} or {\"messages\": [...]}")
            }
            if let first, first.kind != kind {
                throw fail("a \(kind.rawValue) line, but line \(first.line) is \(first.kind.rawValue): a training file holds one kind")
            }
            if first == nil { first = (kind, line) }
            let pieces = try segments(of: object, kind: kind, options: options, fail: fail)
            var tokens: [Int] = [], targets: [Bool] = []
            let chat = kind == .messages || (kind == .promptCompletion && options.chatPrompts)
            if chat {
                if options.template?.beginsWithBOS == true, let bos = tokenizer.bosTokenID { tokens.append(bos); targets.append(false) }
            } else {
                tokens += tokenizer.prefixTokenIDs; targets += tokenizer.prefixTokenIDs.map { _ in false }
            }
            for piece in pieces {
                let ids = tokenizer.encode(piece.text, addSpecialTokens: false)
                tokens += ids; targets += ids.map { _ in piece.isAssistantReply }
            }
            if !chat {
                guard let eos = options.endOfSequence ?? tokenizer.eosTokenID else {
                    throw fail("neither the model nor its tokenizer names an EOS token to end the sequence with")
                }
                tokens.append(eos); targets.append(true)
            }
            if !targets.isEmpty { targets[0] = false }
            guard tokens.count <= options.maxLength else {
                throw fail("\(tokens.count) tokens, longer than the limit of \(options.maxLength) (the model's context or --max-length)")
            }
            guard targets.contains(true) else { throw fail("no token to learn: the sequence has no target after its first token") }
            if let bad = tokens.firstIndex(where: { $0 < 0 || $0 >= options.vocabularySize }) {
                throw fail("token id \(tokens[bad]) (\(tokenizer.token(for: tokens[bad])?.debugDescription ?? "?")) at position \(bad) is outside the model's vocabulary of \(options.vocabularySize)")
            }
            examples.append(TrainingExample(tokens: tokens, targets: targets, line: line))
        }
        guard let first else { throw RuntimeError.invalidArgument("\(source): no training lines") }
        return TrainingData(path: source, kind: first.kind, examples: examples)
    }

    /// Checks that each example is one prompt followed by one completion (its targets one run),
    /// as training an adapter of the last prompt token needs (`SteeringPositions.last`: the
    /// prompt's last token is the one steered).
    /// - Throws: `RuntimeError.invalidData` naming the file and line of a `text` line (no prompt)
    ///   or of a conversation with several assistant replies.
    public func requireOneCompletionEach() throws {
        for e in examples {
            if kind == .text {
                throw RuntimeError.invalidData(file: path, line: e.line, reason: "a {\"text\"} line has no prompt, and positions last steers the prompt's last token: give {\"prompt\", \"completion\"} or {\"messages\"} lines")
            }
            guard e.targetRuns == 1 else {
                throw RuntimeError.invalidData(file: path, line: e.line, reason: "\(e.targetRuns) assistant replies; positions last steers the last token before the reply, so each line holds one (split the conversation into one line per reply)")
            }
        }
    }

    /// The line's text cut into pieces marked by whether they are learnt.
    private static func segments(of object: [String: Any], kind: TrainingLineKind, options: TrainingDataOptions,
                                 fail: (String) -> RuntimeError) throws -> [ChatSegment] {
        func string(_ key: String, allowEmpty: Bool) throws -> String {
            guard let value = object[key] else { throw fail("missing \"\(key)\"") }
            guard let s = value as? String else { throw fail("\"\(key)\" is not a string") }
            guard allowEmpty || !s.isEmpty else { throw fail("empty \"\(key)\"") }
            return s
        }
        func template() throws -> ChatTemplate {
            guard let t = options.template else { throw fail("chat lines need the model's chat template: \(options.templateUnavailable)") }
            return t
        }
        switch kind {
        case .text:
            return [ChatSegment(text: try string("text", allowEmpty: false), isAssistantReply: true)]
        case .promptCompletion:
            let prompt = try string("prompt", allowEmpty: true), completion = try string("completion", allowEmpty: false)
            guard options.chatPrompts else {
                return [ChatSegment(text: prompt, isAssistantReply: false), ChatSegment(text: completion, isAssistantReply: true)]
            }
            return try template().segments([ChatMessage(role: "user", content: prompt), ChatMessage(role: "assistant", content: completion)],
                                           addGenerationPrompt: false)
        case .messages:
            let template = try template()
            guard let list = object["messages"] as? [Any], !list.isEmpty else { throw fail("\"messages\" is not a non-empty list") }
            var messages: [ChatMessage] = []
            for (i, item) in list.enumerated() {
                guard let m = item as? [String: Any], let role = m["role"] as? String, let content = m["content"] as? String else {
                    throw fail("messages[\(i)] is not {\"role\": string, \"content\": string}")
                }
                guard ["system", "user", "assistant"].contains(role) else {
                    throw fail("messages[\(i)] has role \"\(role)\"; training lines use system, user and assistant")
                }
                messages.append(ChatMessage(role: role, content: content))
            }
            guard messages.contains(where: { $0.role == "assistant" && !$0.content.isEmpty }) else {
                throw fail("no assistant reply to learn in \"messages\"")
            }
            return template.segments(messages, addGenerationPrompt: false)
        }
    }
}
