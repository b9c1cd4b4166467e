/// The pre-tokenizer regular expressions of the byte-level BPE families, exactly as
/// tokenizer.json spells them (HF `Split` patterns; GPT-2's is also `ByteLevel`'s built-in one),
/// and the tokenizer.json `pre_tokenizer` of each GGUF `tokenizer.ggml.pre`. Runtime's scanners
/// implement these patterns without a regex engine (`PreTokenizer`).
public enum ByteLevelPattern {
    /// GPT-2.
    public static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// Llama-3.
    public static let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2 / Qwen2.5 / Qwen3 (Llama-3's with single digits).
    public static let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// How a family splits text before BPE.
    public enum Family: Sendable, Equatable {
        /// GPT-2's regex (ByteLevel's own).
        case gpt2
        /// Llama-3's Split pattern.
        case llama3
        /// Qwen2's Split pattern.
        case qwen2
        /// Every digit alone, then GPT-2's regex (SmolLM, StarCoder).
        case digitsThenGPT2
    }

    /// The family of a GGUF `tokenizer.ggml.pre` and whether llama.cpp takes a pre-tokenized
    /// word that is a whole token as that token without applying merges (tokenizer.json
    /// `model.ignore_merges`), as llama.cpp's llama-vocab.cpp groups the names; nil for a name
    /// steertool does not split.
    public static func family(pre: String) -> (family: Family, ignoresMerges: Bool)? {
        switch pre {
        case "gpt-2", "phi-2", "mpt", "olmo", "jais": (.gpt2, false)
        case "llama3", "llama-v3", "llama-bpe": (.llama3, true)
        case "dbrx", "smaug-bpe": (.llama3, false)
        case "qwen2", "stablelm2", "deepseek-r1-qwen": (.qwen2, false)
        case "smollm", "starcoder", "refact", "codeshell", "exaone", "minerva": (.digitsThenGPT2, false)
        default: nil
        }
    }

    /// `family(pre:)`'s merge rule (false for unknown names).
    public static func ignoresMerges(pre: String?) -> Bool { pre.flatMap { family(pre: $0)?.ignoresMerges } ?? false }

    /// The `tokenizer.ggml.pre` naming a tokenizer.json `pre_tokenizer` (with its
    /// `model.ignore_merges`), the inverse of `preTokenizerJSON(pre:)`: ByteLevel with GPT-2's
    /// regex (or a Split on it) "gpt-2"; a Split on Llama-3's pattern then plain ByteLevel
    /// "llama-bpe" (with ignore_merges, as Llama-3's file has; "smaug-bpe" without); on Qwen2's
    /// "qwen2"; single Digits then ByteLevel "smollm". nil for anything else (llama.cpp's
    /// converter refuses a pre-tokenizer it does not recognise too).
    public static func pre(ofPreTokenizer v: JSONValue?, ignoresMerges: Bool) -> String? {
        enum Step: Equatable { case byteLevel(regex: Bool), split(String), digits }
        func steps(_ v: JSONValue) -> [Step]? {
            switch v["type"]?.stringValue {
            case "Sequence":
                var out: [Step] = []
                for p in v["pretokenizers"]?.arrayValue ?? [] {
                    guard let s = steps(p) else { return nil }
                    out += s
                }
                return out
            case "ByteLevel":
                guard v["add_prefix_space"]?.boolValue != true else { return nil }
                return [.byteLevel(regex: v["use_regex"]?.boolValue ?? true)]
            case "Split":
                guard let regex = v["pattern"]?["Regex"]?.stringValue, v["behavior"]?.stringValue == "Isolated",
                      v["invert"]?.boolValue != true else { return nil }
                return [.split(regex)]
            case "Digits":
                return v["individual_digits"]?.boolValue == true ? [.digits] : nil
            default:
                return nil
            }
        }
        guard let v, let found = steps(v) else { return nil }
        switch found {
        case [.byteLevel(regex: true)], [.split(gpt2), .byteLevel(regex: false)]: return "gpt-2"
        case [.split(llama3), .byteLevel(regex: false)]: return ignoresMerges ? "llama-bpe" : "smaug-bpe"
        case [.split(qwen2), .byteLevel(regex: false)]: return "qwen2"
        case [.digits, .byteLevel(regex: true)]: return "smollm"
        default: return nil
        }
    }

    /// The tokenizer.json `pre_tokenizer` that splits as llama.cpp does for `pre` (a GGUF's
    /// `tokenizer.ggml.pre`): a Split on the family's pattern then ByteLevel without its own
    /// regex (Llama-3 "llama-bpe", Qwen "qwen2"), Digits then ByteLevel (SmolLM / StarCoder), or
    /// ByteLevel with GPT-2's regex (GPT-2, and names `family(pre:)` does not know).
    public static func preTokenizerJSON(pre: String?) -> JSONValue {
        func byteLevel(regex: Bool) -> JSONValue {
            .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
                     ("use_regex", .bool(regex))])
        }
        func split(_ pattern: String) -> JSONValue {
            .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(pattern))])),
                         ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                byteLevel(regex: false),
            ]))])
        }
        switch pre.flatMap({ family(pre: $0)?.family }) ?? .gpt2 {
        case .llama3: return split(llama3)
        case .qwen2: return split(qwen2)
        case .digitsThenGPT2:
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Digits")), ("individual_digits", .bool(true))]), byteLevel(regex: true),
            ]))])
        case .gpt2: return byteLevel(regex: true)
        }
    }
}
