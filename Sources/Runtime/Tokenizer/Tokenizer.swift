import Foundation

/// A text ⇄ token-id codec for Llama-family models: byte-level BPE (GPT-2, Llama-3, SmolLM, from
/// tokenizer.json or GGUF `gpt2`), BPE over characters with byte fallback (HF Llama-2-style
/// tokenizer.json) and SentencePiece-BPE by scores (GGUF `llama`).
///
/// Encoding: added tokens are matched in the raw text first (leftmost, longest); each text piece
/// between them is normalized, split by the pre-tokenizer and encoded by the model; with
/// `addSpecialTokens` the post-processor's prefix (BOS) and suffix ids are added. Ids are 0-based
/// positions in `vocabulary`. A value type: safe to share between threads.
public struct Tokenizer: Sendable {
    /// How a piece of text becomes ids.
    public enum Model: Sendable {
        /// BPE by merge rank. `byteLevel`: words are UTF-8 bytes written in GPT-2's byte alphabet;
        /// otherwise symbols are characters, with `<0xAB>` tokens for characters outside the
        /// vocabulary when `byteFallback`. `ignoreMerges`: a word that is itself a token is
        /// emitted whole (Llama-3).
        case bytePair(BytePairModel, byteLevel: Bool, byteFallback: Bool, ignoreMerges: Bool)
        /// SentencePiece-BPE by token score (GGUF `llama`); spaces become `▁`.
        case sentencePiece(SentencePieceModel)
    }

    /// A text normalization step (HF `normalizer`).
    public enum Normalization: Sendable, Equatable {
        /// Unicode canonical composition.
        case nfc
        /// Prepend a string to non-empty text.
        case prepend(String)
        /// Replace every occurrence of a string.
        case replace(String, String)
    }

    /// How ids become text again.
    public enum Decoding: Sendable, Equatable {
        /// Each token's scalars are GPT-2 alphabet bytes (tokens outside the alphabet: their UTF-8).
        case byteLevel
        /// `▁` is a space, `<0xAB>` a byte; with `stripLeadingSpace` the first space of the text
        /// is dropped (the dummy prefix).
        case sentencePiece(stripLeadingSpace: Bool)
    }

    /// Token text by id (`vocabulary.count` is the vocabulary size, added tokens included).
    public let vocabulary: [String]
    /// The encoding model.
    public let model: Model
    /// Normalization steps, in order.
    public let normalization: [Normalization]
    /// Splits normalized text into words (byte-level and character BPE only).
    public let preTokenizer: PreTokenizer
    /// The decoder.
    public let decoding: Decoding
    /// Tokens matched before pre-tokenization.
    public var addedTokens: [AddedToken] { addedMatcher.tokens }
    /// Ids that `decode(skipSpecialTokens: true)` leaves out.
    public let specialTokenIDs: Set<Int>
    /// Beginning-of-sequence id, if the model has one.
    public let bosTokenID: Int?
    /// End-of-sequence id (generation stops there), if the model has one.
    public let eosTokenID: Int?
    /// Ids put before the text when encoding with `addSpecialTokens` (usually `[bos]` or `[]`).
    public let prefixTokenIDs: [Int]
    /// Ids put after the text when encoding with `addSpecialTokens`.
    public let suffixTokenIDs: [Int]
    /// The chat template text shipped with the model (Jinja source), if any.
    public let chatTemplateSource: String?
    /// The unknown token, if any.
    public let unknownTokenID: Int?

    let tokenIDs: VocabularyIndex
    let addedMatcher: AddedTokenMatcher
    /// Initial symbol id of each byte (byte-level BPE), -1 when the vocabulary lacks it.
    let byteSymbols: [Int32]
    /// Per id: the bytes the token decodes to.
    let tokenBytes: [[UInt8]]

    /// Whether `encode(_:addSpecialTokens: true)` starts with the BOS id.
    public var addsBOS: Bool { bosTokenID != nil && prefixTokenIDs.first == bosTokenID }

