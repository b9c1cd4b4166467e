import Runtime

/// Text ⇄ token ids for the CLI through the model's tokenizer.
enum TextInput {
    static func encode(_ text: String, modelPath: String, addSpecialTokens: Bool) throws -> [Int] {
        throw RuntimeError.unsupportedFeature("--text/--prompt (the tokenizer is not merged yet; use --tokens)", source: modelPath)
    }

    static func encodePrompt(_ text: String, chat: Bool, modelPath: String) throws -> [Int] {
        try encode(text, modelPath: modelPath, addSpecialTokens: true)
    }

    /// A function from each generated token to the text it adds, or nil without a tokenizer.
    static func streamDecoder(modelPath: String) throws -> ((Int) -> String)? { nil }
}
