import ArgumentParser
import Foundation
import Runtime

/// `steertool generate`: continue a prompt with the KV cache, streaming each new token.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text (greedy or sampled) from a prompt, streaming to stdout.")

    @OptionGroup var modelArguments: ModelArguments

    @Option(name: .long, help: "Prompt text (tokenized with the model's tokenizer).")
    var prompt: String?

    @Option(name: .long, help: "Prompt as comma-separated token ids.")
    var tokens: String?

    @Flag(name: .long, help: "Wrap the prompt in the model's chat template as one user turn.")
    var chat = false

    @Flag(name: .long, help: "With --chat on a Qwen3 model: render enable_thinking=False (the reply opens with an empty <think> block).")
    var noThinking = false

    @Option(name: .long, help: "Most new tokens.")
    var maxTokens = 64

    @Option(name: .long, help: "Sampling temperature (0 = greedy).")
    var temperature: Float = 0

    @Option(name: .long, help: "Keep the k most likely tokens (0 = all).")
    var topK = 0

    @Option(name: .long, help: "Nucleus sampling mass (1 = all).")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed of the sampler.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Print token ids (space-separated) instead of text.")
    var ids = false

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("give exactly one of --prompt and --tokens") }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
        guard chat || !noThinking else { throw ValidationError("--no-thinking applies to --chat prompts") }
    }

    func run() throws {
        let model = try modelArguments.load()
        let promptIDs: [Int]
        var turnStops: Set<Int> = []
        if let tokens {
            promptIDs = try parseTokenList(tokens)
        } else {
            let p = try TextInput.encodePrompt(prompt ?? "", chat: chat, enableThinking: !noThinking, modelPath: modelArguments.model,
                                               architecture: model.architecture.name)
            promptIDs = p.ids; turnStops = p.stopTokens
        }
        let decoder = ids ? nil : try TextInput.streamDecoder(modelPath: modelArguments.model)
        let parameters = GenerationParameters(
            maxTokens: maxTokens, stopTokens: Set(model.config.eosTokenIds).union(turnStops),
            sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed))
        let result = try model.generate(prompt: promptIDs, parameters: parameters) { token in
            if let decoder {
                FileHandle.standardOutput.write(Data(decoder(token).utf8))
            } else {
                FileHandle.standardOutput.write(Data("\(token) ".utf8))
            }
            return true
        }
        FileHandle.standardOutput.write(Data("\n".utf8))
        FileHandle.standardError.write(Data("[\(result.tokens.count) tokens, stopped: \(result.stopReason.rawValue)]\n".utf8))
    }
}
