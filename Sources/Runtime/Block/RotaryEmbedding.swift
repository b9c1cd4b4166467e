#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Rotary position embedding in the Hugging Face "rotate half" layout: within a head of width
/// `hd`, element `i < hd/2` pairs with element `i + hd/2`, both rotated by the angle
/// `position · inverseFrequencies[i]`:
/// `x'ᵢ = xᵢ·cos − x_{i+hd/2}·sin`, `x'_{i+hd/2} = x_{i+hd/2}·cos + xᵢ·sin`.
/// Frequencies follow transformers' `ROPE_INIT_FUNCTIONS` ("default", "linear", "llama3"),
/// computed in f32 as transformers does so positions far from 0 round the same way.
public struct RotaryEmbedding: Sendable, Equatable {
    /// `[hd/2]` inverse frequencies after scaling.
    public let inverseFrequencies: [Float]
    /// Head width the embedding rotates.
    public var headDim: Int { inverseFrequencies.count * 2 }

    /// Builds the frequencies for `config` (`head_dim`, `rope_theta`, `rope_type` and its
    /// parameters). `source` names the config in errors.
    /// - Throws: `RuntimeError.unsupportedFeature` for other RoPE types,
    ///   `.invalidConfig` when a scaling parameter is missing or not positive.
    public init(config: LlamaConfig, source: String = "config") throws {
        let dim = config.headDim
        let theta = config.rope.theta
        // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all in f32.
        var inv = (0..<(dim / 2)).map { i in Float(1) / powf(theta, Float(2 * i) / Float(dim)) }
        let rope = config.rope
        func required(_ v: Float?, _ key: String) throws -> Float {
            guard let v, v.isFinite, v > 0 else {
                throw RuntimeError.invalidConfig(source: source, reason: "rope '\(rope.ropeType)' needs a positive \(key)")
            }
            return v
        }
        switch rope.ropeType {
        case "default":
            break
        case "linear":
            let factor = try required(rope.factor, "factor")
            inv = inv.map { $0 / factor }
        case "llama3":
            let factor = try required(rope.factor, "factor")
            let low = try required(rope.lowFreqFactor, "low_freq_factor")
            let high = try required(rope.highFreqFactor, "high_freq_factor")
            guard let original = rope.originalMaxPositionEmbeddings, original > 0 else {
                throw RuntimeError.invalidConfig(source: source, reason: "rope 'llama3' needs original_max_position_embeddings")
            }
            guard high != low else {
                throw RuntimeError.invalidConfig(source: source, reason: "rope 'llama3' needs high_freq_factor ≠ low_freq_factor")
            }
            // transformers `_compute_llama3_parameters`: long wavelengths are divided by
            // `factor`, short ones kept, the band between blended smoothly.
            let oldContext = Float(original)
            let lowFreqWavelen = oldContext / low
            let highFreqWavelen = oldContext / high
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                let scaled = wavelen > lowFreqWavelen ? f / factor : f
                let isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen)
                guard isMedium else { return scaled }
                let smooth = (oldContext / wavelen - low) / (high - low)
                return (1 - smooth) * scaled / factor + smooth * scaled
            }
        default:
            throw RuntimeError.unsupportedFeature("rope_type '\(rope.ropeType)'", source: source)
        }
        inverseFrequencies = inv
    }

    /// Default-type frequencies of `config` divided elementwise by `divisors` `[head_dim/2]`:
    /// how GGUF stores llama3 scaling (`rope_freqs.weight`, llama.cpp's frequency factors)
    /// instead of the scaling parameters.
    /// - Throws: `RuntimeError.invalidConfig` when the count is not head_dim/2 or a divisor is
    ///   not finite and positive.
    public init(config: LlamaConfig, frequencyDivisors divisors: [Float], source: String = "config") throws {
        var base = config
        base.rope = LlamaConfig.RopeParameters(theta: config.rope.theta)
        let plain = try RotaryEmbedding(config: base, source: source)
        guard divisors.count == plain.inverseFrequencies.count else {
            throw RuntimeError.invalidConfig(
                source: source, reason: "rope_freqs has \(divisors.count) entries, expected head_dim/2 = \(plain.inverseFrequencies.count)")
        }
        guard divisors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw RuntimeError.invalidConfig(source: source, reason: "rope_freqs holds a non-finite or non-positive factor")
        }
        inverseFrequencies = zip(plain.inverseFrequencies, divisors).map { $0 / $1 }
    }

    /// cos and sin tables for `count` positions from `start`: each `[count, hd/2]` row-major.
    public func tables(positions start: Int, count: Int) -> (cos: [Float], sin: [Float]) {
        let half = inverseFrequencies.count
        var c = [Float](repeating: 0, count: count * half)
        var s = [Float](repeating: 0, count: count * half)
        for t in 0..<count {
            let p = Float(start + t)
            for i in 0..<half {
                let angle = p * inverseFrequencies[i]   // f32 product, as transformers' matmul
                c[t * half + i] = cosf(angle)
                s[t * half + i] = sinf(angle)
            }
        }
        return (c, s)
    }

    /// Rotates `rows` rows of `heads` heads in place (the forward: x ↦ R(θ_t)·x per pair of
    /// halves). Row `t` starts at `base + t·rowStride`, head `h` at offset `h·hd` inside it, and
    /// sits at table row `t` (from `tables`).
    func apply(_ base: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int,
               cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        rotate(base, rows: rows, heads: heads, rowStride: rowStride, cos: cos, sin: sin, sign: 1)
    }

    /// Rotates every head of `x` `[T, heads·hd]` in place, row t at table row t of `cos`/`sin`
    /// (`tables`): the forward, or with `backward` its transpose (rotation by −θ), which is also
    /// what a tangent or a gradient goes through (the map is linear).
    public func rotate(_ x: inout Tensor, heads: Int, cos: [Float], sin: [Float], backward: Bool = false) {
        let rows = x.rows, width = x.columns, half = inverseFrequencies.count
        precondition(width == heads * 2 * half && cos.count >= rows * half && sin.count >= rows * half,
                     "rotate: \(x.shape) for \(heads) heads of \(2 * half)")
        x.withUnsafeMutableBufferPointer { p in
            cos.withUnsafeBufferPointer { cp in sin.withUnsafeBufferPointer { sp in
                rotate(p.baseAddress!, rows: rows, heads: heads, rowStride: width, cos: cp.baseAddress!, sin: sp.baseAddress!,
                       sign: backward ? -1 : 1)
            } }
        }
    }

    /// cos/sin tables `[positions.count, hd/2]` for a range of positions.
    public func tables(positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
        tables(positions: positions.lowerBound, count: positions.count)
    }

    /// The backward of `apply`: a gradient laid out as `apply`'s input, rotated in place by −θ
    /// (R(θ)ᵀ = R(−θ)), with the same tables.
    func applyBackward(_ base: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int,
                       cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        rotate(base, rows: rows, heads: heads, rowStride: rowStride, cos: cos, sin: sin, sign: -1)
    }

    /// x ↦ (a·c − b·s′, b·c + a·s′) with s′ = sign·s for the halves (a, b) of every head.
    private func rotate(_ base: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int,
                        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, sign: Float) {
        let half = inverseFrequencies.count
        for t in 0..<rows {
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let x = base + t * rowStride + h * 2 * half
                let y = x + half
                for i in 0..<half {
                    let a = x[i], b = y[i], si = sign * s[i]
                    x[i] = a * c[i] - b * si
                    y[i] = b * c[i] + a * si
                }
            }
        }
    }
}
