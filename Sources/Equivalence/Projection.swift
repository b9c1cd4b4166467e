import Runtime
import Tensors

extension LlamaProjection: Comparable {
    /// Block order: q, k, v, o, gate, up, down.
    public static func < (a: LlamaProjection, b: LlamaProjection) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A change of one projection's weight `W` `[out, in]` (PyTorch orientation; the projection
/// computes `x · Wᵀ` on `[tokens, in]` activations).
public enum ProjectionDelta: Sendable, Equatable {
    /// A dense ΔW `[out, in]`.
    case dense(Tensor)
    /// A LoRA ΔW = scale · B · A with A `[r, in]`, B `[out, r]` (PEFT orientation). Applied
    /// without forming the product: `x · ΔWᵀ = scale · (x · Aᵀ) · Bᵀ`.
    case lowRank(a: Tensor, b: Tensor, scale: Float)

    /// `[out, in]` of the ΔW this delta stands for.
    public var shape: [Int] {
        switch self {
        case let .dense(w): return w.shape.dims
        case let .lowRank(a, b, _): return [b.shape[0], a.shape[1]]
        }
    }

    /// `x · ΔWᵀ` for `x` `[tokens, in]` → `[tokens, out]`, batched over tokens (one or two gemms).
    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case let .dense(w): return matmul(x, w, transposeB: true)
        case let .lowRank(a, b, scale): return matmul(matmul(x, a, transposeB: true), b, transposeB: true, alpha: scale)
        }
    }

    /// The LoRA form with rank ≤ r: a LoRA of rank ≤ r is kept; otherwise the best rank-r
    /// approximation of the dense ΔW (truncated SVD, Float64): B = U_r·diag(σ_r), A = V_rᵀ, scale 1.
    public func lowRank(maximumRank r: Int) throws -> ProjectionDelta {
        if case let .lowRank(a, _, _) = self, a.shape[0] <= r { return self }
        let dec = try svd(denseMatrix(), precision: .double)
        let k = min(max(r, 0), dec.singularValues.count)
        let out = dec.u.rows, inn = dec.vt.columns
        let b = Tensor(shape: [out, k]) { o in
            for i in 0..<out { for j in 0..<k { o[i * k + j] = dec.u[i, j] * dec.singularValues[j] } }
        }
        precondition(dec.vt.columns == inn)
        return .lowRank(a: dec.vt.rows(0..<k), b: b, scale: 1)
    }

    /// The dense ΔW `[out, in]` (forms s·B·A for a LoRA).
    public func denseMatrix() -> Tensor {
        switch self {
        case let .dense(w): return w
        case let .lowRank(a, b, scale): return matmul(b, a, alpha: scale)
        }
    }
}

/// Weight changes on any subset of a layer's seven projections (absent = unchanged).
public struct LayerWeightDelta: Sendable, Equatable {
    public var projections: [LlamaProjection: ProjectionDelta]

    public init(_ projections: [LlamaProjection: ProjectionDelta] = [:]) { self.projections = projections }

    /// The delta of one projection, if any.
    public subscript(_ p: LlamaProjection) -> ProjectionDelta? {
        get { projections[p] }
        set { projections[p] = newValue }
    }

    /// Whether any of q, k, v, o changes.
    public var touchesAttention: Bool { projections.keys.contains { $0.isAttention } }

    /// Checks every delta's `[out, in]` against the layer's weight of the same projection.
    public func validate(against weights: LlamaWeights.Layer) throws {
        for (p, d) in projections {
            let dims = weights[p].dims
            guard d.shape == dims else {
                throw EquivalenceError.shapeMismatch(what: "delta of \(p.rawValue)", expected: dims, found: d.shape)
            }
        }
    }
}

extension LlamaWeights.Layer {
    /// These weights with `t · ΔW` added to every projection that `delta` changes (dense sum,
    /// held f32).
    public func adding(_ delta: LayerWeightDelta, scale t: Float = 1) -> LlamaWeights.Layer {
        var w = self
        for (p, d) in delta.projections { w[p] = .f32(self[p].dense + t * d.denseMatrix()) }
        return w
    }
}
