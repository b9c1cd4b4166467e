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

extension JointAdaptation {
    /// The zero-B LoRA the joint KL training starts from: A `[r, in]` normal with std 1/√in.
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
}
