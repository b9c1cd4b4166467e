import Foundation
import Runtime
import Tensors

/// Joint adaptation settings for `KLDistiller`: a LoRA trained together with the post-block
/// adapters (`KLDistillOptions.joint`).
public struct JointAdaptationOptions: Sendable {
    /// LoRA rank r_w on every chosen projection of every steered layer.
    public var loraRank: Int
    /// Projections carrying the LoRA (default down_proj only).
    public var projections: [LlamaProjection]
    /// LoRA scale (alpha / r).
    public var loraScale: Float
    /// Every this many steps, each layer's adapter down-projection D `[d, r]` is projected onto
    /// the orthogonal complement of col(B) of that layer's down_proj LoRA (D ← (I − V·Vᵀ)·D,
    /// V an orthonormal basis of col(B)); 0 = never.
    public var projectionInterval: Int
    /// Soft-penalty variant: adds λ·Σ_ℓ ‖B_ℓᵀ·D_ℓ‖²_F (B_ℓ the down_proj LoRA B, D_ℓ the
    /// adapter's down-projection) to the loss; 0 = off.
    public var penalty: Float
    /// Seed of the LoRA A initialisation (normal, std 1/√in; B starts at 0, PEFT's convention).
    public var seed: UInt64
    /// Weight-only baseline: train the LoRA alone (no post-block adapters), on the layers the
    /// adapters would have steered.
    public var weightOnly: Bool = false

    public init(loraRank: Int = 4, projections: [LlamaProjection] = [.down], loraScale: Float = 1,
                projectionInterval: Int = 100, penalty: Float = 0, seed: UInt64 = 0) {
        self.loraRank = loraRank; self.projections = projections; self.loraScale = loraScale
        self.projectionInterval = projectionInterval; self.penalty = penalty; self.seed = seed
    }
}

/// What one orthogonal projection did at one layer.
public struct JointProjectionRecord: Sendable {
    public var step: Int
    public var layer: Int
    /// Largest cosine of the principal angles between col(D) and col(B_down), before and after.
    public var cosineBefore: Float
    public var cosineAfter: Float
}

/// The linear algebra of joint adaptation.
public enum JointAdaptation {
    /// The zero-B LoRA the joint training starts from: A `[r, in]` normal with std 1/√in.
    public static func initialLoRA(config: LlamaConfig, layers: [Int], options: JointAdaptationOptions) -> LoRAWeights {
        var out: [Int: [LlamaProjection: LoRAFactors]] = [:]
        var seed = options.seed
        for l in layers.sorted() {
            for p in options.projections {
                seed &+= 1
                let nIn = p.inputSize(config)
                out[l, default: [:]][p] = LoRAFactors(
                    a: .randomNormal([options.loraRank, nIn], std: 1 / Float(nIn).squareRoot(), seed: seed),
                    b: Tensor(shape: [p.outputSize(config), options.loraRank]), scale: options.loraScale)
            }
        }
        return LoRAWeights(name: "joint", layers: out)
    }

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
}
