/// SentencePiece-BPE as llama.cpp runs GGUF `tokenizer.ggml.model = "llama"` vocabularies: the
/// text (spaces already written as `▁`) starts as one symbol per UTF-8 character; the adjacent
/// pair whose concatenation is a vocabulary token with the highest score merges first (leftmost on
/// ties), until no pair forms a token. Symbols that are not tokens become their byte tokens
/// `<0xAB>` (or the unknown token).
public struct SentencePieceModel: Sendable {
    /// Score of each token id (higher merges first).
    public let scores: [Float]
    /// `byteTokens[b]`: the id of `<0xBB>`, or -1.
    public let byteTokens: [Int32]
    /// The unknown token, used for bytes without a byte token.
    public let unknownID: Int?
    /// Whether a `▁` is prepended to text at the start and after each special token
    /// (`add_dummy_prefix`, GGUF `tokenizer.ggml.add_space_prefix`).
    public let addDummyPrefix: Bool

    /// A model over `scores` (one per vocabulary id); `vocabulary` finds the byte tokens.
    public init(scores: [Float], vocabulary: [String], unknownID: Int?, addDummyPrefix: Bool) {
        self.scores = scores
        var bytes = [Int32](repeating: -1, count: 256)
        for (id, token) in vocabulary.enumerated() {
            if let b = ByteFallback.byte(ofToken: token), bytes[Int(b)] < 0 { bytes[Int(b)] = Int32(id) }
        }
        self.byteTokens = bytes
        self.unknownID = unknownID
        self.addDummyPrefix = addDummyPrefix
    }

    private struct Symbol {
        var start: Int
        var length: Int
        var prev: Int
        var next: Int
    }

    private struct Bigram: HeapOrdered {
        var score: Float
        var left: Int
        var right: Int
        var size: Int
        /// Heap order: highest score first, leftmost on ties.
        @inline(__always) static func precedes(_ a: Bigram, _ b: Bigram) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
    }

    /// Encodes `bytes` (UTF-8, spaces already escaped) and appends ids to `out`; `lookup` maps a
    /// token's text to its id.
    func encode(_ bytes: [UInt8], lookup: VocabularyIndex, into out: inout [Int]) {
        guard !bytes.isEmpty else { return }
        var symbols: [Symbol] = []
        var offset = 0
        while offset < bytes.count {
            let len = min(UTF8Scan.sequenceLength(lead: bytes[offset]), bytes.count - offset)
            symbols.append(Symbol(start: offset, length: len, prev: symbols.count - 1, next: -1))
            offset += len
            if offset < bytes.count { symbols[symbols.count - 1].next = symbols.count }
        }
        var heap = PriorityHeap<Bigram>()
        func text(_ start: Int, _ length: Int) -> ArraySlice<UInt8> { bytes[start..<(start + length)] }
        func tryAdd(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let size = symbols[left].length + symbols[right].length
            guard let id = lookup[bytes: text(symbols[left].start, size)], Int(id) < scores.count else { return }
            heap.push(Bigram(score: scores[Int(id)], left: left, right: right, size: size))
        }
        for i in 1..<symbols.count { tryAdd(i - 1, i) }
        while let b = heap.pop() {
            let l = b.left, r = b.right
            if symbols[l].length == 0 || symbols[r].length == 0 || symbols[l].length + symbols[r].length != b.size { continue }
            symbols[l].length += symbols[r].length
            symbols[r].length = 0
            symbols[l].next = symbols[r].next
            if symbols[r].next >= 0 { symbols[symbols[r].next].prev = l }
            tryAdd(symbols[l].prev, l)
            tryAdd(l, symbols[l].next)
        }
        var i = 0
        while i >= 0 {
            let s = symbols[i]
            if let id = lookup[bytes: text(s.start, s.length)] {
                out.append(Int(id))
            } else {
                for k in s.start..<(s.start + s.length) {
                    let t = byteTokens[Int(bytes[k])]
                    if t >= 0 { out.append(Int(t)) } else if let u = unknownID { out.append(u) }
                }
            }
            i = s.next
        }
    }
}

/// Byte-fallback tokens: `<0xAB>` stands for the byte 0xAB.
public enum ByteFallback {
    /// The byte a `<0xAB>` token stands for, or nil for any other token.
    public static func byte(ofToken token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
              let hi = hex(u[3]), let lo = hex(u[4]) else { return nil }
        return hi << 4 | lo
    }

    /// The token spelling `<0xAB>` of a byte (upper-case hex digits, as SentencePiece writes it).
    public static func token(for byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "<0x\(digits[Int(byte >> 4)])\(digits[Int(byte & 15)])>"
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

/// UTF-8 sequence helpers.
enum UTF8Scan {
    /// The scalars of valid UTF-8 `bytes` (as produced from a Swift String) and the byte offset
    /// of each (`offsets[i]` starts scalar i; `offsets[count]` is the end). Malformed input
    /// becomes U+FFFD per byte.
    static func scalars(_ bytes: [UInt8]) -> ([Unicode.Scalar], [Int32]) {
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int32] = []
        scalars.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        let n = bytes.count
        var i = 0
        bytes.withUnsafeBufferPointer { b in
            while i < n {
                offsets.append(Int32(truncatingIfNeeded: i))
                let b0 = UInt32(b[i])
                var v: UInt32 = 0xFFFD
                var len = 1
                if b0 < 0x80 {
                    v = b0
                } else if b0 >= 0xC2 && b0 < 0xE0 && i + 1 < n {
                    v = (b0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F); len = 2
                } else if b0 >= 0xE0 && b0 < 0xF0 && i + 2 < n {
                    v = (b0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F); len = 3
                } else if b0 >= 0xF0 && b0 < 0xF5 && i + 3 < n {
                    v = (b0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F); len = 4
                }
                scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                i += len
            }
        }
        offsets.append(Int32(truncatingIfNeeded: n))
        return (scalars, offsets)
    }

    /// Length of the sequence a lead byte starts (1 for continuation or invalid bytes, as
    /// llama.cpp's `unicode_len_utf8`).
    @inline(__always)
    static func sequenceLength(lead: UInt8) -> Int {
        switch lead {
        case 0xF0...0xF7: return 4
        case 0xE0...0xEF: return 3
        case 0xC0...0xDF: return 2
        default: return 1
        }
    }
}
