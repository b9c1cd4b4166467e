/// Calibration text cut into token sequences as the model is run: each sequence starts with the
/// tokens the tokenizer puts before a text (`Tokenizer.prefixTokenIDs`: Gemma's BOS, nothing for
/// SmolLM2) and is filled with the next consecutive tokens of the text (no other special tokens),
/// up to `sequenceLength` tokens in all. A last piece with fewer than 2 text tokens is dropped.
public enum CalibrationSequences {
    /// - Parameters:
    ///   - text: the calibration text; `source` names it in errors.
    ///   - sequenceLength: tokens per sequence, prefix included; at least the prefix + 2.
    /// - Returns: the sequences, in text order (every text token in exactly one of them, except a
    ///   dropped short tail).
    /// - Throws: `RuntimeError.invalidArgument` when `sequenceLength` leaves fewer than 2 text
    ///   tokens per sequence, or the text has fewer than 2 tokens.
    public static func cut(_ text: String, source: String, tokenizer: Tokenizer, sequenceLength: Int) throws -> [[Int]] {
        let prefix = tokenizer.prefixTokenIDs
        let body = sequenceLength - prefix.count
        guard body >= 2 else {
            throw RuntimeError.invalidArgument("sequence length \(sequenceLength) leaves fewer than 2 text tokens after the tokenizer's \(prefix.count) leading token(s)")
        }
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        let sequences = stride(from: 0, to: ids.count, by: body)
            .map { prefix + ids[$0..<min($0 + body, ids.count)] }
            .filter { $0.count - prefix.count >= 2 }
        guard !sequences.isEmpty else { throw RuntimeError.invalidArgument("\(source): fewer than 2 tokens of calibration text") }
        return sequences
    }
}
