import Foundation
import Tensors

/// Per-token language-model metrics accumulated over scored tokens: mean negative
/// log-likelihood (natural log), and against a reference distribution mean KL(reference ‖ model)
/// and top-1 agreement. Sums are kept in Double so long texts do not lose precision.
public struct TokenMetrics: Sendable, Equatable, Codable {
    public private(set) var tokens: Int = 0
    public private(set) var nllSum: Double = 0
    public private(set) var klSum: Double = 0
    public private(set) var agreements: Int = 0
    public private(set) var comparedTokens: Int = 0

    public init() {}

    /// Mean negative log-likelihood per scored token (nats).
    public var nll: Double { tokens == 0 ? .nan : nllSum / Double(tokens) }
    /// exp(nll).
    public var perplexity: Double { exp(nll) }
    /// Mean KL(reference ‖ model) per token (nats), or nil without a reference.
    public var klToReference: Double? { comparedTokens == 0 ? nil : klSum / Double(comparedTokens) }
    /// Fraction of tokens where model and reference have the same argmax, or nil without a reference.
    public var top1Agreement: Double? { comparedTokens == 0 ? nil : Double(agreements) / Double(comparedTokens) }

    /// Scores rows `positions` of `logProbs` (`[T, vocab]` log-softmax) against `targets`
    /// (`targets[i]` is the token predicted by row `positions[i]`), optionally comparing with the
    /// reference's log-probabilities at the same rows.
    public mutating func add(logProbs: Tensor, positions: [Int], targets: [Int], reference: Tensor? = nil) {
        precondition(positions.count == targets.count, "one target per scored position")
        let vocab = logProbs.columns
        logProbs.withUnsafeBufferPointer { lp in
            for (p, t) in zip(positions, targets) { nllSum -= Double(lp[p * vocab + t]) }
        }
        tokens += positions.count
        guard let reference else { return }
        precondition(reference.shape == logProbs.shape, "reference log-probs must match the model's shape")
        logProbs.withUnsafeBufferPointer { lp in
            reference.withUnsafeBufferPointer { lr in
                for p in positions {
                    let m = lp.baseAddress! + p * vocab, r = lr.baseAddress! + p * vocab
                    var kl = 0.0
                    var bestM = 0, bestR = 0
                    for v in 0..<vocab {
                        let lrv = Double(r[v])
                        if lrv > -80 { kl += exp(lrv) * (lrv - Double(m[v])) }
                        if m[v] > m[bestM] { bestM = v }
                        if r[v] > r[bestR] { bestR = v }
                    }
                    klSum += kl
                    if bestM == bestR { agreements += 1 }
                }
            }
        }
        comparedTokens += positions.count
    }

    /// Merges metrics of another text.
    public mutating func merge(_ other: TokenMetrics) {
        tokens += other.tokens; nllSum += other.nllSum; klSum += other.klSum
        agreements += other.agreements; comparedTokens += other.comparedTokens
    }
}

/// Fraction of the reference's loss gain over the plain model that `model` recovers:
/// (nll_plain − nll_model) / (nll_plain − nll_reference). nil when the reference gains nothing.
public func recoveredFraction(plainNLL: Double, modelNLL: Double, referenceNLL: Double) -> Double? {
    let gain = plainNLL - referenceNLL
    guard gain.isFinite, abs(gain) > 1e-12 else { return nil }
    return (plainNLL - modelNLL) / gain
}

/// log Σⱼ exp(row[j]) of `count` floats, with max subtraction, accumulated in Double.
public func logSumExp(_ row: UnsafePointer<Float>, count: Int) -> Double {
    var m = -Float.infinity
    for v in 0..<count where row[v] > m { m = row[v] }
    let md = Double(m)
    var s = 0.0
    for v in 0..<count { s += exp(Double(row[v]) - md) }
    return md + log(s)
}

/// Row-wise log-softmax of `[T, vocab]` logits: each row minus its `logSumExp` (computed in
/// Double, stored as Float).
public func logSoftmaxRows(_ logits: Tensor) -> Tensor {
    let vocab = logits.columns
    return Tensor(shape: logits.shape) { out in
        logits.withUnsafeBufferPointer { x in
            for row in 0..<logits.rows {
                let p = x.baseAddress! + row * vocab
                let lse = logSumExp(p, count: vocab)
                for v in 0..<vocab { out[row * vocab + v] = Float(Double(p[v]) - lse) }
            }
        }
    }
}
