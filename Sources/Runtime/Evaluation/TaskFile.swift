import Foundation

/// Reads a JSONL multiple-choice task file (one `MultipleChoiceItem` per non-blank line).
public enum TaskFile {
    /// - Throws: `RuntimeError.invalidArgument` naming the file and 1-based line number for a
    ///   line that is not a valid item (bad JSON, missing keys, fewer than 2 choices, label out of range).
    public static func load(path: String) throws -> [MultipleChoiceItem] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the task file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError.invalidArgument("\(path): not UTF-8 text")
        }
        return try parse(text, source: path)
    }

    /// Parses JSONL text; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> [MultipleChoiceItem] {
        var items: [MultipleChoiceItem] = []
        let decoder = JSONDecoder()
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let item: MultipleChoiceItem
            do {
                item = try decoder.decode(MultipleChoiceItem.self, from: Data(trimmed.utf8))
            } catch {
                throw RuntimeError.invalidArgument("\(source):\(index + 1): not a task item {\"context\", \"choices\", \"label\"}: \(Self.describe(error))")
            }
            guard item.choices.count >= 2 else {
                throw RuntimeError.invalidArgument("\(source):\(index + 1): needs at least 2 choices, found \(item.choices.count)")
            }
            guard item.label >= 0, item.label < item.choices.count else {
                throw RuntimeError.invalidArgument("\(source):\(index + 1): label \(item.label) outside 0..<\(item.choices.count)")
            }
            items.append(item)
        }
        guard !items.isEmpty else { throw RuntimeError.invalidArgument("\(source): no task items") }
        return items
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "missing key '\(key.stringValue)'"
        case let DecodingError.typeMismatch(_, ctx): return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
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