    /// Builds a tokenizer. `merges` are pairs of token strings in rank order (BPE models only);
    /// every id must be inside `vocabulary`.
    public init(vocabulary: [String], model kind: ModelKind, merges: [(String, String)], normalization: [Normalization],
                preTokenizer: PreTokenizer, decoding: Decoding, addedTokens: [AddedToken],
                bosTokenID: Int?, eosTokenID: Int?, unknownTokenID: Int?,
                prefixTokenIDs: [Int], suffixTokenIDs: [Int], chatTemplate: String?, source: String) throws {
        let n = vocabulary.count
        for id in [bosTokenID, eosTokenID, unknownTokenID].compactMap({ $0 }) + prefixTokenIDs + suffixTokenIDs + addedTokens.map(\.id) {
            guard id >= 0 && id < n else {
                throw TokenizerError.invalidFormat(source: source, reason: "token id \(id) outside the vocabulary of \(n)")
            }
        }
        let ids = VocabularyIndex(vocabulary)
        self.vocabulary = vocabulary
        self.tokenIDs = ids
        switch kind {
        case let .bytePair(byteLevel, byteFallback, ignoreMerges):
            var pairs: [(left: Int, right: Int, merged: Int)] = []
            pairs.reserveCapacity(merges.count)
            for (i, (a, b)) in merges.enumerated() {
                guard let l = ids[a], let r = ids[b], let m = ids[a + b] else {
                    throw TokenizerError.invalidFormat(source: source, reason: "merge \(i) '\(a) \(b)' names a token outside the vocabulary")
                }
                pairs.append((Int(l), Int(r), Int(m)))
            }
            self.model = .bytePair(BytePairModel(mergePairs: pairs), byteLevel: byteLevel, byteFallback: byteFallback, ignoreMerges: ignoreMerges)
        case let .sentencePiece(scores, addDummyPrefix):
            guard scores.count == n else {
                throw TokenizerError.invalidFormat(source: source, reason: "\(scores.count) scores for \(n) tokens")
            }
            self.model = .sentencePiece(SentencePieceModel(scores: scores, vocabulary: vocabulary, unknownID: unknownTokenID, addDummyPrefix: addDummyPrefix))
        }
        self.normalization = normalization
        self.preTokenizer = preTokenizer
        self.decoding = decoding
        // Longest first is the matcher's order; the list order decides only between equal texts.
        self.addedMatcher = AddedTokenMatcher(addedTokens)
        self.specialTokenIDs = Set(addedTokens.filter(\.special).map(\.id))
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = unknownTokenID
        self.prefixTokenIDs = prefixTokenIDs
        self.suffixTokenIDs = suffixTokenIDs
        self.chatTemplateSource = chatTemplate
        self.byteSymbols = (0..<256).map { b in ids[String(ByteLevelAlphabet.scalarForByte[b])] ?? -1 }
        switch decoding {
        case .byteLevel:
            self.tokenBytes = vocabulary.map { ByteLevelAlphabet.decode($0) ?? Array($0.utf8) }
        case .sentencePiece:
            self.tokenBytes = vocabulary.map { t in
                if let b = ByteFallback.byte(ofToken: t) { return [b] }
                return Array(LiteralReplacement.replacing("\u{2581}", with: " ", in: t).utf8)
            }
        }
    }

    /// The kind of model to build (the model's tables come from the other arguments).
    public enum ModelKind: Sendable {
        /// BPE by merge rank (see `Model.bytePair`).
        case bytePair(byteLevel: Bool, byteFallback: Bool, ignoreMerges: Bool)
        /// SentencePiece-BPE with one score per token.
        case sentencePiece(scores: [Float], addDummyPrefix: Bool)
    }

    /// Number of tokens (ids are `0..<vocabularySize`).
    public var vocabularySize: Int { vocabulary.count }

    /// The id of a token's exact text, if it is in the vocabulary.
    public func id(of token: String) -> Int? { tokenIDs[token].map(Int.init) }

    /// The vocabulary text of `id` (nil when out of range).
    public func token(for id: Int) -> String? { id >= 0 && id < vocabulary.count ? vocabulary[id] : nil }

    // MARK: encoding

