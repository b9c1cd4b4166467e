import Tensors

/// How many singular directions an extracted LoRA keeps.
public enum ExtractionRank: Sendable, Equatable {
    /// At most r (fewer when the matrix is smaller).
    case fixed(Int)
    /// The smallest r whose directions hold at least this fraction of Σσ² (in (0, 1]), capped.
    case energy(Double, maxRank: Int)
}

/// A LoRA extracted from a weight delta, with what the truncation lost.
public struct ExtractedLoRA: Sendable {
    /// Factors with scaling 1 (written as r = lora_alpha = r).
    public var factors: LoRAUpdate
    /// All singular values of the delta, descending.
    public var singularValues: [Float]
    /// ‖Δ − B·A‖_F / ‖Δ‖_F = √(Σ_{i>r} σᵢ²) / √(Σ σᵢ²) (0 for a zero delta).
    public var relativeError: Double
}

/// LoRA extraction from a delta, as mergekit's `extract_lora` does (`distribute_scale`): the
/// truncated SVD Δ = U_r·diag(σ_r)·V_rᵀ of the `[out, in]` delta W_ft − W_base gives
/// B = U_r·diag(√σ_r) `[out, r]`, A = diag(√σ_r)·V_rᵀ `[r, in]`, scaling 1. SVD in Float64.
public enum LoRAExtraction {
    /// Extracts from base and fine-tuned weights of one `[out, in]` module.
    public static func extract(base: Tensor, finetuned: Tensor, rank: ExtractionRank, name: String = "weight") throws -> ExtractedLoRA {
        guard base.shape == finetuned.shape, base.rank == 2 else {
            throw MergeError.shapeMismatch(tensor: name, expected: base.shape.dims, found: finetuned.shape.dims)
        }
        return try extract(delta: finetuned - base, rank: rank, name: name)
    }

    /// Extracts from a delta `[out, in]`.
    public static func extract(delta: Tensor, rank: ExtractionRank, name: String = "weight") throws -> ExtractedLoRA {
        precondition(delta.rank == 2, "extract needs a matrix")
        switch rank {
        case let .fixed(r) where r < 1:
            throw MergeError.invalidParameter(name: "rank", value: "\(r)", reason: "must be ≥ 1")
        case let .energy(e, m) where !(e > 0 && e <= 1) || m < 1:
            throw MergeError.invalidParameter(name: "energy", value: "\(e)", reason: "must be in (0, 1] with a max rank ≥ 1")
        default: break
        }
        let s: SingularValueDecomposition
        do { s = try svd(delta, precision: .double) } catch {
            throw MergeError.numerical(tensor: name, reason: "SVD failed: \(error)")
        }
        let sig = s.singularValues.map(Double.init)
        let total = sig.reduce(0) { $0 + $1 * $1 }
        var r: Int
        switch rank {
        case let .fixed(k): r = min(k, sig.count)
        case let .energy(e, m):
            r = sig.count
            var acc = 0.0
            for (i, x) in sig.enumerated() {
                acc += x * x
                if total == 0 || acc >= e * total { r = i + 1; break }
            }
            r = min(r, m)
        }
        r = max(r, min(1, sig.count))
        var b = Tensor(shape: [delta.rows, r])
        var a = Tensor(shape: [r, delta.columns])
        for j in 0..<r {
            let root = Float(sig[j].squareRoot())
            for i in 0..<delta.rows { b[i, j] = s.u[i, j] * root }
            for k in 0..<delta.columns { a[j, k] = s.vt[j, k] * root }
        }
        let tail = sig.dropFirst(r).reduce(0) { $0 + $1 * $1 }
        return ExtractedLoRA(factors: LoRAUpdate(a: a, b: b, scaling: 1), singularValues: s.singularValues,
                             relativeError: total == 0 ? 0 : (tail / total).squareRoot())
    }
}
