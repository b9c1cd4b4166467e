#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// How the next token is chosen from a row of logits. Applied in transformers' order:
/// temperature, then top-k, then top-p (nucleus), then a draw from the renormalised
/// distribution. `temperature == 0` is greedy (argmax, lowest id on ties) and ignores the rest.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy; otherwise logits are divided by it (> 0).
    public var temperature: Float
    /// Keep the k most likely tokens (0 = no limit).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = no limit).
    public var topP: Float
    /// Seed of the `SplitMix64` the draws come from.
    public var seed: UInt64

    /// Parameters; the defaults are greedy decoding.
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }

    /// Greedy decoding.
    public static let greedy = SamplingParameters()

    /// Checks ranges: temperature ≥ 0 and finite, top-k ≥ 0, 0 < top-p ≤ 1.
    /// - Throws: `RuntimeError.invalidArgument` naming the parameter.
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw RuntimeError.invalidArgument("temperature \(temperature) must be finite and ≥ 0")
        }
        guard topK >= 0 else { throw RuntimeError.invalidArgument("top-k \(topK) must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw RuntimeError.invalidArgument("top-p \(topP) must be in (0, 1]") }
    }
}

/// Draws tokens from logits with `SamplingParameters`; deterministic for a given seed.
public struct Sampler: Sendable {
    /// The parameters it samples with.
    public let parameters: SamplingParameters
    private var rng: SplitMix64

    /// A sampler whose generator starts from `parameters.seed`.
    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    /// The index of the largest value (lowest index on ties; NaN never wins).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue {
            best = i; bestValue = v
        }
        return best
    }

    /// Chooses the next token from a row of logits `[vocab]`.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        guard p.temperature > 0 else { return Self.argmax(logits) }
        // Candidates sorted by logit, descending (ties by id), cut to top-k.
        var order = Array(logits.indices.filter { !logits[$0].isNaN })
        guard !order.isEmpty else { return 0 }
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if p.topK > 0, p.topK < order.count { order.removeSubrange(p.topK...) }
        // Softmax of logits / T over the candidates, in Double.
        let top = Double(logits[order[0]]) / Double(p.temperature)
        var probs = order.map { exp(Double(logits[$0]) / Double(p.temperature) - top) }
        let z = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= z }
        if p.topP < 1 {
            var cumulative = 0.0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                cumulative += q
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
            order.removeSubrange(keep...)
            probs.removeSubrange(keep...)
        }
        let mass = probs.reduce(0, +)
        var u = rng.nextOpenUnitDouble() * mass
        for (i, q) in probs.enumerated() {
            u -= q
            if u <= 0 { return order[i] }
        }
        return order[order.count - 1]
    }

    /// Chooses the next token from the last row of a logits matrix `[T, vocab]`.
    public mutating func sample(lastRowOf logits: Tensor) -> Int {
        let v = logits.columns
        return logits.withUnsafeBufferPointer { b in
            sample(UnsafeBufferPointer(rebasing: b[(b.count - v)..<b.count]))
        }
    }
}
