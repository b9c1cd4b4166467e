/// Generation-scored evaluation: each item's prompt is continued by greedy decoding
/// (`LlamaModel.generate`) until an end-of-sequence token, the first newline in the decoded text,
/// or the item's token limit, and the text before the newline is compared with the answer by
/// `AnswerNormalization`.
public struct GenerationEvaluator: Sendable {
    /// Most new tokens for items without `max_tokens` (≥ 1).
    public var defaultMaxTokens: Int

    /// - Precondition: `defaultMaxTokens ≥ 1` (validated by callers).
    public init(defaultMaxTokens: Int) {
        precondition(defaultMaxTokens >= 1, "default max tokens must be ≥ 1")
        self.defaultMaxTokens = defaultMaxTokens
    }

    /// Scores every item.
    /// - Parameters:
    ///   - encodePrompt: the prompt's ids (plain text with the tokenizer's special tokens, or the
    ///     chat template's rendering).
    ///   - tokenizer: decodes the new tokens (special tokens left out).
    ///   - stopTokens: ids that end generation (the model's EOS ids).
    ///   - progress: called after each item.
    /// - Returns: the accuracy and each item's outcome, in order.
    /// - Throws: `RuntimeError` for a prompt that encodes to no tokens, or what generation throws.
    public func evaluate(model: LlamaModel, items: [GenerationItem], tokenizer: Tokenizer, stopTokens: Set<Int>,
                         encodePrompt: (String) throws -> [Int],
                         progress: () -> Void = {}) throws -> (score: GenerationScore, outcomes: [GenerationOutcome]) {
        var score = GenerationScore()
        var outcomes: [GenerationOutcome] = []
        for (index, item) in items.enumerated() {
            let prompt = try encodePrompt(item.prompt)
            guard !prompt.isEmpty else {
                throw RuntimeError.invalidArgument("generation task item \(index + 1): the prompt encodes to no tokens")
            }
            var decoder = tokenizer.incrementalDecoder(skipSpecialTokens: true)
            let parameters = GenerationParameters(maxTokens: item.maxTokens ?? defaultMaxTokens, stopTokens: stopTokens)
            let result = try model.generate(prompt: prompt, parameters: parameters) { token in
                !decoder.push(token).contains("\n")
            }
            var text = tokenizer.decode(result.tokens, skipSpecialTokens: true)
            if let newline = text.firstIndex(of: "\n") { text = String(text[..<newline]) }
            let correct = AnswerNormalization.matches(output: text, answer: item.answer)
            score.add(correct: correct)
            outcomes.append(GenerationOutcome(tokens: result.tokens, text: text, correct: correct))
            progress()
        }
        return (score, outcomes)
    }
}

extension GenerationEvaluator {
    /// How a generation-scored prompt becomes ids: plain text with the tokenizer's special
    /// tokens, or with `template` one user turn and the assistant's opening.
    public static func promptEncoder(tokenizer: Tokenizer, template: ChatTemplate?, enableThinking: Bool = true) -> (String) throws -> [Int] {
        { prompt in
            template.map { tokenizer.encodeChat([ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true,
                                                template: $0, enableThinking: enableThinking) }
                ?? tokenizer.encode(prompt, addSpecialTokens: true)
        }
    }

    /// The ids that end a generation: the model's EOS ids and, with a chat template, its
    /// end-of-turn marker.
    public static func stopTokens(config: LlamaConfig, tokenizer: Tokenizer, template: ChatTemplate?) -> Set<Int> {
        Set(config.eosTokenIds).union(template.flatMap { tokenizer.endOfTurnID($0) }.map { [$0] } ?? [])
    }
}
