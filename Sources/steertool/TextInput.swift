import Foundation
import ArgumentParser
import Runtime

/// Text ⇄ token ids for the CLI through the model's tokenizer (tokenizer.json of an HF folder,
/// or the GGUF's `tokenizer.ggml.*`).
enum TextInput {
    /// Encodes `text` (with the tokenizer's BOS/EOS template when `addSpecialTokens`).
    static func encode(_ text: String, modelPath: String, addSpecialTokens: Bool) throws -> [Int] {
        try Tokenizer.load(modelPath: modelPath).encode(text, addSpecialTokens: addSpecialTokens)
    }

    /// A prompt's ids and the extra ids a reply stops at (the chat template's end-of-turn marker).
    struct Prompt {
        let ids: [Int]
        let stopTokens: Set<Int>
    }

    /// The prompt's ids: as one user turn of the model's chat template when `chat` (the template
    /// known for `architecture` when the model ships none, with a note on stderr), else the plain
    /// text with special tokens. `enableThinking` false renders Qwen3's `enable_thinking=False`
    /// (refused for a template without that switch).
    static func encodePrompt(_ text: String, chat: Bool, enableThinking: Bool = true, modelPath: String,
                             architecture: String) throws -> Prompt {
        let tokenizer = try Tokenizer.load(modelPath: modelPath)
        guard chat else { return Prompt(ids: tokenizer.encode(text, addSpecialTokens: true), stopTokens: []) }
        let (template, fallback) = try tokenizer.chatTemplate(architecture: architecture)
        if fallback {
            FileHandle.standardError.write(Data("steertool: the model ships no chat template; using \(architecture)'s (\(template.style.rawValue))\n".utf8))
        }
        try checkThinking(enableThinking, template: template)
        return Prompt(ids: tokenizer.encodeChat([ChatMessage(role: "user", content: text)], addGenerationPrompt: true,
                                                template: template, enableThinking: enableThinking),
                      stopTokens: Set(tokenizer.endOfTurnID(template).map { [$0] } ?? []))
    }

    /// A function from each generated token to the text it completes (special tokens left out),
    /// or nil when the model has no readable tokenizer (then ids are printed).
    static func streamDecoder(modelPath: String) throws -> ((Int) -> String)? {
        guard let tokenizer = try? Tokenizer.load(modelPath: modelPath) else { return nil }
        var decoder = tokenizer.incrementalDecoder(skipSpecialTokens: true)
        return { decoder.push($0) }
    }

    /// Refuses `--no-thinking` for a template without Qwen3's switch.
    static func checkThinking(_ enableThinking: Bool, template: ChatTemplate) throws {
        guard enableThinking || template.hasThinkingSwitch else {
            throw ValidationError("--no-thinking: the model's chat template (\(template.style.rawValue)) has no thinking switch")
        }
    }
}
