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

    /// The cos/sin tables for a range of positions (`RotaryTables`).
    public func tables(positions: Range<Int>) -> RotaryTables {
        let half = inverseFrequencies.count
        var c = [Float](repeating: 0, count: positions.count * half), s = c
        for (t, position) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(position) * inverseFrequencies[i]   // f32 product, as transformers' matmul
                c[t * half + i] = cosf(angle)
                s[t * half + i] = sinf(angle)
            }
        }
        return RotaryTables(positions: positions, half: half, cos: c, sin: s)
    }
}

/// cos and sin of `RotaryEmbedding`'s angles for a run of positions, each `[positions.count, hd/2]`
/// row-major, and the rotation by them: table row t rotates a row at `positions.lowerBound + t`.
public struct RotaryTables: Sendable {
    /// The positions of the table rows.
    public let positions: Range<Int>
    /// hd/2.
    let half: Int
    let cos, sin: [Float]

    /// Rotates `rows` rows of `heads` heads in place: row t starts at `base + t·rowStride`, head h
    /// at offset h·hd inside it. The forward is x ↦ R(θ_t)·x per pair of halves (a, b) ↦
    /// (a·cos − b·sin, b·cos + a·sin); `backward` applies the transpose R(−θ_t), which is also the
    /// map a gradient goes through. Being linear, the forward is its own tangent.
    func rotate(_ base: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int, backward: Bool = false) {
        precondition(rows <= positions.count, "rotate: \(rows) rows for \(positions.count) table rows")
        let sign: Float = backward ? -1 : 1
        cos.withUnsafeBufferPointer { cp in sin.withUnsafeBufferPointer { sp in
            for t in 0..<rows {
                let c = cp.baseAddress! + t * half, s = sp.baseAddress! + t * half
                for h in 0..<heads {
                    let x = base + t * rowStride + h * 2 * half, y = x + half
                    for i in 0..<half {
                        let a = x[i], b = y[i], si = sign * s[i]
                        x[i] = a * c[i] - b * si
                        y[i] = b * c[i] + a * si
                    }
                }
            }
        } }
    }

    /// `rotate` on every head of x `[T, heads·hd]`, row t at table row t.
    public func rotate(_ x: inout Tensor, heads: Int, backward: Bool = false) {
        let rows = x.rows, width = x.columns
        precondition(width == heads * 2 * half, "rotate: \(x.shape) for \(heads) heads of \(2 * half)")
        x.withUnsafeMutableBufferPointer { rotate($0.baseAddress!, rows: rows, heads: heads, rowStride: width, backward: backward) }
    }
}
