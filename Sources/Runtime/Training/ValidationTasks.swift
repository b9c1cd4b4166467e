import Foundation

/// A validation point of a training run: the mean completion-masked loss over the validation
/// data, the accuracy over generation-scored items, or both.
public struct ValidationScore: Sendable, Equatable {
    /// Mean completion-masked cross-entropy (nats), when the validation has training lines.
    public var loss: Double?
    /// Share of generation-scored items answered correctly, when it has `{"prompt", "answer"}` items.
    public var accuracy: Double?

    /// A score.
    public init(loss: Double? = nil, accuracy: Double? = nil) { self.loss = loss; self.accuracy = accuracy }

    /// Whether this point beats `other`: the higher accuracy when both have one (the lower loss
    /// breaking a tie), else the lower loss; never on equal figures (the earlier point stays).
    public func isBetter(than other: ValidationScore) -> Bool {
        if let a = accuracy, let b = other.accuracy, a != b { return a > b }
        if let a = loss, let b = other.loss { return a < b }
        return false
    }
}

/// Generation-scored validation items for `SteeringTrainer.train`: each prompt is continued
/// greedily by the model with the adapter being trained and scored as `eval --tasks` scores it
/// (`GenerationEvaluator`, `AnswerNormalization`).
public struct ValidationTasks {
    /// The items.
    public var items: [GenerationItem]
    /// Decodes the generated tokens.
    public var tokenizer: Tokenizer
    /// Ids that end a generation.
    public var stopTokens: Set<Int>
    /// Token limits and scoring.
    public var evaluator: GenerationEvaluator
    /// A prompt's ids (`GenerationEvaluator.promptEncoder`).
    public var encodePrompt: (String) throws -> [Int]

    /// Items and how to run them.
    public init(items: [GenerationItem], tokenizer: Tokenizer, stopTokens: Set<Int>, evaluator: GenerationEvaluator,
                encodePrompt: @escaping (String) throws -> [Int]) {
        self.items = items; self.tokenizer = tokenizer; self.stopTokens = stopTokens; self.evaluator = evaluator
        self.encodePrompt = encodePrompt
    }

    /// The accuracy of `model` (adapters attached) on the items.
    public func accuracy(of model: LlamaModel) throws -> Double {
        try evaluator.evaluate(model: model, items: items, tokenizer: tokenizer, stopTokens: stopTokens, encodePrompt: encodePrompt).score.accuracy
    }
}

/// What a validation file (`steertool train --eval`) holds, told by its first line's keys:
/// training lines (`completion`, `text` or `messages`: scored by loss) and/or generation-scored
/// items (`answer`: scored by accuracy); a `{"prompt", "completion", "answer"}` line is both.
public struct ValidationFileContents: Sendable, Equatable {
    /// It has training lines.
    public var training: Bool
    /// It has generation-scored items.
    public var tasks: Bool

    /// Reads the first non-blank line of `path`.
    /// - Throws: `RuntimeError.invalidData` naming the file and line when that line is not a JSON
    ///   object with either kind of key; `.invalidArgument` for an unreadable or empty file.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the validation data as UTF-8 text")
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw RuntimeError.invalidData(file: path, line: index + 1, reason: "invalid JSON (a JSON object per line)")
            }
            training = ["completion", "text", "messages"].contains { object[$0] != nil }
            tasks = object["answer"] != nil
            guard training || tasks else {
                throw RuntimeError.invalidData(file: path, line: index + 1, reason: "neither a training line ({\"prompt\", \"completion\"}, {\"text\"}, {\"messages\"}) nor a generation-scored item ({\"prompt\", \"answer\"})")
            }
            return
        }
        throw RuntimeError.invalidArgument("\(path): no validation lines")
    }
}
