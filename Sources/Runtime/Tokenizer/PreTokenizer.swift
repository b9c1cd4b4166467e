/// Splits text into the words that BPE encodes separately. Hand-written scanners over Unicode
/// scalars replace the regular expressions of the reference tokenizers (no regex engine); each
/// reproduces its pattern's leftmost-first alternation and backtracking exactly.
///
/// `steps` apply in order, each to every piece the previous steps produced (HF `Sequence`
/// semantics; llama.cpp applies its list of patterns the same way).
public struct PreTokenizer: Sendable, Equatable {
    /// One splitting pass.
    public enum Step: Sendable, Equatable {
        /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
        case gpt2
        /// Llama-3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1):
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
        ///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
        case llama3(maxDigits: Int)
        /// HF `Digits`: runs of `\p{N}` apart from the rest, or (`individual`) every digit alone.
        case digits(individual: Bool)
        /// HF `Split` on a literal string (its `pattern.String`), the delimiter kept as its own
        /// piece or joined to the piece before or after it. Gemma's tokenizer.json splits on " "
        /// merged with the previous piece, after a normalizer that has turned every space into
        /// "▁", so the text stays one piece there, as in SentencePiece.
        case literal([Unicode.Scalar], LiteralDelimiter)
    }

    /// Where a `Step.literal` split puts each delimiter (HF `SplitDelimiterBehavior`).
    public enum LiteralDelimiter: String, Sendable, Equatable {
        /// The delimiter is a piece of its own (`Isolated`).
        case isolated = "Isolated"
        /// The delimiter ends the piece before it (`MergedWithPrevious`).
        case mergedWithPrevious = "MergedWithPrevious"
        /// The delimiter starts the piece after it (`MergedWithNext`).
        case mergedWithNext = "MergedWithNext"
    }

    /// The passes, applied in order.
    public var steps: [Step]
    /// HF ByteLevel `add_prefix_space`: prepend a space when the text does not start with one.
    public var addPrefixSpace: Bool

    /// A pre-tokenizer with the given passes.
    public init(steps: [Step], addPrefixSpace: Bool = false) {
        self.steps = steps
        self.addPrefixSpace = addPrefixSpace
    }

    /// GPT-2 byte-level BPE (HF `ByteLevel(use_regex: true)`, GGUF pre `gpt-2`).
    public static let gpt2 = PreTokenizer(steps: [.gpt2])
    /// Llama-3 (GGUF pre `llama-bpe`).
    public static let llama3 = PreTokenizer(steps: [.llama3(maxDigits: 3)])
    /// Qwen2 (GGUF pre `qwen2`): Llama-3 with single digits.
    public static let qwen2 = PreTokenizer(steps: [.llama3(maxDigits: 1)])
    /// SmolLM / StarCoder (GGUF pre `smollm`, `starcoder`): every digit alone, then GPT-2.
    public static let smolLM = PreTokenizer(steps: [.digits(individual: true), .gpt2])
    /// No splitting (SentencePiece models see the whole text).
    public static let none = PreTokenizer(steps: [])

    /// The pieces of `scalars`, as consecutive index ranges covering it (empty pieces dropped).
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !scalars.isEmpty else { return [] }
        let classes = scalars.map { ScalarClass.of($0) }
        var pieces: [Range<Int>] = [0..<scalars.count]
        for step in steps {
            var next: [Range<Int>] = []
            next.reserveCapacity(pieces.count * 2)
            for piece in pieces {
                switch step {
                case .gpt2:
                    PreTokenizerScan.gpt2(scalars, classes, piece, into: &next)
                case .llama3(let maxDigits):
                    PreTokenizerScan.llama3(scalars, classes, piece, maxDigits: maxDigits, into: &next)
                case .digits(let individual):
                    PreTokenizerScan.digits(classes, piece, individual: individual, into: &next)
                case let .literal(delimiter, behavior):
                    PreTokenizerScan.literal(scalars, piece, delimiter: delimiter, behavior: behavior, into: &next)
                }
            }
            pieces = next
        }
        return pieces
    }
}

/// The scanners behind `PreTokenizer`. Each looks at `scalars[range]` only (a pattern never sees
/// past its piece) and appends the matches in order.
enum PreTokenizerScan {
    @inline(__always)
    static func isContractionLetter(_ s: Unicode.Scalar, _ lower: UInt32, caseInsensitive: Bool) -> Bool {
        s.value == lower || (caseInsensitive && s.value == lower - 32)
    }

    /// Length of a contraction `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (0 when none).
    @inline(__always)
    static func contraction(_ s: [Unicode.Scalar], _ pos: Int, _ end: Int, caseInsensitive ci: Bool) -> Int {
        guard s[pos] == "'", pos + 1 < end else { return 0 }
        let a = s[pos + 1]
        for c in [UInt32(0x73), 0x74, 0x6D, 0x64] where isContractionLetter(a, c, caseInsensitive: ci) { return 2 }
        guard pos + 2 < end else { return 0 }
        let b = s[pos + 2]
        if isContractionLetter(a, 0x72, caseInsensitive: ci) && isContractionLetter(b, 0x65, caseInsensitive: ci) { return 3 }
        if isContractionLetter(a, 0x76, caseInsensitive: ci) && isContractionLetter(b, 0x65, caseInsensitive: ci) { return 3 }
        if isContractionLetter(a, 0x6C, caseInsensitive: ci) && isContractionLetter(b, 0x6C, caseInsensitive: ci) { return 3 }
        return 0
    }

