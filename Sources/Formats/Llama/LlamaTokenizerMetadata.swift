import Foundation

/// Hugging Face `tokenizer.json` (byte-level BPE) ⇄ GGUF `tokenizer.ggml.*`, following
/// convert_hf_to_gguf.py's `_set_vocab_gpt2` and gguf-py's `SpecialVocab` for the cases steertool
/// meets: the vocabulary padded to `vocab_size` with `[PADi]` (UNUSED), added tokens typed CONTROL
/// (special) or USER_DEFINED, merges as "a b" strings, special token ids from config.json, and
/// `add_bos_token` / `add_eos_token` / `add_sep_token` read from a simple `TemplateProcessing`
/// post-processor or tokenizer_config.json.
public enum LlamaTokenizerMetadata {
    /// llama.cpp token types (`gguf.TokenType`).
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The `tokenizer.ggml.*` keys for a byte-level BPE tokenizer.json.
    /// - Parameters:
    ///   - vocabSize: config.json `vocab_size` (the token list is padded to it).
    ///   - configJSON: config.json bytes (special token ids).
    ///   - tokenizerConfigJSON: tokenizer_config.json bytes, if the folder has one.
    /// `tokenizer.ggml.pre` names the file's own pre-tokenizer (`ByteLevelPattern.pre(ofPreTokenizer:ignoresMerges:)`).
    /// - Throws: `FormatsError.invalidJSON` if the tokenizer is not a BPE tokenizer.json, or its
    ///   pre-tokenizer is not one of the byte-level families llama.cpp names.
    public static func ggufMetadata(tokenizerJSON: Data, vocabSize: Int, configJSON: Data?, tokenizerConfigJSON: Data? = nil,
                                    source: String = "tokenizer.json") throws -> OrderedDictionary<String, GGUFValue> {
        func parse(_ d: Data, _ name: String) throws -> JSONValue {
            do { return try JSONParser.parse([UInt8](d)) } catch { throw FormatsError.invalidJSON(file: name, reason: "\(error)") }
        }
        let tok = try parse(tokenizerJSON, source)
        guard let model = tok["model"], model["type"]?.stringValue == "BPE", let vocab = model["vocab"]?.objectValue else {
            throw FormatsError.invalidJSON(file: source, reason: "not a BPE tokenizer.json (model.type must be \"BPE\" with a vocab)")
        }
        guard let preTokenizer = ByteLevelPattern.pre(ofPreTokenizer: tok["pre_tokenizer"], ignoresMerges: model["ignore_merges"]?.boolValue ?? false) else {
            throw FormatsError.invalidJSON(file: source, reason: "its pre_tokenizer (\(tok["pre_tokenizer"]?.description ?? "none")) is not a byte-level "
                                           + "family llama.cpp names (GPT-2, Llama-3, Qwen2, SmolLM), so no tokenizer.ggml.pre can be written for it")
        }
        var reverse: [Int: String] = [:]
        for (t, v) in vocab { if let i = v.intValue { reverse[i] = t } }
        var added: [Int: Bool] = [:]
        var addedByContent: [String: Int] = [:]
        for a in tok["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, let content = a["content"]?.stringValue else { continue }
            reverse[id] = content
            added[id] = a["special"]?.boolValue ?? false
            if addedByContent[content] == nil { addedByContent[content] = id }
        }
        var tokens: [String] = []
        var types: [Int32] = []
        tokens.reserveCapacity(vocabSize)
        for i in 0..<vocabSize {
            if let t = reverse[i] {
                tokens.append(t)
                if let special = added[i] { types.append((special ? TokenType.control : .userDefined).rawValue) }
                else { types.append(TokenType.normal.rawValue) }
            } else {
                tokens.append("[PAD\(i)]")
                types.append(TokenType.unused.rawValue)
            }
        }
        var m = OrderedDictionary<String, GGUFValue>()
        m["tokenizer.ggml.model"] = .string("gpt2")
        m["tokenizer.ggml.pre"] = .string(preTokenizer)
        m["tokenizer.ggml.tokens"] = .strings(tokens)
        m["tokenizer.ggml.token_type"] = .int32s(types)

        var merges: [String] = []
        for item in model["merges"]?.arrayValue ?? [] {
            if let s = item.stringValue { merges.append(s) }
            else if let pair = item.arrayValue?.compactMap(\.stringValue), pair.count == 2 {
                // gguf-py encodes a literal space inside a merge part as U+0120.
                merges.append(pair.map { String($0.map { $0 == " " ? "\u{120}" : $0 }) }.joined(separator: " "))
            }
        }
        if !merges.isEmpty { m["tokenizer.ggml.merges"] = .strings(merges) }

        // SpecialVocab: tokenizer_config.json first, then config.json, first value wins.
        let tokenizerConfig = try tokenizerConfigJSON.map { try parse($0, "tokenizer_config.json") }
        var specialIds: [(String, Int)] = []
        func setSpecial(_ type: String, _ id: Int?) {
            guard let id, id >= 0, id < vocabSize, !specialIds.contains(where: { $0.0 == type }) else { return }
            specialIds.append((type, id))
        }
        var addSpecial: [(String, Bool)] = []
        func setAdd(_ type: String, _ v: Bool) {
            if let i = addSpecial.firstIndex(where: { $0.0 == type }) { addSpecial[i].1 = v } else { addSpecial.append((type, v)) }
        }
        let types7 = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        func configToken(_ k: String) -> String? {
            guard let e = tokenizerConfig?[k] else { return nil }
            return e.stringValue ?? e["content"]?.stringValue
        }
        var specialBos = configToken("bos_token"), specialEos = configToken("eos_token")
        let specialSep = configToken("sep_token"), specialCls = configToken("cls_token")
        if let pp = tok["post_processor"], !pp.isNull {
            for processor in pp["processors"]?.arrayValue ?? [pp] where processor["type"]?.stringValue == "TemplateProcessing" {
                let single = processor["single"]?.arrayValue ?? []
                let pair = processor["pair"]?.arrayValue ?? []
                var first: String?, last: String?
                if single.count > 1 {
                    first = single.first?["SpecialToken"]?["id"]?.stringValue
                    if let f = first {
                        if tokenizerConfig == nil { specialBos = f }
                        setAdd("bos", f == specialBos || f == specialCls)
                    }
                    last = single.last?["SpecialToken"]?["id"]?.stringValue
                    if let l = last {
                        if tokenizerConfig == nil { specialEos = l }
                        setAdd("eos", l == specialEos)
                    }
                }
                if !pair.isEmpty {
                    let start = first != nil && pair.first?["SpecialToken"]?["id"]?.stringValue == first ? 1 : 0
                    let stop = last != nil && pair.last?["SpecialToken"]?["id"]?.stringValue == last ? pair.count - 1 : pair.count
                    if start < stop {
                        let sub = Array(pair[start..<stop])
                        if sub.first?["Sequence"]?["id"]?.stringValue == "A", sub.last?["Sequence"]?["id"]?.stringValue == "B", sub.count > 2 {
                            let mid = Array(sub[1..<(sub.count - 1)])
                            var addSep = false
                            let candidates = [specialSep, specialEos].compactMap { $0 }
                            if let e = mid.first?["SpecialToken"]?["id"]?.stringValue, candidates.contains(e), last == nil { addSep = true }
                            if mid.count == 2, let e = mid[1]["SpecialToken"]?["id"]?.stringValue, candidates.contains(e) { addSep = true }
                            setAdd("sep", addSep)
                        }
                    }
                }
            }
        }
        if let tc = tokenizerConfig {
            for t in types7 {
                if let b = tc["add_\(t)_token"]?.boolValue { setAdd(t, b) }
                if let content = configToken("\(t)_token") { setSpecial(t, addedByContent[content]) }
            }
        }
        if let configJSON {
            let config = try parse(configJSON, "config.json")
            for t in types7 { setSpecial(t, config["\(t)_token_id"]?.intValue) }
        }
        let keyNames = ["bos": "bos", "eos": "eos", "unk": "unknown", "sep": "seperator", "pad": "padding", "cls": "cls", "mask": "mask"]
        for (t, id) in specialIds { m["tokenizer.ggml.\(keyNames[t] ?? t)_token_id"] = .uint32(UInt32(id)) }
        for (t, v) in addSpecial { m["tokenizer.ggml.add_\(t)_token"] = .bool(v) }
        if let chat = tokenizerConfig?["chat_template"]?.stringValue { m["tokenizer.chat_template"] = .string(chat) }
        return m
    }

