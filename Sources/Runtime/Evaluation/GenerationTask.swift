/// One generation-scored task item (a JSONL line): `{"prompt": "...", "answer": "..."}` with an
/// optional `"max_tokens"` (most new tokens for this item; otherwise the evaluator's default).
/// The continuation of `prompt` is decoded greedily and compared with `answer` by
/// `AnswerNormalization`.
public struct GenerationItem: Sendable, Equatable, Codable {
    /// Text the model continues (wrapped in the chat template when the evaluation asks for it).
    public var prompt: String
    /// The expected answer, compared after normalisation.
    public var answer: String
    /// Most new tokens for this item (1…`GenerationItem.maxTokensLimit`), or nil for the default.
    public var maxTokens: Int?

    /// Largest `max_tokens` a task line may ask for.
    public static let maxTokensLimit = 4096

    enum CodingKeys: String, CodingKey {
        case prompt, answer
        case maxTokens = "max_tokens"
    }

    /// An item; `maxTokens` nil uses the evaluator's default.
    public init(prompt: String, answer: String, maxTokens: Int? = nil) {
        self.prompt = prompt; self.answer = answer; self.maxTokens = maxTokens
    }
}

/// Accuracy over generation-scored items: the fraction whose greedy continuation matches the
/// answer after `AnswerNormalization`.
public struct GenerationScore: Sendable, Equatable, Codable {
    /// Items scored.
    public private(set) var items = 0
    /// Items whose output matched.
    public private(set) var correct = 0

    /// No items yet.
    public init() {}

    /// correct / items (nan for no items).
    public var accuracy: Double { items == 0 ? .nan : Double(correct) / Double(items) }

    /// Counts one item.
    public mutating func add(correct isCorrect: Bool) {
        items += 1
        if isCorrect { correct += 1 }
    }
}

/// What one item produced.
public struct GenerationOutcome: Sendable, Equatable {
    /// New token ids up to the stop: a final EOS is kept, and the token that completed the first
    /// newline is the last one.
    public var tokens: [Int]
    /// Decoded text (special tokens left out) cut before its first newline.
    public var text: String
    /// Whether `text` matches the item's answer.
    public var correct: Bool
}
