/// Decodes tokens one at a time while generating: text is emitted only once its bytes form
/// complete UTF-8 characters, so a character split over several byte tokens appears whole. The
/// concatenation of every `push` and the final `finish` equals `Tokenizer.decode` of all ids.
public struct IncrementalDecoder: Sendable {
    /// The tokenizer whose tokens are decoded.
    public let tokenizer: Tokenizer
    /// Leave out special tokens (as `decode(skipSpecialTokens: true)`).
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    private var atStart = true

    /// A decoder with nothing pending.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token; returns the text that became complete (possibly empty).
    public mutating func push(_ id: Int) -> String {
        if skipSpecialTokens && tokenizer.specialTokenIDs.contains(id) { return "" }
        var bytes = tokenizer.bytes(forToken: id)
        if atStart && !bytes.isEmpty {
            if case .sentencePiece(true) = tokenizer.decoding, bytes.first == 0x20 { bytes.removeFirst() }
            atStart = false
        }
        pending += bytes
        let keep = Self.incompleteTailLength(pending)
        let ready = pending.count - keep
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[0..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Returns whatever is pending (an unfinished character becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        let text = String(decoding: pending, as: UTF8.self)
        pending = []
        atStart = true
        return text
    }

    /// Number of bytes at the end of `bytes` that start a UTF-8 character still missing bytes.
    static func incompleteTailLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var i = n - 1
        var continuation = 0
        while i >= 0 && continuation < 3 && (bytes[i] & 0xC0) == 0x80 {
            continuation += 1
            i -= 1
        }
        guard i >= 0 else { return 0 }
        let lead = bytes[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return 0
        }
        let have = n - i
        return have < need ? have : 0
    }
}
