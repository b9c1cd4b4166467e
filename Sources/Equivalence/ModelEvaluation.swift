import Foundation
import Runtime
import Tensors

/// Held-out comparison of models on token sequences (each run from position 0): next-token
/// loss, KL divergence between two models' next-token distributions, and the fraction of the
/// fine-tune's loss improvement that a steered model recovers. Logits are `[T, vocab]`, row t
/// predicting token t+1; all figures are means over the T−1 predicted positions of every
/// sequence, in nats, accumulated in Double.
public enum ModelEvaluation {
    /// Mean next-token negative log-likelihood of `model` on `sequences` (sequences shorter
    /// than 2 tokens contribute nothing).
    /// - Throws: `EquivalenceError.tooFewTokens` when no sequence has 2 tokens, or the runtime's errors.
    public static func loss(_ model: LlamaModel, sequences: [[Int]]) throws -> Double {
        var total = 0.0, count = 0
        for s in sequences where s.count >= 2 {
            let logits = try model.forward(tokens: s).logits
            let lsm = logSoftmaxRows(logits)
            let v = logits.columns
            for t in 0..<(s.count - 1) { total -= lsm[t * v + s[t + 1]]; count += 1 }
        }
        guard count > 0 else { throw EquivalenceError.tooFewTokens(what: "loss", needed: 2, found: sequences.map(\.count).max() ?? 0) }
        return total / Double(count)
    }

    /// Mean KL(P_reference ‖ P_model) over the predicted positions (the first T−1 rows).
    public static func meanKL(reference: LlamaModel, model: LlamaModel, sequences: [[Int]]) throws -> Double {
        var total = 0.0, count = 0
        for s in sequences where s.count >= 2 {
            let p = logSoftmaxRows(try reference.forward(tokens: s).logits)
            let q = logSoftmaxRows(try model.forward(tokens: s).logits)
            let v = p.count / s.count
            for t in 0..<(s.count - 1) {
                var kl = 0.0
                for j in 0..<v {
                    let lp = p[t * v + j]
                    kl += exp(lp) * (lp - q[t * v + j])
                }
                total += max(kl, 0); count += 1
            }
        }
        guard count > 0 else { throw EquivalenceError.tooFewTokens(what: "KL", needed: 2, found: sequences.map(\.count).max() ?? 0) }
        return total / Double(count)
    }

    /// (loss_base − loss_steered) / (loss_base − loss_ft): 1 = the steered model gains all the
    /// fine-tune gained, 0 = nothing; nan when the fine-tune gains nothing.
    public static func recoveredFraction(baseLoss: Double, finetunedLoss: Double, steeredLoss: Double) -> Double {
        let gain = baseLoss - finetunedLoss
        return gain == 0 ? .nan : (baseLoss - steeredLoss) / gain
    }

    /// Row-wise log-softmax of `[T, V]` logits, in Double (Runtime's `logSumExp` per row).
    static func logSoftmaxRows(_ logits: Tensor) -> [Double] {
        let r = logits.rows, c = logits.columns
        var out = [Double](repeating: 0, count: r * c)
        logits.withUnsafeBufferPointer { x in
            for i in 0..<r {
                let row = x.baseAddress! + i * c
                let lse = logSumExp(row, count: c)
                for j in 0..<c { out[i * c + j] = Double(row[j]) - lse }
            }
        }
        return out
    }
}