    /// Token ids of `text`. With `addSpecialTokens` the post-processor's prefix (BOS) and suffix
    /// ids are added; added tokens written in the text are always recognised.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var out: [Int] = []
        if addSpecialTokens { out += prefixTokenIDs }
        let bytes = Array(text.utf8)
        var cache = WordCache()
        var previousWasToken = true
        for segment in addedMatcher.split(bytes) {
            switch segment {
            case .token(let id):
                out.append(id)
                previousWasToken = true
            case .text(let range):
                encodeText(bytes[range], atStart: previousWasToken, cache: &cache, into: &out)
                previousWasToken = false
            }
        }
        if addSpecialTokens { out += suffixTokenIDs }
        return out
    }

    private func normalize(_ text: String) -> String {
        var s = text
        for step in normalization {
            switch step {
            case .nfc: s = s.precomposedStringWithCanonicalMapping
            case .prepend(let p): if !s.isEmpty { s = p + s }
            case .replace(let a, let b): s = LiteralReplacement.replacing(a, with: b, in: s)
            }
        }
        return s
    }

    private func encodeText(_ raw: ArraySlice<UInt8>, atStart: Bool, cache: inout WordCache, into out: inout [Int]) {
        switch model {
        case .sentencePiece(let spm):
            var s = String(decoding: raw, as: UTF8.self)
            s = normalize(s)
            if spm.addDummyPrefix && atStart { s = " " + s }
            s = LiteralReplacement.replacing(" ", with: "\u{2581}", in: s)
            spm.encode(Array(s.utf8), lookup: tokenIDs, into: &out)
        case let .bytePair(bpe, byteLevel, byteFallback, ignoreMerges):
            var bytes: [UInt8]
            if normalization.isEmpty {
                bytes = Array(raw)
            } else {
                bytes = Array(normalize(String(decoding: raw, as: UTF8.self)).utf8)
            }
            if preTokenizer.addPrefixSpace && bytes.first != 0x20 { bytes.insert(0x20, at: 0) }
            let (scalars, offsets) = UTF8Scan.scalars(bytes)
            let pieces = preTokenizer.steps.isEmpty ? [0..<scalars.count] : preTokenizer.split(scalars)
            var ids: [Int] = []
            for piece in pieces where !piece.isEmpty {
                let word = bytes[Int(offsets[piece.lowerBound])..<Int(offsets[piece.upperBound])]
                let hash = WordCache.hash(word)
                if cache.append(word, hash: hash, into: &out) { continue }
                ids.removeAll(keepingCapacity: true)
                encodeWord(word, bpe: bpe, byteLevel: byteLevel, byteFallback: byteFallback, ignoreMerges: ignoreMerges, into: &ids)
                cache.insert(word, hash: hash, ids: ids)
                out += ids
            }
        }
    }

    private func encodeWord(_ word: ArraySlice<UInt8>, bpe: BytePairModel, byteLevel: Bool, byteFallback: Bool, ignoreMerges: Bool, into out: inout [Int]) {
        if byteLevel {
            if ignoreMerges, let id = tokenIDs[ByteLevelAlphabet.encode(word)] {
                out.append(Int(id))
                return
            }
            var symbols: [Int32] = []
            symbols.reserveCapacity(word.count)
            for b in word {
                let s = byteSymbols[Int(b)]
                if s >= 0 { symbols.append(s) } else if let u = unknownTokenID { symbols.append(Int32(u)) }
            }
            bpe.encode(symbols, into: &out)
        } else {
            let text = String(decoding: word, as: UTF8.self)
            if ignoreMerges, let id = tokenIDs[text] {
                out.append(Int(id))
                return
            }
            var symbols: [Int32] = []
            for ch in text.unicodeScalars {
                if let id = tokenIDs[String(ch)] {
                    symbols.append(id)
                } else if byteFallback {
                    for b in String(ch).utf8 {
                        if let id = tokenIDs[ByteFallback.token(for: b)] { symbols.append(id) } else if let u = unknownTokenID { symbols.append(Int32(u)) }
                    }
                } else if let u = unknownTokenID {
                    symbols.append(Int32(u))
                }
            }
            bpe.encode(symbols, into: &out)
        }
    }

    // MARK: decoding

    /// The bytes token `id` stands for (empty for ids out of range).
    public func bytes(forToken id: Int) -> [UInt8] {
        id >= 0 && id < tokenBytes.count ? tokenBytes[id] : []
    }

    /// Text of `ids`. Invalid UTF-8 (a character cut between tokens) becomes U+FFFD, as HF's
    /// `from_utf8_lossy`. Ids out of range are skipped (as HF does); special tokens are left out
    /// when `skipSpecialTokens`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if skipSpecialTokens && specialTokenIDs.contains(id) { continue }
            bytes += self.bytes(forToken: id)
        }
        if case .sentencePiece(true) = decoding, bytes.first == 0x20 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Throws `tokenOutOfRange` for the first id outside the vocabulary.
    public func validate(_ ids: [Int]) throws {
        for id in ids where id < 0 || id >= vocabulary.count {
            throw TokenizerError.tokenOutOfRange(id: id, vocabularySize: vocabulary.count)
        }
    }

    /// A streaming decoder for generation (see `IncrementalDecoder`).
    public func incrementalDecoder(skipSpecialTokens: Bool = false) -> IncrementalDecoder {
        IncrementalDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}
