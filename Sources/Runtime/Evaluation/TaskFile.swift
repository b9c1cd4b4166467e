import Foundation

/// The items of one task file: all multiple-choice or all generation-scored.
public enum EvalTasks: Sendable, Equatable {
    /// Lines `{"context", "choices", "label"}`, scored by log-likelihood.
    case multipleChoice([MultipleChoiceItem])
    /// Lines `{"prompt", "answer"}` (optionally `"max_tokens"`), scored by greedy generation.
    case generation([GenerationItem])

    /// Number of items.
    public var count: Int {
        switch self {
        case .multipleChoice(let items): return items.count
        case .generation(let items): return items.count
        }
    }
}

/// Reads JSONL task files: one item per non-blank line, either every line multiple-choice
/// (`MultipleChoiceItem`) or every line generation-scored (`GenerationItem`). The kind of a line
/// is told by its keys: `context`/`choices`/`label` or `prompt`/`answer`.
public enum TaskFile {
    /// Reads a task file of either kind.
    /// - Throws: `RuntimeError.invalidArgument` naming the file and 1-based line number for a line
    ///   that is not a valid item (bad JSON, not an object, missing or mistyped keys, keys of both
    ///   kinds, fewer than 2 choices, label out of range, `max_tokens` outside 1…4096), or of
    ///   another kind than the first item.
    public static func loadTasks(path: String) throws -> EvalTasks {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the task file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError.invalidArgument("\(path): not UTF-8 text")
        }
        return try parseTasks(text, source: path)
    }

    /// Reads a multiple-choice task file.
    /// - Throws: as `loadTasks`, and when the file holds generation-scored items.
    public static func load(path: String) throws -> [MultipleChoiceItem] {
        try multipleChoice(loadTasks(path: path), source: path)
    }

    /// Parses multiple-choice JSONL text; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> [MultipleChoiceItem] {
        try multipleChoice(parseTasks(text, source: source), source: source)
    }

    /// Parses JSONL text of either kind; `source` names it in errors.
    public static func parseTasks(_ text: String, source: String) throws -> EvalTasks {
        var choiceItems: [MultipleChoiceItem] = []
        var generationItems: [GenerationItem] = []
        var first: (kind: String, line: Int)? = nil
        let decoder = JSONDecoder()
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let location = "\(source):\(index + 1)"
            let data = Data(trimmed.utf8)
            guard let object = try? JSONSerialization.jsonObject(with: data), let keys = (object as? [String: Any]).map({ Set($0.keys) }) else {
                throw RuntimeError.invalidArgument("\(location): not a task item (a JSON object per line): invalid JSON")
            }
            let isChoice = !keys.isDisjoint(with: ["context", "choices", "label"])
            let isGeneration = !keys.isDisjoint(with: ["prompt", "answer", "max_tokens"])
            let kind: String
            switch (isChoice, isGeneration) {
            case (true, true):
                throw RuntimeError.invalidArgument("\(location): mixes multiple-choice keys (context, choices, label) with generation keys (prompt, answer, max_tokens)")
            case (true, false): kind = "multiple-choice"
            case (false, true):
                if keys.contains("completion") && !keys.contains("answer") {
                    throw RuntimeError.invalidArgument("\(location): a training line {\"prompt\", \"completion\"}; generation-scored tasks need {\"prompt\", \"answer\"}")
                }
                kind = "generation"
            case (false, false):
                throw RuntimeError.invalidArgument("\(location): not a task item: expected {\"context\", \"choices\", \"label\"} or {\"prompt\", \"answer\"}")
            }
            if let first, first.kind != kind {
                throw RuntimeError.invalidArgument("\(location): a \(kind) item, but line \(first.line) is \(first.kind): a task file holds one kind")
            }
            if first == nil { first = (kind, index + 1) }
            if kind == "generation" {
                let item: GenerationItem
                do { item = try decoder.decode(GenerationItem.self, from: data) } catch {
                    throw RuntimeError.invalidArgument("\(location): not a generation task item {\"prompt\", \"answer\"}: \(Self.describe(error))")
                }
                if let m = item.maxTokens, m < 1 || m > GenerationItem.maxTokensLimit {
                    throw RuntimeError.invalidArgument("\(location): max_tokens \(m) outside 1...\(GenerationItem.maxTokensLimit)")
                }
                generationItems.append(item)
                continue
            }
            let item: MultipleChoiceItem
            do {
                item = try decoder.decode(MultipleChoiceItem.self, from: data)
            } catch {
                throw RuntimeError.invalidArgument("\(location): not a task item {\"context\", \"choices\", \"label\"}: \(Self.describe(error))")
            }
            guard item.choices.count >= 2 else {
                throw RuntimeError.invalidArgument("\(location): needs at least 2 choices, found \(item.choices.count)")
            }
            guard item.label >= 0, item.label < item.choices.count else {
                throw RuntimeError.invalidArgument("\(location): label \(item.label) outside 0..<\(item.choices.count)")
            }
            choiceItems.append(item)
        }
        guard let first else { throw RuntimeError.invalidArgument("\(source): no task items") }
        return first.kind == "generation" ? .generation(generationItems) : .multipleChoice(choiceItems)
    }

    private static func multipleChoice(_ tasks: EvalTasks, source: String) throws -> [MultipleChoiceItem] {
        guard case .multipleChoice(let items) = tasks else {
            throw RuntimeError.invalidArgument("\(source): generation-scored items where multiple-choice items were expected")
        }
        return items
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "missing key '\(key.stringValue)'"
        case let DecodingError.typeMismatch(_, ctx): return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case let DecodingError.valueNotFound(_, ctx): return "null at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted: return "invalid JSON"
        default: return "\(error)"
        }
    }
}

/// Reads `--tokens` files: a JSON list of token-id lists.
public enum TokenListFile {
    /// - Throws: `RuntimeError.invalidArgument` naming the file when it is not `[[Int]]` or a list is empty.
    public static func load(path: String) throws -> [[Int]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the token file")
        }
        let lists: [[Int]]
        do { lists = try JSONDecoder().decode([[Int]].self, from: data) } catch {
            throw RuntimeError.invalidArgument("\(path): expected a JSON list of token-id lists, e.g. [[1, 2, 3], [4, 5]]")
        }
        guard !lists.isEmpty else { throw RuntimeError.invalidArgument("\(path): no token lists") }
        for (i, l) in lists.enumerated() where l.count < 2 {
            throw RuntimeError.invalidArgument("\(path): list \(i) has \(l.count) token(s); at least 2 are needed to score one")
        }
        return lists
    }
}
