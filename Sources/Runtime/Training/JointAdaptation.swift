import Tensors

/// What one orthogonal projection did at one layer.
public struct JointProjectionRecord: Sendable, Equatable {
    /// The step after whose update it ran.
    public var step: Int
    /// 0-based layer.
    public var layer: Int
    /// Largest cosine of the principal angles between col(D) and col(B_down) before the projection.
    public var cosineBefore: Float
    /// The same after it (≈ 0).
    public var cosineAfter: Float
}

/// The linear algebra of joint adaptation (a LoRA and post-block adapters trained together, each
/// layer's adapter down-projection D kept orthogonal to col(B) of that layer's down_proj LoRA, as
/// the paper's code does every 100 steps).
public enum JointAdaptation {
    /// An orthonormal basis `[n, k]` of col(m) (`m` `[n, c]`), from its thin SVD, keeping
    /// singular values above 1e-6·σ_max; `[n, 0]` for a zero matrix.
    public static func orthonormalBasis(_ m: Tensor) throws -> Tensor {
        let dec = try svd(m, precision: .double)
        let smax = dec.singularValues.first ?? 0
        let k = smax > 0 ? dec.singularValues.filter { $0 > 1e-6 * smax }.count : 0
        let n = m.rows
        return Tensor(shape: [n, k]) { o in
            for i in 0..<n { for j in 0..<k { o[i * k + j] = dec.u[i, j] } }
        }
    }

    /// Largest cosine of the principal angles between col(x) and col(y) (0 when either is zero).
    public static func maxPrincipalCosine(_ x: Tensor, _ y: Tensor) throws -> Float {
        let qx = try orthonormalBasis(x), qy = try orthonormalBasis(y)
        guard qx.columns > 0, qy.columns > 0 else { return 0 }
        return try svd(matmul(qx, qy, transposeA: true), precision: .double).singularValues.first ?? 0
    }

    /// D ← (I − V·Vᵀ)·D with V an orthonormal basis of col(b).
    public static func projectOut(_ down: Tensor, columnSpaceOf b: Tensor) throws -> Tensor {
        let v = try orthonormalBasis(b)
        guard v.columns > 0 else { return down }
        return down - matmul(v, matmul(v, down, transposeA: true))
    }

    /// Projects every steered layer's D onto the orthogonal complement of col(B) of that layer's
    /// down_proj LoRA (layers without either are left alone), recording the largest principal
    /// cosine before and after.
    public static func projectAdapters(_ adapter: inout SteeringAdapter, lora: LoRAWeights, step: Int) throws -> [JointProjectionRecord] {
        var records: [JointProjectionRecord] = []
        for l in adapter.layers.keys.sorted() {
            guard let down = adapter.layers[l]!.down, let b = lora.layers[l]?[.down]?.b else { continue }
            let before = try maxPrincipalCosine(down, b)
            let projected = try projectOut(down, columnSpaceOf: b)
            adapter.layers[l]!.down = projected
            records.append(JointProjectionRecord(step: step, layer: l, cosineBefore: before,
                                                 cosineAfter: try maxPrincipalCosine(projected, b)))
        }
        return records
    }
}
