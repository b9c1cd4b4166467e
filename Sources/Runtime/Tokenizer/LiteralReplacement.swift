/// Literal text replacement on UTF-8 bytes, as tokenizers' `Replace` and SentencePiece's space
/// escaping do it. Foundation's `replacingOccurrences(of:with:)` compares grapheme clusters, so a
/// space that begins a cluster with a following combining mark (" \u{301}", or a space before
/// Bengali "া") is not found and stays unescaped; here every byte-exact occurrence is replaced.
enum LiteralReplacement {
    /// `text` with every non-overlapping occurrence of `target` (leftmost first) replaced by
    /// `replacement`. Both are whole UTF-8 scalars, so a match never splits one.
    static func replacing(_ target: String, with replacement: String, in text: String) -> String {
        let t = Array(target.utf8)
        guard !t.isEmpty else { return text }
        let bytes = Array(text.utf8)
        guard bytes.count >= t.count else { return text }
        let r = Array(replacement.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 2)
        var i = 0, changed = false
        while i < bytes.count {
            if bytes[i] == t[0], i + t.count <= bytes.count, bytes[i..<(i + t.count)].elementsEqual(t) {
                out += r
                i += t.count
                changed = true
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }
}
