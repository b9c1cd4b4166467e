import ArgumentParser
import Foundation
import Formats
import Runtime

/// `steertool tokenize --model <path> --text "…" [--json] [--no-special]`: the ids and pieces of
/// a text under a model's tokenizer (HF folder, tokenizer.json, or GGUF).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids and pieces of a text under a model's tokenizer.")

    @Option(name: .long, help: "HF model folder, tokenizer.json, or GGUF file.")
    var model: String

    @Option(name: .long, help: "Text to tokenize.")
    var text: String

    @Flag(name: .long, help: "Print one JSON object {ids, pieces, text} instead of a table.")
    var json = false

    @Flag(name: .customLong("no-special"), help: "Do not add BOS/EOS (added tokens written in the text are still recognised).")
    var noSpecial = false

    func run() throws {
        let tokenizer = try Tokenizer.load(modelPath: model)
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecial)
        // A piece is the text one token contributes (a character split over byte tokens shows as U+FFFD).
        let pieces = ids.map { tokenizer.decode([$0]) }
        if json {
            let doc = JSONValue.object([
                ("ids", .array(ids.map { .int($0) })),
                ("pieces", .array(pieces.map { .string($0) })),
                ("tokens", .array(ids.map { .string(tokenizer.token(for: $0) ?? "") })),
                ("text", .string(tokenizer.decode(ids))),
            ])
            print(doc.serialized())
        } else {
            print("\(ids.count) tokens")
            for (id, piece) in zip(ids, pieces) {
                print("\(id)\t\(piece.debugDescription)\t\(tokenizer.token(for: id) ?? "")")
            }
        }
    }
}
