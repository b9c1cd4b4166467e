import Foundation
import Tensors

/// One contrastive pair: two texts that differ in the trait to steer.
public struct ContrastivePair: Sendable, Equatable {
    /// The text with the trait.
    public var positive: String
    /// The text without it (or with its opposite).
    public var negative: String
    /// The 1-based line of the pairs file.
    public var line: Int

    /// A pair.
    public init(positive: String, negative: String, line: Int) {
        self.positive = positive; self.negative = negative; self.line = line
    }

    /// Reads JSONL `{"positive": "...", "negative": "..."}` lines (blank lines skipped, other keys
    /// ignored).
    /// - Throws: `RuntimeError.invalidData` naming the file and line for invalid JSON, a missing
    ///   or non-string key, an empty text; `.invalidArgument` for an unreadable file or no pairs.
    public static func load(path: String) throws -> [ContrastivePair] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError.invalidArgument("\(path): cannot read the pairs (UTF-8 JSONL)")
        }
        var pairs: [ContrastivePair] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            func fail(_ reason: String) -> RuntimeError { .invalidData(file: path, line: i + 1, reason: reason) }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw fail("invalid JSON (a {\"positive\", \"negative\"} object per line)")
            }
            var texts: [String] = []
            for key in ["positive", "negative"] {
                guard let value = object[key] else { throw fail("missing \"\(key)\"") }
                guard let s = value as? String else { throw fail("\"\(key)\" is not a string") }
                guard !s.isEmpty else { throw fail("empty \"\(key)\"") }
                texts.append(s)
            }
            pairs.append(ContrastivePair(positive: texts[0], negative: texts[1], line: i + 1))
        }
        guard !pairs.isEmpty else { throw RuntimeError.invalidArgument("\(path): no pairs") }
        return pairs
    }
}

/// How a contrastive vector is formed from the per-pair differences d_i = h(positive_i) − h(negative_i).
public enum ContrastiveMethod: String, Sendable, CaseIterable {
    /// v = mean_i d_i.
    case meanDifference = "mean-diff"
    /// v = (d̄·u)·u, u the first right singular vector of the matrix of differences (one row per
    /// pair, not centred), signed so that d̄·u > 0: the mean difference projected on the
    /// principal direction. repeng's `pca_diff` centres the differences first and takes the
    /// principal component of their spread instead, which discards the mean shift itself.
    case pca
}

/// Which token's residual stands for a text.
public enum ContrastiveToken: String, Sendable, CaseIterable {
    /// The last token (repeng, llama.cpp's cvector-generator).
    case last
    /// The mean over every token of the text (BOS included).
    case mean
}

/// Contrastive steering vectors read off the post-block residual stream (llama.cpp's `l_out`):
/// per 0-based layer ℓ, h_ℓ(text) is block ℓ's output at the chosen token of the text, and the
/// vector for ℓ is formed from the pairs' differences by `method`. The result is a vector-kind
/// post-block adapter (b_ℓ = v_ℓ), made for the model it was read from.
public enum ContrastiveVectors {
    /// The vectors of `pairs` (each text encoded by `encode`).
    /// - Throws: `RuntimeError.invalidData` naming `source` and the pair's line for a text longer
    ///   than the model's context; `.invalidArgument` for layers out of range; the forward's errors.
    public static func compute(model: LlamaModel, pairs: [ContrastivePair], source: String, encode: (String) -> [Int],
                               method: ContrastiveMethod, token: ContrastiveToken, layers: [Int]? = nil) throws -> SteeringAdapter {
        let c = model.config, d = c.hiddenSize
        let chosen = layers ?? Array(0..<c.numHiddenLayers)
        guard !chosen.isEmpty, chosen.allSatisfy({ $0 >= 0 && $0 < c.numHiddenLayers }) else {
            throw RuntimeError.invalidArgument("vectors: layers \(chosen) outside 0..<\(c.numHiddenLayers)")
        }
        // differences[ℓ]: one row per pair, Float64.
        var differences: [Int: [Double]] = [:]
        for pair in pairs {
            var readings: [[Int: [Double]]] = []
            for text in [pair.positive, pair.negative] {
                let ids = encode(text)
                guard !ids.isEmpty else { throw RuntimeError.invalidData(file: source, line: pair.line, reason: "a text encodes to no tokens") }
                guard ids.count <= c.maxPositionEmbeddings else {
                    throw RuntimeError.invalidData(file: source, line: pair.line,
                                                   reason: "\(ids.count) tokens, longer than the model's context of \(c.maxPositionEmbeddings)")
                }
                let recorder = ActivationRecorder(sites: Set(chosen.map { HookSite.blockOutput($0) }))
                // The layers after the highest chosen one change no reading: the pass stops there.
                _ = try model.forward(tokens: ids, hooks: recorder.hooks,
                                      options: ForwardOptions(logits: .none, layers: 0..<(chosen.max()! + 1)))
                var reading: [Int: [Double]] = [:]
                for l in chosen {
                    guard let h = recorder.activation(at: .blockOutput(l)) else { continue }
                    let T = h.rows
                    var v = [Double](repeating: 0, count: d)
                    h.withUnsafeBufferPointer { p in
                        switch token {
                        case .last: for j in 0..<d { v[j] = Double(p[(T - 1) * d + j]) }
                        case .mean:
                            for t in 0..<T { for j in 0..<d { v[j] += Double(p[t * d + j]) } }
                            for j in 0..<d { v[j] /= Double(T) }
                        }
                    }
                    reading[l] = v
                }
                readings.append(reading)
            }
            for l in chosen {
                guard let p = readings[0][l], let n = readings[1][l] else { continue }
                differences[l, default: []] += zip(p, n).map { $0 - $1 }
            }
        }
        var out: [Int: SteeringLayer] = [:]
        for l in chosen {
            let rows = differences[l] ?? []
            let n = rows.count / d
            var mean = [Double](repeating: 0, count: d)
            for i in 0..<n { for j in 0..<d { mean[j] += rows[i * d + j] } }
            for j in 0..<d { mean[j] /= Double(n) }
            var v = mean
            if method == .pca {
                let m = Tensor(shape: [n, d], scalars: rows.map { Float($0) })
                let vt = try rightSingularVectors(m).vt
                var u = (0..<d).map { Double(vt.scalars[$0]) }
                var dot = zip(mean, u).reduce(0) { $0 + $1.0 * $1.1 }
                if dot < 0 { u = u.map { -$0 }; dot = -dot }
                v = u.map { dot * $0 }
            }
            out[l] = SteeringLayer(bias: Tensor(shape: [d], scalars: v.map { Float($0) }))
        }
        var adapter = SteeringAdapter(site: .blockOutput, activation: .identity, layers: out)
        adapter.madeFor = model.signature
        return adapter
    }
}
