import Foundation
import Formats

/// The `tokenizer.ggml.*` metadata of a GGUF file, as plain values (the loader's input; see
/// `init(metadata:source:)` for reading it from a `GGUFFile`).
public struct GGUFTokenizerMetadata: Sendable, Equatable {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece-BPE).
    public var model: String
    /// `tokenizer.ggml.pre`: the pre-tokenizer name (BPE only).
    public var pre: String?
    /// `tokenizer.ggml.tokens`: token text by id.
    public var tokens: [String]
    /// `tokenizer.ggml.scores`: one per token (SentencePiece).
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges`: "a b" in rank order (BPE).
    public var merges: [String]?
    /// `tokenizer.ggml.bos_token_id`.
    public var bosTokenID: Int?
    /// `tokenizer.ggml.eos_token_id`.
    public var eosTokenID: Int?
    /// `tokenizer.ggml.unknown_token_id`.
    public var unknownTokenID: Int?
    /// `tokenizer.ggml.add_bos_token` (nil: llama.cpp's default for the model).
    public var addBOS: Bool?
    /// `tokenizer.ggml.add_eos_token`.
    public var addEOS: Bool?
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece dummy prefix; default true for "llama").
    public var addSpacePrefix: Bool?
    /// `tokenizer.chat_template`.
    public var chatTemplate: String?

    /// Plain values.
    public init(model: String, pre: String? = nil, tokens: [String], scores: [Float]? = nil, tokenTypes: [Int32]? = nil,
                merges: [String]? = nil, bosTokenID: Int? = nil, eosTokenID: Int? = nil, unknownTokenID: Int? = nil,
                addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil, chatTemplate: String? = nil) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = unknownTokenID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.chatTemplate = chatTemplate
    }

    /// Reads the tokenizer keys of an opened GGUF file; errors name `file.path` and the key.
    public init(gguf file: GGUFFile) throws {
        try self.init(metadata: { file.metadata[$0] }, source: file.path)
    }

    /// Reads the tokenizer keys of a parsed GGUF header; errors name `source` and the key.
    public init(header: GGUFFile.Header, source: String) throws {
        try self.init(metadata: { header.metadata[$0] }, source: source)
    }

    /// Reads the tokenizer keys through `value` (metadata key → value); errors name `source`.
    public init(metadata value: (String) -> GGUFValue?, source: String) throws {
        func wrong(_ key: String, _ what: String) -> TokenizerError {
            .invalidFormat(source: source, reason: "\(key) is not \(what)")
        }
        /// The value at `key` read by `read`, nil when absent; an error naming `what` when of another type.
        func typed<T>(_ key: String, _ what: String, _ read: (GGUFValue) -> T?) throws -> T? {
            guard let v = value(key) else { return nil }
            guard let t = read(v) else { throw wrong(key, what) }
            return t
        }
        func string(_ key: String) throws -> String? { try typed(key, "a string") { $0.stringValue } }
        func int(_ key: String) throws -> Int? { try typed(key, "an integer") { $0.intValue } }
        func bool(_ key: String) throws -> Bool? { try typed(key, "a bool") { $0.boolValue } }
        /// An array whose every element `element` reads; an error naming `what` otherwise.
        func array<T>(_ key: String, _ what: String, _ element: (GGUFValue) -> T?) throws -> [T]? {
            try typed(key, what) { v in
                guard let a = v.arrayValue else { return nil }
                var out: [T] = []
                out.reserveCapacity(a.count)
                for e in a {
                    guard let t = element(e) else { return nil }
                    out.append(t)
                }
                return out
            }
        }
        func strings(_ key: String) throws -> [String]? { try array(key, "an array of strings") { $0.stringValue } }
        guard let model = try string("tokenizer.ggml.model") else {
            throw TokenizerError.invalidFormat(source: source, reason: "no tokenizer.ggml.model (not a GGUF with a vocabulary)")
        }
        guard let tokens = try strings("tokenizer.ggml.tokens") else {
            throw TokenizerError.invalidFormat(source: source, reason: "no tokenizer.ggml.tokens")
        }
        let scores = try array("tokenizer.ggml.scores", "an array of numbers") { $0.doubleValue.map { Float($0) } }
        let types = try array("tokenizer.ggml.token_type", "an array of integers") { $0.intValue.flatMap { Int32(exactly: $0) } }
        self.init(model: model, pre: try string("tokenizer.ggml.pre"), tokens: tokens, scores: scores, tokenTypes: types,
                  merges: try strings("tokenizer.ggml.merges"), bosTokenID: try int("tokenizer.ggml.bos_token_id"),
                  eosTokenID: try int("tokenizer.ggml.eos_token_id"), unknownTokenID: try int("tokenizer.ggml.unknown_token_id"),
                  addBOS: try bool("tokenizer.ggml.add_bos_token"), addEOS: try bool("tokenizer.ggml.add_eos_token"),
                  addSpacePrefix: try bool("tokenizer.ggml.add_space_prefix"), chatTemplate: try string("tokenizer.chat_template"))
    }
}

extension Tokenizer {
    /// GGUF `tokenizer.ggml.pre` names → pre-tokenizer (and whether llama.cpp ignores merges for
    /// words that are whole tokens), as llama.cpp's llama-vocab.cpp groups them
    /// (`ByteLevelPattern.family(pre:)`).
    static func ggufPreTokenizer(_ name: String) -> (PreTokenizer, ignoreMerges: Bool)? {
        guard let (family, ignores) = ByteLevelPattern.family(pre: name) else { return nil }
        let pre: PreTokenizer = switch family {
        case .gpt2: .gpt2
        case .llama3: .llama3
        case .qwen2: .qwen2
        case .digitsThenGPT2: .smolLM
        }
        return (pre, ignores)
    }

    /// A tokenizer from GGUF `tokenizer.ggml.*` metadata: "gpt2" byte-level BPE (pre-tokenizer
    /// from `tokenizer.ggml.pre`) or "llama" SentencePiece-BPE (scores, `<0xAB>` byte tokens, `▁`
    /// for spaces, dummy prefix). Control (3) and user-defined (4) tokens are matched in the text
    /// as added tokens; control and unknown tokens are special. BOS is added by default for
    /// "llama" and the Llama-3 pre-tokenizer, unless `add_bos_token` says otherwise.
    public init(gguf meta: GGUFTokenizerMetadata, source: String) throws {
        let n = meta.tokens.count
        guard n > 0 else { throw TokenizerError.invalidFormat(source: source, reason: "tokenizer.ggml.tokens is empty") }
        if let t = meta.tokenTypes, t.count != n {
            throw TokenizerError.invalidFormat(source: source, reason: "tokenizer.ggml.token_type has \(t.count) entries for \(n) tokens")
        }
        var added: [AddedToken] = []
        for (id, type) in (meta.tokenTypes ?? []).enumerated() where type == 2 || type == 3 || type == 4 {
            let text = meta.tokens[id]
            guard !text.isEmpty else { continue }
            added.append(AddedToken(id: id, content: text, special: type != 4))
        }
        func checked(_ id: Int?, _ key: String) throws -> Int? {
            guard let id else { return nil }
            guard id >= 0 && id < n else {
                throw TokenizerError.invalidFormat(source: source, reason: "\(key) = \(id) is outside the \(n) tokens")
            }
            return id
        }
        let bos = try checked(meta.bosTokenID, "tokenizer.ggml.bos_token_id")
        let eos = try checked(meta.eosTokenID, "tokenizer.ggml.eos_token_id")
        let unk = try checked(meta.unknownTokenID, "tokenizer.ggml.unknown_token_id")
        switch meta.model {
        case "gpt2":
            let preName = meta.pre ?? "default"
            guard let (pre, ignoreMerges) = Self.ggufPreTokenizer(preName) else {
                throw TokenizerError.unsupportedPreTokenizer(preName, source: source)
            }
            var merges: [(String, String)] = []
            for (i, m) in (meta.merges ?? []).enumerated() {
                guard let space = m.firstIndex(of: " ") else {
                    throw TokenizerError.invalidFormat(source: source, reason: "tokenizer.ggml.merges[\(i)] '\(m)' has no space")
                }
                merges.append((String(m[..<space]), String(m[m.index(after: space)...])))
            }
            let addBOS = meta.addBOS ?? ignoreMerges
            try self.init(vocabulary: meta.tokens, model: .bytePair(byteLevel: true, byteFallback: false, ignoreMerges: ignoreMerges),
                          merges: merges, normalization: [], preTokenizer: pre, decoding: .byteLevel, addedTokens: added,
                          bosTokenID: bos, eosTokenID: eos, unknownTokenID: unk,
                          prefixTokenIDs: addBOS ? bos.map { [$0] } ?? [] : [],
                          suffixTokenIDs: (meta.addEOS ?? false) ? eos.map { [$0] } ?? [] : [],
                          chatTemplate: meta.chatTemplate, source: source)
        case "llama":
            guard let scores = meta.scores else {
                throw TokenizerError.invalidFormat(source: source, reason: "SentencePiece vocabulary without tokenizer.ggml.scores")
            }
            let prefix = meta.addSpacePrefix ?? true
            let addBOS = meta.addBOS ?? true
            try self.init(vocabulary: meta.tokens, model: .sentencePiece(scores: scores, addDummyPrefix: prefix),
                          merges: [], normalization: [], preTokenizer: .none, decoding: .sentencePiece(stripLeadingSpace: prefix),
                          addedTokens: added,
                          bosTokenID: bos, eosTokenID: eos, unknownTokenID: unk,
                          prefixTokenIDs: addBOS ? bos.map { [$0] } ?? [] : [],
                          suffixTokenIDs: (meta.addEOS ?? false) ? eos.map { [$0] } ?? [] : [],
                          chatTemplate: meta.chatTemplate, source: source)
        default:
            throw TokenizerError.unsupportedModel(meta.model, source: source)
        }
    }

    /// The tokenizer of an opened GGUF file.
    public init(gguf file: GGUFFile) throws {
        try self.init(gguf: GGUFTokenizerMetadata(gguf: file), source: file.path)
    }

    /// The tokenizer of the GGUF file at `path` (vocab-only files included).
    public init(ggufPath path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }
}
