import Tensors

/// Limits and sampling of one generation.
public struct GenerationParameters: Sendable, Equatable {
    /// Most new tokens to produce (≥ 0).
    public var maxTokens: Int
    /// Token ids that end generation (the stop token is included in the output).
    public var stopTokens: Set<Int>
    /// How each token is chosen.
    public var sampling: SamplingParameters

    /// Limits and sampling (greedy by default).
    public init(maxTokens: Int, stopTokens: Set<Int> = [], sampling: SamplingParameters = .greedy) {
        self.maxTokens = maxTokens; self.stopTokens = stopTokens; self.sampling = sampling
    }
}

/// Why generation ended.
public enum StopReason: String, Sendable, Equatable {
    /// A stop token (EOS) was produced.
    case stopToken = "stop_token"
    /// `maxTokens` new tokens were produced.
    case maxTokens = "max_tokens"
    /// The token callback asked to stop.
    case callback
}

/// The outcome of `LlamaModel.generate`.
public struct GenerationResult: Sendable, Equatable {
    /// New tokens only (not the prompt), including a final stop token if one ended it.
    public var tokens: [Int]
    /// Why it ended.
    public var stopReason: StopReason
}

extension LlamaModel {
    /// Continues `prompt` token by token: one prefill of the whole prompt, then one forward call
    /// per new token through a KV cache. `onToken` sees each new token as it is chosen and returns
    /// false to stop. `hooks` apply on every call (rows of each call only; see `HookContext`).
    /// - Throws: `RuntimeError` for an empty prompt, bad ids or parameters, or what a hook or
    ///   `onToken` throws.
    public func generate(prompt: [Int], parameters: GenerationParameters, hooks: [HookSite: Hook] = [:],
                         onToken: (Int) throws -> Bool = { _ in true }) throws -> GenerationResult {
        try parameters.sampling.validate()
        guard parameters.maxTokens >= 0 else {
            throw RuntimeError.invalidArgument("max tokens \(parameters.maxTokens) must be ≥ 0")
        }
        var out: [Int] = []
        guard parameters.maxTokens > 0 else { return GenerationResult(tokens: [], stopReason: .maxTokens) }
        let cache = KVCache(config: config, capacity: prompt.count + parameters.maxTokens)
        var sampler = Sampler(parameters.sampling)
        var next = prompt
        while true {
            let r = try forward(tokens: next, hooks: hooks, cache: cache,
                              options: ForwardOptions(logits: .lastPosition, promptLengths: [prompt.count]))
            let token = sampler.sample(lastRowOf: r.logits)
            out.append(token)
            if parameters.stopTokens.contains(token) {
                _ = try onToken(token)
                return GenerationResult(tokens: out, stopReason: .stopToken)
            }
            if try !onToken(token) { return GenerationResult(tokens: out, stopReason: .callback) }
            if out.count >= parameters.maxTokens { return GenerationResult(tokens: out, stopReason: .maxTokens) }
            next = [token]
        }
    }
}
