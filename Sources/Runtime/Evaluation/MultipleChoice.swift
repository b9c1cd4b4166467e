import Foundation

/// One multiple-choice item in lm-evaluation-harness layout (a JSONL line):
/// `{"context": "...", "choices": ["...", ...], "label": 0}`.
public struct MultipleChoiceItem: Sendable, Equatable, Codable {
    public var context: String
    public var choices: [String]
    /// 0-based index of the correct choice.
    public var label: Int

    public init(context: String, choices: [String], label: Int) {
        self.context = context; self.choices = choices; self.label = label
    }
}

/// How lm-evaluation-harness splits a (context, continuation) pair into token ids: trailing
/// spaces of the context move to the continuation; the whole string is encoded once and the
/// continuation's ids are those after the context's own encoding (so merges across the boundary
/// follow the whole string).
public struct ContinuationSplit: Sendable, Equatable {
    /// Ids of context + continuation.
    public var whole: [Int]
    /// Number of leading ids that belong to the context; the rest are scored.
    public var contextCount: Int

    /// `encode` maps text to ids without special tokens; `prefix` (e.g. BOS) is prepended to both.
    public init(context: String, continuation: String, prefix: [Int] = [], encode: (String) throws -> [Int]) rethrows {
        var ctx = context, cont = continuation
        while ctx.hasSuffix(" ") { ctx.removeLast(); cont = " " + cont }
        let wholeIds = try encode(ctx + cont)
        let contextIds = try encode(ctx)
        let shared = min(contextIds.count, wholeIds.count)
        whole = prefix + wholeIds
        contextCount = prefix.count + shared
    }
}

/// Accuracy over multiple-choice items, harness semantics: `acc` picks the choice with the largest
/// summed log-likelihood; `acc_norm` divides it by the choice's length in Unicode scalars (the
/// harness's `len(choice)` in Python). Ties go to the first choice, as numpy's argmax.
public struct MultipleChoiceScore: Sendable, Equatable, Codable {
    public private(set) var items = 0
    public private(set) var correct = 0
    public private(set) var correctNormalized = 0

    public init() {}

    public var accuracy: Double { items == 0 ? .nan : Double(correct) / Double(items) }
    public var accuracyNormalized: Double { items == 0 ? .nan : Double(correctNormalized) / Double(items) }

    /// Adds one item given each choice's summed log-likelihood.
    public mutating func add(item: MultipleChoiceItem, logLikelihoods: [Double]) {
        precondition(logLikelihoods.count == item.choices.count, "one log-likelihood per choice")
        items += 1
        let best = logLikelihoods.indices.max { logLikelihoods[$0] < logLikelihoods[$1] } ?? -1
        let normalized = logLikelihoods.indices.map { logLikelihoods[$0] / Double(max(item.choices[$0].unicodeScalars.count, 1)) }
        let bestNorm = normalized.indices.max { normalized[$0] < normalized[$1] } ?? -1
        if best == item.label { correct += 1 }
        if bestNorm == item.label { correctNormalized += 1 }
    }
}
