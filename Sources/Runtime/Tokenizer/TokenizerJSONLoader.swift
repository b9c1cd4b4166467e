import Foundation
import Formats

/// Reads HF `tokenizer.json` (tokenizers' serialization: `model.type` BPE, `vocab`, `merges` as
/// "a b" strings or [a, b] pairs, `added_tokens`, `normalizer`, `pre_tokenizer`,
/// `post_processor`, `decoder`) plus, when given, `tokenizer_config.json` (`bos_token`,
/// `eos_token`, `add_bos_token`, `add_eos_token`, `chat_template`).
public enum TokenizerJSONLoader {
    /// Loads `tokenizerJSON` (a path), with `configJSON` (a path) when present.
    public static func load(tokenizerJSON path: String, configJSON configPath: String?) throws -> Tokenizer {
        let doc = try readJSON(path)
        let config = try configPath.map { try readJSON($0) }
        return try build(doc, config: config, source: path)
    }

    static func readJSON(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or not readable")
        }
        do {
            return try JSONParser.parse([UInt8](data))
        } catch {
            throw TokenizerError.invalidFormat(source: path, reason: "JSON: \(error)")
        }
    }

    /// Builds a tokenizer from parsed documents; `source` names the file in errors.
    public static func build(_ doc: JSONValue, config: JSONValue?, source: String) throws -> Tokenizer {
        func fail(_ reason: String) -> TokenizerError { .invalidFormat(source: source, reason: reason) }
        guard let model = doc["model"], model.objectValue != nil else { throw fail("no 'model' object") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupportedModel(type, source: source) }
        if let prefix = model["continuing_subword_prefix"]?.stringValue, !prefix.isEmpty {
            throw TokenizerError.unsupportedComponent(kind: "BPE option", name: "continuing_subword_prefix", source: source)
        }
        if let suffix = model["end_of_word_suffix"]?.stringValue, !suffix.isEmpty {
            throw TokenizerError.unsupportedComponent(kind: "BPE option", name: "end_of_word_suffix", source: source)
        }

        // Vocabulary: model.vocab plus added tokens (which may extend it).
        guard let vocabPairs = model["vocab"]?.objectValue else { throw fail("model.vocab is not an object") }
        var byID: [Int: String] = [:]
        byID.reserveCapacity(vocabPairs.count)
        var maxID = -1
        func place(_ token: String, _ id: Int, _ what: String) throws {
            guard id >= 0 && id < 16_777_216 else { throw fail("\(what) '\(token)' has id \(id) outside 0..<2^24") }
            if let old = byID[id], old != token { throw fail("id \(id) is both '\(old)' and '\(token)'") }
            byID[id] = token
            maxID = max(maxID, id)
        }
        for (token, v) in vocabPairs {
            guard let id = v.intValue else { throw fail("model.vocab['\(token)'] is not an integer") }
            try place(token, id, "token")
        }
        var added: [AddedToken] = []
        for (i, t) in (doc["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, let content = t["content"]?.stringValue, !content.isEmpty else {
                throw fail("added_tokens[\(i)] needs an integer id and a non-empty content")
            }
            try place(content, id, "added token")
            added.append(AddedToken(id: id, content: content, special: t["special"]?.boolValue ?? false,
                                    lstrip: t["lstrip"]?.boolValue ?? false, rstrip: t["rstrip"]?.boolValue ?? false))
        }
        guard maxID >= 0 else { throw fail("empty vocabulary") }
        // Holes get placeholder entries; bound them so a claimed id cannot size the allocation.
        guard maxID + 1 - byID.count <= 65_536 else {
            throw fail("ids reach \(maxID) but only \(byID.count) tokens are listed (more than 65536 unused ids)")
        }
        var vocabulary = [String](repeating: "", count: maxID + 1)
        for id in 0...maxID {
            // Unused ids get a text no input can produce.
            vocabulary[id] = byID[id] ?? "\u{0}<unused \(id)>"
        }

        // Merges: "a b" strings (older files) or [a, b] pairs (tokenizers ≥ 0.20).
        var merges: [(String, String)] = []
        let mergeValues = model["merges"]?.arrayValue ?? []
        merges.reserveCapacity(mergeValues.count)
        for (i, m) in mergeValues.enumerated() {
            if let s = m.stringValue {
                guard let space = s.firstIndex(of: " ") else { throw fail("model.merges[\(i)] '\(s)' has no space") }
                merges.append((String(s[..<space]), String(s[s.index(after: space)...])))
            } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                merges.append((a, b))
            } else {
                throw fail("model.merges[\(i)] is neither \"a b\" nor [a, b]")
            }
        }

        let normalization = try parseNormalizer(doc["normalizer"], source: source)
        var byteLevel = false
        let pre = try parsePreTokenizer(doc["pre_tokenizer"], byteLevel: &byteLevel, source: source)
        let decoding = try parseDecoder(doc["decoder"], byteLevelDefault: byteLevel, source: source)
        if case .byteLevel = decoding { byteLevel = true }

        func idOf(_ token: String?) -> Int? {
            guard let token else { return nil }
            return vocabulary.firstIndex(of: token)
        }
        let unk = idOf(model["unk_token"]?.stringValue)

        // Post-processor and tokenizer_config.json decide BOS/EOS.
        var prefix: [Int] = [], suffix: [Int] = []
        let hasTemplate = try parsePostProcessor(doc["post_processor"], prefix: &prefix, suffix: &suffix, source: source)
        func tokenText(_ v: JSONValue?) -> String? { v?.stringValue ?? v?["content"]?.stringValue }
        let bos = idOf(tokenText(config?["bos_token"]))
        let eos = idOf(tokenText(config?["eos_token"]))
        if !hasTemplate {
            if config?["add_bos_token"]?.boolValue == true, let bos { prefix = [bos] }
            if config?["add_eos_token"]?.boolValue == true, let eos { suffix = [eos] }
        }
        var template: String?
        if let t = config?["chat_template"] {
            if let s = t.stringValue {
                template = s
            } else if let list = t.arrayValue {
                template = list.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
            }
        }

        return try Tokenizer(
            vocabulary: vocabulary,
            model: .bytePair(byteLevel: byteLevel, byteFallback: model["byte_fallback"]?.boolValue ?? false,
                             ignoreMerges: model["ignore_merges"]?.boolValue ?? false),
            merges: merges, normalization: normalization, preTokenizer: pre, decoding: decoding,
            addedTokens: added, bosTokenID: bos ?? prefix.first, eosTokenID: eos, unknownTokenID: unk,
            prefixTokenIDs: prefix, suffixTokenIDs: suffix, chatTemplate: template, source: source)
    }

    static func parseNormalizer(_ v: JSONValue?, source: String) throws -> [Tokenizer.Normalization] {
        guard let v, !v.isNull else { return [] }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "Sequence":
            return try (v["normalizers"]?.arrayValue ?? []).flatMap { try parseNormalizer($0, source: source) }
        case "NFC":
            return [.nfc]
        case "Prepend":
            guard let p = v["prepend"]?.stringValue else { break }
            return [.prepend(p)]
        case "Replace":
            guard let pattern = v["pattern"]?["String"]?.stringValue, let content = v["content"]?.stringValue else { break }
            return [.replace(pattern, content)]
        default:
            break
        }
        throw TokenizerError.unsupportedComponent(kind: "normalizer", name: type, source: source)
    }

    static func parsePreTokenizer(_ v: JSONValue?, byteLevel: inout Bool, source: String) throws -> PreTokenizer {
        guard let v, !v.isNull else { return .none }
        var result = PreTokenizer(steps: [])
        try appendPreTokenizer(v, to: &result, byteLevel: &byteLevel, source: source)
        return result
    }

    private static func appendPreTokenizer(_ v: JSONValue, to result: inout PreTokenizer, byteLevel: inout Bool, source: String) throws {
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "Sequence":
            for p in v["pretokenizers"]?.arrayValue ?? [] {
                try appendPreTokenizer(p, to: &result, byteLevel: &byteLevel, source: source)
            }
        case "ByteLevel":
            byteLevel = true
            if v["add_prefix_space"]?.boolValue == true { result.addPrefixSpace = true }
            if v["use_regex"]?.boolValue ?? true { result.steps.append(.gpt2) }
        case "Digits":
            result.steps.append(.digits(individual: v["individual_digits"]?.boolValue ?? false))
        case "Split":
            guard let regex = v["pattern"]?["Regex"]?.stringValue ?? v["pattern"]?["String"]?.stringValue else {
                throw TokenizerError.unsupportedPreTokenizer("Split without a pattern", source: source)
            }
            let behavior = v["behavior"]?.stringValue ?? "?"
            if let literal = v["pattern"]?["String"]?.stringValue, ![ByteLevelPattern.gpt2, ByteLevelPattern.llama3, ByteLevelPattern.qwen2].contains(literal) {
                guard let delimiter = PreTokenizer.LiteralDelimiter(rawValue: behavior), v["invert"]?.boolValue != true else {
                    throw TokenizerError.unsupportedPreTokenizer("Split(\(behavior)\(v["invert"]?.boolValue == true ? ", invert" : "")) on \(literal.debugDescription)", source: source)
                }
                result.steps.append(.literal(Array(literal.unicodeScalars), delimiter))
                return
            }
            guard behavior == "Isolated", v["invert"]?.boolValue != true else {
                throw TokenizerError.unsupportedPreTokenizer("Split(\(behavior), invert) \(regex)", source: source)
            }
            switch regex {
            case ByteLevelPattern.gpt2: result.steps.append(.gpt2)
            case ByteLevelPattern.llama3: result.steps.append(.llama3(maxDigits: 3))
            case ByteLevelPattern.qwen2: result.steps.append(.llama3(maxDigits: 1))
            default: throw TokenizerError.unsupportedPreTokenizer("Split \(regex)", source: source)
            }
        default:
            throw TokenizerError.unsupportedPreTokenizer(type, source: source)
        }
    }

    static func parseDecoder(_ v: JSONValue?, byteLevelDefault: Bool, source: String) throws -> Tokenizer.Decoding {
        guard let v, !v.isNull else { return byteLevelDefault ? .byteLevel : .sentencePiece(stripLeadingSpace: false) }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            return .byteLevel
        case "Sequence":
            // The Llama-2 family: Replace(▁ → " "), ByteFallback, Fuse, Strip(" ", 1, 0).
            var replacesMeta = false, strip = false
            for d in v["decoders"]?.arrayValue ?? [] {
                switch d["type"]?.stringValue ?? "?" {
                case "ByteLevel": return .byteLevel
                case "Replace":
                    guard d["pattern"]?["String"]?.stringValue == "\u{2581}", d["content"]?.stringValue == " " else {
                        throw TokenizerError.unsupportedComponent(kind: "decoder", name: "Replace \(d)", source: source)
                    }
                    replacesMeta = true
                case "ByteFallback", "Fuse": break
                case "Strip":
                    if d["content"]?.stringValue == " ", (d["start"]?.intValue ?? 0) >= 1 { strip = true }
                default:
                    throw TokenizerError.unsupportedComponent(kind: "decoder", name: d["type"]?.stringValue ?? "?", source: source)
                }
            }
            guard replacesMeta else { throw TokenizerError.unsupportedComponent(kind: "decoder", name: "Sequence without Replace(▁)", source: source) }
            return .sentencePiece(stripLeadingSpace: strip)
        default:
            throw TokenizerError.unsupportedComponent(kind: "decoder", name: type, source: source)
        }
    }

    /// Reads a post-processor; returns whether it decides the special tokens (TemplateProcessing).
    static func parsePostProcessor(_ v: JSONValue?, prefix: inout [Int], suffix: inout [Int], source: String) throws -> Bool {
        guard let v, !v.isNull else { return false }
        let type = v["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            return false
        case "Sequence":
            var decided = false
            for p in v["processors"]?.arrayValue ?? [] {
                if try parsePostProcessor(p, prefix: &prefix, suffix: &suffix, source: source) { decided = true }
            }
            return decided
        case "TemplateProcessing":
            guard let single = v["single"]?.arrayValue else {
                throw TokenizerError.invalidFormat(source: source, reason: "TemplateProcessing without 'single'")
            }
            var seenSequence = false
            prefix = []
            suffix = []
            for item in single {
                if item["Sequence"] != nil {
                    seenSequence = true
                } else if let name = item["SpecialToken"]?["id"]?.stringValue {
                    guard let ids = v["special_tokens"]?[name]?["ids"]?.arrayValue?.compactMap(\.intValue), !ids.isEmpty else {
                        throw TokenizerError.invalidFormat(source: source, reason: "TemplateProcessing special token '\(name)' has no ids")
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                }
            }
            return true
        default:
            throw TokenizerError.unsupportedComponent(kind: "post_processor", name: type, source: source)
        }
    }
}