    /// A byte-level BPE tokenizer.json rebuilt from `tokenizer.ggml.*` (model "gpt2"): the
    /// vocabulary without UNUSED padding entries, CONTROL / USER_DEFINED tokens as added tokens,
    /// merges split at their space, the pre-tokenizer of `tokenizer.ggml.pre`
    /// (`ByteLevelPattern.preTokenizerJSON`) and its `ignore_merges`, and a TemplateProcessing post-processor that
    /// prepends BOS when `tokenizer.ggml.add_bos_token` is true.
    /// - Throws: `FormatsError.invalidModel` when the metadata holds no gpt2-style vocabulary.
    public static func tokenizerJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, source: String = "GGUF") throws -> Data {
        guard metadata["tokenizer.ggml.model"]?.stringValue == "gpt2",
              let tokens = metadata["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw FormatsError.invalidModel(file: source, reason: "no byte-level BPE vocabulary (tokenizer.ggml.model \"gpt2\" with tokens)")
        }
        let types = metadata["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        var addedTokens: [JSONValue] = []
        for (i, t) in tokens.enumerated() {
            let type = i < types.count ? types[i] : Int(TokenType.normal.rawValue)
            if type == Int(TokenType.unused.rawValue) { continue }
            if seen.insert(t).inserted { vocab.append((t, .int(i))) }
            if type == Int(TokenType.control.rawValue) || type == Int(TokenType.userDefined.rawValue) {
                addedTokens.append(.object([
                    ("id", .int(i)), ("content", .string(t)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                    ("rstrip", .bool(false)), ("normalized", .bool(type != Int(TokenType.control.rawValue))),
                    ("special", .bool(type == Int(TokenType.control.rawValue))),
                ]))
            }
        }
        let merges: [JSONValue] = (metadata["tokenizer.ggml.merges"]?.arrayValue ?? []).compactMap { v in
            guard let s = v.stringValue, let sp = s.firstIndex(of: " ") else { return nil }
            return .array([.string(String(s[..<sp])), .string(String(s[s.index(after: sp)...]))])
        }
        let byteLevel: [(String, JSONValue)] = [("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                                ("trim_offsets", .bool(true)), ("use_regex", .bool(true))]
        var post: JSONValue = .object(byteLevel)
        if metadata["tokenizer.ggml.add_bos_token"]?.boolValue == true, let bos = metadata["tokenizer.ggml.bos_token_id"]?.intValue, bos < tokens.count {
            let special = JSONValue.object([("SpecialToken", .object([("id", .string(tokens[bos])), ("type_id", .int(0))]))])
            func seq(_ s: String, _ type: Int) -> JSONValue { .object([("Sequence", .object([("id", .string(s)), ("type_id", .int(type))]))]) }
            post = .object([
                ("type", .string("TemplateProcessing")),
                ("single", .array([special, seq("A", 0)])),
                ("pair", .array([special, seq("A", 0), special, seq("B", 1)])),
                ("special_tokens", .object([(tokens[bos], .object([("id", .string(tokens[bos])), ("ids", .array([.int(bos)])), ("tokens", .array([.string(tokens[bos])]))]))])),
            ])
        }
        let doc = JSONValue.object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(addedTokens)), ("normalizer", .null),
            ("pre_tokenizer", ByteLevelPattern.preTokenizerJSON(pre: metadata["tokenizer.ggml.pre"]?.stringValue)),
            ("post_processor", post), ("decoder", .object(byteLevel)),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(ByteLevelPattern.ignoresMerges(pre: metadata["tokenizer.ggml.pre"]?.stringValue))),
                ("vocab", .object(vocab)), ("merges", .array(merges)),
            ])),
        ])
        return Data((doc.serialized(indent: 2) + "\n").utf8)
    }
}
