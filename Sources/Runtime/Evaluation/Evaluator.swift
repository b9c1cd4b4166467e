import Foundation
import Tensors

/// Text evaluation of several model variants on the same token sequences and windows:
/// per-token NLL, and against an optional reference model KL(reference ‖ variant) and top-1
/// agreement. Each window's reference log-probabilities are computed once and shared by all
/// variants. Windows follow `SlidingWindowPlan` (transformers' perplexity guide); with a
/// `windowPrefix` (the tokenizer's BOS for models run behind one, such as Gemma), every window
/// that does not start the sequence is fed behind the prefix, as llama.cpp's perplexity tool does,
/// so it is one prefix longer than `context`; the scored tokens and their left context within the
/// sequence are the same.
public struct TextEvaluator: Sendable {
    /// Largest window in tokens, not counting the prefix.
    public var context: Int
    /// Window advance in tokens (1…context).
    public var stride: Int
    /// Tokens fed before every window with `begin > 0` (never scored); empty for plain windows.
    public var windowPrefix: [Int]

    /// - Precondition: `context ≥ 2`, `1 ≤ stride ≤ context` (validated by callers).
    public init(context: Int, stride: Int, windowPrefix: [Int] = []) {
        precondition(context >= 2 && stride >= 1 && stride <= context, "need context ≥ 2 and 1 ≤ stride ≤ context")
        self.context = context; self.stride = stride; self.windowPrefix = windowPrefix
    }

    /// Tokens that will be scored for `sequences` (for progress reporting).
    public func scoredTokenCount(_ sequences: [[Int]]) -> Int {
        sequences.reduce(0) { $0 + SlidingWindowPlan(count: $1.count, context: context, stride: stride).scoredTokenCount }
    }

    /// Evaluates every variant (and the reference as its own figures) on `sequences`.
    /// - Parameters:
    ///   - variants: models sharing the reference's vocabulary.
    ///   - reference: the model whose distribution KL and agreement compare against.
    ///   - progress: called after each window with the number of tokens it scored.
    /// - Returns: one `TokenMetrics` per variant, in order, and the reference's own metrics.
    /// - Throws: `RuntimeError.invalidArgument` when vocabularies differ, or forward-pass errors.
    public func evaluate(variants: [LlamaModel], reference: LlamaModel?, sequences: [[Int]],
                         progress: (Int) -> Void = { _ in }) throws -> (variants: [TokenMetrics], reference: TokenMetrics?) {
        if let reference {
            for v in variants where v.config.vocabSize != reference.config.vocabSize {
                throw RuntimeError.invalidArgument(
                    "reference vocabulary (\(reference.config.vocabSize) tokens) differs from the model's (\(v.config.vocabSize)): KL and agreement need the same tokens")
            }
        }
        // Big models are streamed a layer at a time (each window is a batch job; see
        // `LlamaModel.streamsLayerPages`), so evaluating two of them costs about two layers.
        let variants = variants.map(\.streamingLayerPagesIfLarge), reference = reference?.streamingLayerPagesIfLarge
        var metrics = [TokenMetrics](repeating: TokenMetrics(), count: variants.count)
        var referenceMetrics: TokenMetrics? = reference == nil ? nil : TokenMetrics()
        let logitsOnly = ForwardOptions(logits: .all)
        for sequence in sequences {
            let plan = SlidingWindowPlan(count: sequence.count, context: context, stride: stride)
            for w in plan.windows {
                let prefix = w.begin > 0 ? windowPrefix : []
                let window = prefix + sequence[w.begin..<w.end]
                let first = prefix.count + w.scoredFrom - 1 - w.begin
                let positions = Array(first..<(first + w.end - w.scoredFrom))
                let targets = Array(sequence[w.scoredFrom..<w.end])
                var referenceLogProbs: Tensor? = nil
                if let reference {
                    let lp = logSoftmaxRows(try reference.forward(tokens: window, options: logitsOnly).logits)
                    referenceMetrics?.add(logProbs: lp, positions: positions, targets: targets, reference: lp)
                    referenceLogProbs = lp
                }
                for (i, v) in variants.enumerated() {
                    let lp = logSoftmaxRows(try v.forward(tokens: window, options: logitsOnly).logits)
                    metrics[i].add(logProbs: lp, positions: positions, targets: targets, reference: referenceLogProbs)
                }
                progress(targets.count)
            }
        }
        return (metrics, referenceMetrics)
    }
}

/// Multiple-choice evaluation (lm-evaluation-harness procedure): each choice's summed
/// log-likelihood given the context, from one forward pass over context + choice.
public struct MultipleChoiceEvaluator: Sendable {
    public init() {}

    /// Summed log-probability of `split.whole[split.contextCount...]`, each token predicted by the
    /// logits of the position before it. The context is the pass's prompt (an adapter of the last
    /// prompt token steers its last token).
    /// - Throws: `RuntimeError.invalidArgument` when there is no context token to condition on or
    ///   no continuation token.
    public func logLikelihood(model: LlamaModel, split: ContinuationSplit) throws -> Double {
        guard split.contextCount >= 1 else { throw RuntimeError.invalidArgument("multiple choice: empty context (give a prefix token)") }
        guard split.whole.count > split.contextCount else { throw RuntimeError.invalidArgument("multiple choice: a choice encodes to no tokens") }
        let logits = try model.forward(tokens: split.whole, options: ForwardOptions(logits: .all, promptLengths: [split.contextCount])).logits
        let vocab = logits.columns
        var total = 0.0
        logits.withUnsafeBufferPointer { buf in
            for pos in split.contextCount..<split.whole.count {
                let row = buf.baseAddress! + (pos - 1) * vocab
                total += Double(row[split.whole[pos]]) - logSumExp(row, count: vocab)
            }
        }
        return total
    }

    /// Scores every item: each choice's summed log-likelihood given the context, harness style
    /// (no BOS; an empty context is conditioned on `emptyContextToken`, the end-of-text id).
    /// - Parameters:
    ///   - encode: the model's tokenizer without special tokens.
    ///   - progress: called after each item.
    /// - Returns: the accuracy figures and the per-item, per-choice log-likelihoods.
    public func evaluate(model: LlamaModel, items: [MultipleChoiceItem], emptyContextToken: Int,
                         encode: (String) throws -> [Int],
                         progress: () -> Void = {}) throws -> (score: MultipleChoiceScore, logLikelihoods: [[Double]]) {
        var score = MultipleChoiceScore()
        var all: [[Double]] = []
        for item in items {
            let prefix = try encode(item.context).isEmpty ? [emptyContextToken] : []
            var lls: [Double] = []
            for choice in item.choices {
                let split = try ContinuationSplit(context: item.context, continuation: choice, prefix: prefix, encode: encode)
                lls.append(try logLikelihood(model: model, split: split))
            }
            score.add(item: item, logLikelihoods: lls)
            all.append(lls)
            progress()
        }
        return (score, all)
    }
}

extension LlamaModel {
    /// Parameters added by the attached adapters (LoRA A and B, steering D, U and b).
    public var adapterParameterCount: Int {
        let lora = loraAdapters.reduce(0) { sum, adapter in
            sum + adapter.layers.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.a.count + $1.b.count } }
        }
        return lora + steeringAdapters.reduce(0) { $0 + $1.parameterCount }
    }
}
