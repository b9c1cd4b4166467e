/// Errors of tokenizer loading, encoding and chat rendering, each naming the source and what is
/// wrong.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A tokenizer file or folder could not be read.
    case unreadable(path: String, reason: String)
    /// tokenizer.json / tokenizer_config.json / GGUF metadata has a missing or malformed field.
    case invalidFormat(source: String, reason: String)
    /// The tokenizer model type (tokenizer.json `model.type`, GGUF `tokenizer.ggml.model`) is not
    /// one steertool implements.
    case unsupportedModel(String, source: String)
    /// A pre-tokenizer (tokenizer.json `pre_tokenizer`, GGUF `tokenizer.ggml.pre`) is not one of
    /// the hand-written scanners.
    case unsupportedPreTokenizer(String, source: String)
    /// A normalizer or decoder that steertool does not implement.
    case unsupportedComponent(kind: String, name: String, source: String)
    /// A token id outside `0..<vocabularySize`.
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    /// A character sequence that the vocabulary cannot represent (no byte fallback, no unknown
    /// token).
    case unrepresentable(String, source: String)
    /// The model has no chat template, or one that is not in the ChatML family.
    case unsupportedChatTemplate(reason: String)

    /// One line naming the source and what is wrong.
    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read tokenizer: \(reason)"
        case let .invalidFormat(source, reason):
            return "\(source): invalid tokenizer: \(reason)"
        case let .unsupportedModel(model, source):
            return "\(source): tokenizer model '\(model)' is not supported (BPE and SentencePiece-BPE only)"
        case let .unsupportedPreTokenizer(name, source):
            return "\(source): pre-tokenizer '\(name)' is not supported (GPT-2, Llama-3, Qwen2 and SmolLM/StarCoder patterns only)"
        case let .unsupportedComponent(kind, name, source):
            return "\(source): \(kind) '\(name)' is not supported"
        case let .tokenOutOfRange(id, size):
            return "token id \(id) is out of range for a vocabulary of \(size) tokens"
        case let .unrepresentable(text, source):
            return "\(source): cannot encode \(text.debugDescription): not in the vocabulary and no byte fallback"
        case let .unsupportedChatTemplate(reason):
            return "unsupported chat template: \(reason)"
        }
    }
}
