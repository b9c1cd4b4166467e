/// Which token positions a steering adapter shifts.
///
/// `last` is ReFT's choice: only the prompt's final token is steered, and what follows sees the
/// shift through attention. A pass that runs a `last` adapter must say where its prompt ends
/// (`ForwardOptions.promptLengths`; generation and generation-scored eval do, and training takes
/// it from the data's first completion token); a pass that does not (perplexity over text
/// windows, a bare forward) is refused rather than steered at a guessed position.
public enum SteeringPositions: String, Sendable, Codable, CaseIterable {
    /// Every token (the paper's post-block steering).
    case all
    /// The last prompt token only: position `promptLength − 1` of each sequence. In generation
    /// that is the prefill's last token; generated tokens are not steered.
    case last

    /// The rows of a pass that hold a last prompt token: for each sequence i (rows
    /// `sequences[i]`, its first row at absolute position `firstPosition` for one sequence with a
    /// KV cache, 0 for packed ones), the row at position `promptLengths[i] − 1` when that
    /// position is among the pass's rows. Ascending; empty when no prompt ends in this pass (a
    /// decode step).
    public static func lastPromptRows(sequences: [Range<Int>], firstPosition: Int, promptLengths: [Int]) -> [Int] {
        var rows: [Int] = []
        for (segment, length) in zip(sequences, promptLengths) {
            let offset = length - 1 - firstPosition
            if offset >= 0, offset < segment.count { rows.append(segment.lowerBound + offset) }
        }
        return rows
    }
}
