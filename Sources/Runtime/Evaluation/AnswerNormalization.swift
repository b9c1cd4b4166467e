/// How a generated continuation is compared with a task's answer (generation-scored tasks).
///
/// Normalisation, applied to both the output and the answer:
/// 1. cut at the first `"\n"` (generation also stops there);
/// 2. strip ASCII whitespace (space, tab, LF, VT, FF, CR) at both ends;
/// 3. lowercase ASCII `A`–`Z` (other letters are left as they are);
/// 4. strip one trailing `"."`, then ASCII whitespace at both ends again.
///
/// Match: the normalised texts are equal, or, when the normalised answer is a number
/// (`-?[0-9]+` optionally followed by `.[0-9]+`), the first ASCII-whitespace-delimited word of the
/// normalised output, with one trailing `"."` removed, equals it (so `" 7"`, `"7."` and
/// `"7 is the answer"` match `7`, while `"17"`, `"07"` and `"seven"` do not).
public enum AnswerNormalization {
    /// The rule in one line, as `eval --help` and the JSON report state it.
    public static let description =
        "cut at the first newline, trim ASCII whitespace, lowercase A-Z, drop one trailing '.', trim again; exact match, or for a numeric answer the output's first word (one trailing '.' dropped)"

    /// `text` normalised as described above.
    public static func normalize(_ text: String) -> String {
        var bytes = Array(text.utf8)
        if let newline = bytes.firstIndex(of: 0x0A) { bytes.removeSubrange(newline...) }
        bytes = trimmed(bytes)
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] += 0x20 }
        if bytes.last == 0x2E { bytes.removeLast() }
        return String(decoding: trimmed(bytes), as: UTF8.self)
    }

    /// Whether `output` matches `answer` after normalisation (see the type's documentation).
    public static func matches(output: String, answer: String) -> Bool {
        let o = normalize(output), a = normalize(answer)
        guard isNumber(a) else { return o == a }
        var word = Array(o.utf8.prefix { !isSpace($0) })
        if word.last == 0x2E { word.removeLast() }
        return String(decoding: word, as: UTF8.self) == a
    }

    /// `-?[0-9]+(\.[0-9]+)?` over the whole string.
    static func isNumber(_ s: String) -> Bool {
        var b = Array(s.utf8)[...]
        if b.first == 0x2D { b = b.dropFirst() }
        let isDigit = { (c: UInt8) in c >= 0x30 && c <= 0x39 }
        let whole = b.prefix(while: isDigit)
        guard !whole.isEmpty else { return false }
        b = b.dropFirst(whole.count)
        if b.isEmpty { return true }
        guard b.first == 0x2E else { return false }
        let fraction = b.dropFirst()
        return !fraction.isEmpty && fraction.allSatisfy(isDigit)
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    private static func trimmed(_ b: [UInt8]) -> [UInt8] {
        guard let first = b.firstIndex(where: { !isSpace($0) }), let last = b.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(b[first...last])
    }
}
