import Tensors

/// One LoRA pair on one projection, PEFT orientation: A `[r, in]`, B `[out, r]`; the projection
/// becomes `x·Wᵀ + scale · (x·Aᵀ)·Bᵀ` (ΔW = scale·B·A), applied unmerged.
public struct LoRAFactors: Sendable, Equatable {
    /// Down projection `[r, in]` (`lora_A.weight`).
    public var a: Tensor
    /// Up projection `[out, r]` (`lora_B.weight`).
    public var b: Tensor
    /// alpha/r, or alpha/√r with rsLoRA (already resolved per module).
    public var scale: Float

    /// A pair with its scale (shapes are checked by `LoRAWeights.validate(for:)`).
    public init(a: Tensor, b: Tensor, scale: Float) {
        self.a = a; self.b = b; self.scale = scale
    }

    /// The rank r.
    public var rank: Int { a.rank == 2 ? a.shape[0] : 0 }

    /// ΔW = scale · B · A, `[out, in]`.
    public var delta: Tensor { matmul(b, a, alpha: scale) }
}

/// A LoRA adapter resolved per layer and projection (rank/alpha patterns, rsLoRA and
/// `layers_to_transform` already applied by whoever built it). Layers are 0-based; a missing
/// layer or projection is untouched.
public struct LoRAWeights: Sendable, Equatable {
    /// Names the adapter in errors (e.g. its path).
    public var name: String
    /// Factors by 0-based layer and projection.
    public var layers: [Int: [LlamaProjection: LoRAFactors]]

    /// An adapter from resolved factors.
    public init(name: String, layers: [Int: [LlamaProjection: LoRAFactors]]) {
        self.name = name; self.layers = layers
    }

    /// Largest rank over all modules (0 when empty).
    public var maxRank: Int {
        layers.values.flatMap(\.values).map(\.rank).max() ?? 0
    }

    /// Checks every pair against `config`: layer in range, A `[r, in]`, B `[out, r]`, finite scale.
    /// - Throws: `RuntimeError.adapterMismatch` naming the adapter, layer and projection.
    public func validate(for config: LlamaConfig) throws {
        for (layer, modules) in layers {
            guard layer >= 0, layer < config.numHiddenLayers else {
                throw RuntimeError.adapterMismatch(
                    adapter: name, reason: "layer \(layer) outside 0..<\(config.numHiddenLayers)")
            }
            for (p, f) in modules {
                let where_ = "\(p.modulePath(layer: layer))"
                guard f.a.rank == 2, f.b.rank == 2 else {
                    throw RuntimeError.adapterMismatch(adapter: name, reason: "\(where_): lora_A and lora_B must be matrices")
                }
                let r = f.a.shape[0]
                guard f.a.shape.dims == [r, p.inputSize(config)] else {
                    throw RuntimeError.adapterMismatch(
                        adapter: name, reason: "\(where_).lora_A has shape \(f.a.shape), expected [\(r), \(p.inputSize(config))]")
                }
                guard f.b.shape.dims == [p.outputSize(config), r] else {
                    throw RuntimeError.adapterMismatch(
                        adapter: name, reason: "\(where_).lora_B has shape \(f.b.shape), expected [\(p.outputSize(config)), \(r)]")
                }
                guard f.scale.isFinite else {
                    throw RuntimeError.adapterMismatch(adapter: name, reason: "\(where_): scale \(f.scale) is not finite")
                }
            }
        }
    }
}
