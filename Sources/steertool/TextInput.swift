import Runtime

/// Text ⇄ token ids for the CLI through the model's tokenizer (tokenizer.json of an HF folder,
/// or the GGUF's `tokenizer.ggml.*`).
enum TextInput {
    /// Encodes `text` (with the tokenizer's BOS/EOS template when `addSpecialTokens`).
    static func encode(_ text: String, modelPath: String, addSpecialTokens: Bool) throws -> [Int] {
        try Tokenizer.load(modelPath: modelPath).encode(text, addSpecialTokens: addSpecialTokens)
    }

    /// The prompt's ids: as one user turn of the model's chat template when `chat`, else the
    /// plain text with special tokens.
    static func encodePrompt(_ text: String, chat: Bool, modelPath: String) throws -> [Int] {
        let tokenizer = try Tokenizer.load(modelPath: modelPath)
        if chat {
            return try tokenizer.encodeChat([ChatMessage(role: "user", content: text)], addGenerationPrompt: true)
        }
        return tokenizer.encode(text, addSpecialTokens: true)
    }

    /// A function from each generated token to the text it completes (special tokens left out),
    /// or nil when the model has no readable tokenizer (then ids are printed).
    static func streamDecoder(modelPath: String) throws -> ((Int) -> String)? {
        guard let tokenizer = try? Tokenizer.load(modelPath: modelPath) else { return nil }
        var decoder = tokenizer.incrementalDecoder(skipSpecialTokens: true)
        return { decoder.push($0) }
    }
}
