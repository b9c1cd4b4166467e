import Foundation
import Runtime
import Tensors

/// Rotary position embedding with Hugging Face's rotate-half convention: for a head vector x of
/// width `headDim` split into halves x₁, x₂, `rope(x) = [x₁·cos − x₂·sin, x₂·cos + x₁·sin]`, with
/// angle `position · invFreq[i]` for pair i (0 ≤ i < headDim/2). RoPE types "default",
/// "linear" (inverse frequencies divided by `factor`) and "llama3" (transformers'
/// `_compute_llama3_parameters`); the attention scaling of all three is 1.
public struct RotaryEmbedding: Sendable {
    /// `[headDim/2]` inverse frequencies (computed in Float32, as transformers does).
    public let inverseFrequencies: [Float]
    public let headDim: Int

    /// Builds the frequencies of `config.rope` for `config.headDim`.
    /// - Throws: `EquivalenceError.unsupportedConfiguration` for other RoPE types, an odd head
    ///   width, or missing llama3/linear parameters.
    public init(config: LlamaConfig) throws {
        let dim = config.headDim
        guard dim > 0, dim % 2 == 0 else { throw EquivalenceError.unsupportedConfiguration("head_dim \(dim) must be even and positive") }
        let r = config.rope
        var inv = (0..<(dim / 2)).map { i in 1 / powf(r.theta, Float(2 * i) / Float(dim)) }
        switch r.ropeType {
        case "default":
            break
        case "linear":
            guard let f = r.factor, f > 0 else { throw EquivalenceError.unsupportedConfiguration("linear RoPE needs factor > 0") }
            inv = inv.map { $0 / f }
        case "llama3":
            guard let f = r.factor, let lo = r.lowFreqFactor, let hi = r.highFreqFactor,
                  let old = r.originalMaxPositionEmbeddings, hi != lo, f > 0
            else { throw EquivalenceError.unsupportedConfiguration("llama3 RoPE needs factor, low/high_freq_factor and original_max_position_embeddings") }
            let lowWavelen = Float(old) / lo, highWavelen = Float(old) / hi
            inv = inv.map { x in
                let wavelen = 2 * Float.pi / x
                if wavelen < highWavelen { return x }
                if wavelen > lowWavelen { return x / f }
                let smooth = (Float(old) / wavelen - lo) / (hi - lo)
                return (1 - smooth) * x / f + smooth * x
            }
        default:
            throw EquivalenceError.unsupportedConfiguration("RoPE type \"\(r.ropeType)\"")
        }
        inverseFrequencies = inv
        headDim = dim
    }

    /// cos and sin tables `[positions.count · headDim/2]` (row = position), angles in Float32 as
    /// transformers computes them, cos/sin in Double then rounded.
    func tables(positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2
        var c = [Float](repeating: 0, count: positions.count * half), s = c
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Double(Float(p) * inverseFrequencies[i])
                c[t * half + i] = Float(Foundation.cos(angle))
                s[t * half + i] = Float(Foundation.sin(angle))
            }
        }
        return (c, s)
    }

    /// Rotates every head of `x` `[T, heads·headDim]` in place (row t at position t of the
    /// tables). Linear in x, so the same call rotates tangents.
    static func rotate(_ x: inout Tensor, heads: Int, headDim: Int, cos: [Float], sin: [Float]) {
        let t = x.rows, width = x.columns, half = headDim / 2
        precondition(width == heads * headDim && cos.count >= t * half, "rotate: shape mismatch")
        x.withUnsafeMutableBufferPointer { buf in
            for row in 0..<t {
                for h in 0..<heads {
                    let base = row * width + h * headDim
                    for i in 0..<half {
                        let c = cos[row * half + i], s = sin[row * half + i]
                        let x1 = buf[base + i], x2 = buf[base + i + half]
                        buf[base + i] = x1 * c - x2 * s
                        buf[base + i + half] = x2 * c + x1 * s
                    }
                }
            }
        }
    }
}
