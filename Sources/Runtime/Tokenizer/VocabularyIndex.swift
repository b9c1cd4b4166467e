/// Token text → id, matched by exact UTF-8 bytes as tokenizers and llama.cpp match them.
/// Swift `String` equality and hashing follow Unicode canonical equivalence, so two vocabulary
/// entries that differ only in composition (Gemma's vocabulary has such pairs, e.g. Bengali "ায়"
/// with the precomposed U+09DF and with U+09AF U+09BC) would collide as `String` keys and one of
/// them would get the other's id.
struct VocabularyIndex: Sendable {
    private var ids: [[UInt8]: Int32] = [:]

    /// Indexes `vocabulary` (id = position); when two entries have the same bytes the first wins.
    init(_ vocabulary: [String]) {
        ids.reserveCapacity(vocabulary.count)
        for (i, token) in vocabulary.enumerated() {
            let key = Array(token.utf8)
            if ids[key] == nil { ids[key] = Int32(i) }
        }
    }

    /// The id of the token spelled exactly `text`.
    subscript(_ text: String) -> Int32? { ids[Array(text.utf8)] }

    /// The id of the token whose UTF-8 bytes are `bytes`.
    subscript(bytes bytes: ArraySlice<UInt8>) -> Int32? { ids[Array(bytes)] }
}
