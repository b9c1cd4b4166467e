/// A token matched in the raw text before normalization and pre-tokenization (HF
/// `added_tokens`; GGUF control and user-defined tokens).
public struct AddedToken: Sendable, Equatable {
    /// Vocabulary id.
    public var id: Int
    /// The exact text that stands for the token.
    public var content: String
    /// Special tokens (BOS, EOS, chat markers) are left out by `decode(skipSpecialTokens: true)`.
    public var special: Bool
    /// Absorb whitespace to the left of a match.
    public var lstrip: Bool
    /// Absorb whitespace to the right of a match.
    public var rstrip: Bool

    /// An added token.
    public init(id: Int, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
    }
}

/// Finds added tokens in UTF-8 text: leftmost match first, the longest token among those that
/// match at that position (HF's leftmost-longest Aho-Corasick semantics).
struct AddedTokenMatcher: Sendable {
    /// Per first byte: (token bytes, index into the token list), longest first.
    private let byFirstByte: [[([UInt8], Int)]]
    let tokens: [AddedToken]

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        var table = [[([UInt8], Int)]](repeating: [], count: 256)
        for (i, t) in tokens.enumerated() {
            let u = Array(t.content.utf8)
            guard let f = u.first else { continue }
            table[Int(f)].append((u, i))
        }
        for b in 0..<256 { table[b].sort { $0.0.count > $1.0.count || ($0.0.count == $1.0.count && $0.1 < $1.1) } }
        self.byFirstByte = table
    }

    /// A piece of input: text (a byte range) or an added token.
    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    @inline(__always) private static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || (0x09...0x0D).contains(b)
    }

    /// Splits `bytes` into text ranges and added tokens (empty text ranges dropped).
    func split(_ bytes: [UInt8]) -> [Segment] {
        if tokens.isEmpty { return bytes.isEmpty ? [] : [.text(0..<bytes.count)] }
        var out: [Segment] = []
        var textStart = 0
        var pos = 0
        let n = bytes.count
        while pos < n {
            var matched: (len: Int, index: Int)?
            for (u, i) in byFirstByte[Int(bytes[pos])] where u.count <= n - pos {
                var ok = true
                for k in 1..<u.count where bytes[pos + k] != u[k] { ok = false; break }
                if ok { matched = (u.count, i); break }
            }
            guard let m = matched else { pos += 1; continue }
            let token = tokens[m.index]
            var textEnd = pos
            if token.lstrip { while textEnd > textStart && Self.isSpace(bytes[textEnd - 1]) { textEnd -= 1 } }
            if textEnd > textStart { out.append(.text(textStart..<textEnd)) }
            out.append(.token(token.id))
            pos += m.len
            if token.rstrip { while pos < n && Self.isSpace(bytes[pos]) { pos += 1 } }
            textStart = pos
        }
        if textStart < n { out.append(.text(textStart..<n)) }
        return out
    }
}
