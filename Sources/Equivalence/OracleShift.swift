import Tensors

/// Oracle shifts: the exact per-token change of an activation between two models,
/// Δh = h_FT − h_base, tokens as rows (`[N, d]`).
public enum OracleShift {
    /// Δh = `finetuned − base` for two `[N, d]` activation matrices recorded on the same tokens.
    /// - Throws: `EquivalenceError.shapeMismatch` when the shapes differ.
    public static func shift(base: Tensor, finetuned: Tensor) throws -> Tensor {
        guard base.rank == 2, base.shape == finetuned.shape else {
            throw EquivalenceError.shapeMismatch(what: "fine-tuned activations", expected: base.shape.dims, found: finetuned.shape.dims)
        }
        return finetuned - base
    }
}

/// A deterministic split of N token rows into held-in (fitting) and held-out (reporting) sets.
/// Indices are 0-based row numbers, each list ascending.
public struct TokenSplit: Sendable, Equatable {
    public let heldIn: [Int]
    public let heldOut: [Int]

    /// Shuffles 0..<count with `SplitMix64(seed:)` (Fisher–Yates) and holds out
    /// `round(heldOutFraction · count)` rows (at least one of each set when count ≥ 2).
    public init(count: Int, heldOutFraction: Double = 0.2, seed: UInt64) {
        precondition(count >= 0 && heldOutFraction >= 0 && heldOutFraction < 1, "TokenSplit: bad arguments")
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        var nOut = Int((heldOutFraction * Double(count)).rounded())
        if count >= 2 { nOut = min(max(nOut, heldOutFraction > 0 ? 1 : 0), count - 1) } else { nOut = 0 }
        heldOut = order[0..<nOut].sorted()
        heldIn = order[nOut...].sorted()
    }

    /// An explicit split (indices are not checked against a row count here).
    public init(heldIn: [Int], heldOut: [Int]) { self.heldIn = heldIn; self.heldOut = heldOut }
}