    /// Length of `\s+(?!\S)|\s+` at `pos`, where `classes[pos]` is whitespace.
    @inline(__always)
    static func whitespaceRun(_ c: [ScalarClass], _ pos: Int, _ end: Int) -> Int {
        var e = pos
        while e < end && c[e] == .whitespace { e += 1 }
        let n = e - pos
        // `\s+(?!\S)`: followed by a non-space, give the last space back to the next match.
        if e < end && n > 1 { return n - 1 }
        return n
    }

    static func gpt2(_ s: [Unicode.Scalar], _ c: [ScalarClass], _ range: Range<Int>, into out: inout [Range<Int>]) {
        var pos = range.lowerBound
        let end = range.upperBound
        while pos < end {
            let start = pos
            let n = contraction(s, pos, end, caseInsensitive: false)
            if n > 0 {
                pos += n
            } else {
                // ` ?X+` for X in letter, number, other: the optional space, then a run of X.
                var p = pos
                if s[p] == " " && p + 1 < end && c[p + 1] != .whitespace { p += 1 }
                let cls = c[p]
                if cls != .whitespace {
                    p += 1
                    while p < end && c[p] == cls { p += 1 }
                    pos = p
                } else {
                    pos += whitespaceRun(c, pos, end)
                }
            }
            out.append(start..<pos)
        }
    }

    static func llama3(_ s: [Unicode.Scalar], _ c: [ScalarClass], _ range: Range<Int>, maxDigits: Int, into out: inout [Range<Int>]) {
        var pos = range.lowerBound
        let end = range.upperBound
        while pos < end {
            let start = pos
            let cls = c[pos]
            let isNewline = s[pos] == "\n" || s[pos] == "\r"
            let n = contraction(s, pos, end, caseInsensitive: true)
            if n > 0 {
                pos += n
            } else if cls == .letter || (!isNewline && cls != .number && pos + 1 < end && c[pos + 1] == .letter) {
                // `[^\r\n\p{L}\p{N}]?\p{L}+`
                pos += 1
                while pos < end && c[pos] == .letter { pos += 1 }
            } else if cls == .number {
                // `\p{N}{1,maxDigits}`
                pos += 1
                while pos < end && c[pos] == .number && pos - start < maxDigits { pos += 1 }
            } else if cls == .other || (s[pos] == " " && pos + 1 < end && c[pos + 1] == .other) {
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                if cls != .other { pos += 1 }
                while pos < end && c[pos] == .other { pos += 1 }
                while pos < end && (s[pos] == "\n" || s[pos] == "\r") { pos += 1 }
            } else {
                // whitespace: `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`
                var e = pos
                var lastNewlineEnd = -1
                while e < end && c[e] == .whitespace {
                    if s[e] == "\n" || s[e] == "\r" { lastNewlineEnd = e + 1 }
                    e += 1
                }
                if lastNewlineEnd > 0 {
                    pos = lastNewlineEnd
                } else {
                    pos += whitespaceRun(c, pos, end)
                }
            }
            out.append(start..<pos)
        }
    }

    /// Split on every non-overlapping occurrence of `delimiter` (leftmost first), as HF `Split`
    /// with a `String` pattern does; empty pieces are not emitted.
    static func literal(_ s: [Unicode.Scalar], _ range: Range<Int>, delimiter: [Unicode.Scalar],
                        behavior: PreTokenizer.LiteralDelimiter, into out: inout [Range<Int>]) {
        guard !delimiter.isEmpty else { out.append(range); return }
        var start = range.lowerBound, pos = range.lowerBound
        func emit(_ r: Range<Int>) { if !r.isEmpty { out.append(r) } }
        while pos + delimiter.count <= range.upperBound {
            guard s[pos..<(pos + delimiter.count)].elementsEqual(delimiter) else { pos += 1; continue }
            let end = pos + delimiter.count
            switch behavior {
            case .isolated: emit(start..<pos); emit(pos..<end); start = end
            case .mergedWithPrevious: emit(start..<end); start = end
            case .mergedWithNext: emit(start..<pos); start = pos
            }
            pos = end
        }
        emit(start..<range.upperBound)
    }

    static func digits(_ c: [ScalarClass], _ range: Range<Int>, individual: Bool, into out: inout [Range<Int>]) {
        var pos = range.lowerBound
        let end = range.upperBound
        while pos < end {
            let start = pos
            if c[pos] == .number {
                pos += 1
                if !individual { while pos < end && c[pos] == .number { pos += 1 } }
            } else {
                while pos < end && c[pos] != .number { pos += 1 }
            }
            out.append(start..<pos)
        }
    }
}
