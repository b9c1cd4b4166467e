import Foundation
import Formats
import Tensors

/// A Llama-family causal LM ready to run: config, weights (matrices f32, or bf16/f16 and GGML blocks in place; see
/// `WeightStorage`), RoPE frequencies, and the adapters applied **unmerged** on every forward pass
/// (LoRA inside the projections, steering adapters as hooks at their sites). A value type: adding
/// an adapter to a copy leaves the original as it was, and the weights are shared, not copied
/// (copy-on-write tensors).
public struct LlamaModel: Sendable {
    /// Hyperparameters.
    public let config: LlamaConfig
    /// The weights every computation reads (matrices f32, or bf16/f16 and GGML blocks in place).
    public private(set) var weights: LlamaWeights
    /// Decoder layer `layer` (0-based) in f32 for analysis (first-order map, fold-back): f32
    /// matrices shared, bf16/f16 and block ones widened into new buffers for this layer only,
    /// so at most one layer is ever dense beyond what the model holds.
    public func layerWeights(_ layer: Int) -> LlamaWeights.Layer { weights.layers[layer].widened() }
    /// Lets the kernel drop layer `layer`'s matrices (0-based) from the resident set where they
    /// are read in place from a mapped file: for a pass that is done with the layer. Using the
    /// layer again reads the pages back from the file; results never change.
    public func releasePages(layer: Int) {
        for p in LlamaProjection.allCases { weights.layers[layer][p].releasePages() }
    }

    /// When true, every forward pass (and `SteeringBackprop`'s backward) releases each layer's
    /// pages (`releasePages(layer:)`) as soon as it is done with the layer, so a model mapped from
    /// a file larger than memory stays about one layer resident. Each pass then reads the layers
    /// back from the page cache or the file: right for batch jobs on big models (distillation, KL
    /// training, evaluation), wrong for token-by-token generation. Off by default; results never
    /// change.
    public var streamsLayerPages = false

    /// Whether the weights are large for this machine (more than a quarter of its physical
    /// memory): the batch jobs turn `streamsLayerPages` on for such a model.
    public var isLargeForThisMachine: Bool {
        UInt64(weights.byteCount) > ProcessInfo.processInfo.physicalMemory / 4
    }

    /// This model as the batch jobs (KL training, evaluation) run it: `streamsLayerPages` on
    /// when it `isLargeForThisMachine`, else unchanged.
    public var streamingLayerPagesIfLarge: LlamaModel {
        var m = self
        if m.isLargeForThisMachine { m.streamsLayerPages = true }
        return m
    }

    /// How the weight matrices are held.
    public var weightStorage: WeightStorage { weights.storage }
    /// Bias layout resolved from the architecture name.
    public let architecture: LlamaArchitecture
    /// What each decoder layer computes (0-based): the forward pass runs `DecoderBlock` on these.
    public let blocks: [BlockDescription]
    /// RoPE frequencies for `config`.
    public let rotary: RotaryEmbedding
    /// RoPE frequencies of the sliding-window layers when they have their own (`config.localRope`).
    public let localRotary: RotaryEmbedding?
    /// Token embeddings are multiplied by this after the lookup (Gemma: √d in f32); nil: not scaled.
    public var embeddingScale: Float? { architecture.scalesEmbeddings ? Float(Double(config.hiddenSize).squareRoot()) : nil }

    /// LoRA adapters applied inside the projections; several sum.
    public private(set) var loraAdapters: [LoRAWeights] = []
    /// Steering adapters applied as hooks (before any hooks passed to `forward`); several sum.
    public private(set) var steeringAdapters: [SteeringAdapter] = []

    /// A model over loaded weights (shapes checked by `LlamaWeights.load`) and `config`;
    /// `ropeFrequencyDivisors` (`[head_dim/2]`, GGUF's `rope_freqs.weight`) replace the config's
    /// RoPE scaling when given. `source` names the model in errors.
    /// - Throws: `RuntimeError` for unsupported configs or a layer count that differs from `config`.
    public init(config: LlamaConfig, weights: LlamaWeights, ropeFrequencyDivisors: [Float]? = nil,
                source: String = "model") throws {
        let architecture = try LlamaArchitecture(config: config, source: source)
        guard weights.layers.count == config.numHiddenLayers else {
            throw RuntimeError.invalidConfig(
                source: source, reason: "\(weights.layers.count) layers of weights for num_hidden_layers \(config.numHiddenLayers)")
        }
        let rotary = try ropeFrequencyDivisors.map {
            try RotaryEmbedding(config: config, frequencyDivisors: $0, source: source)
        } ?? RotaryEmbedding(config: config, source: source)
        try self.init(config: config, weights: weights, rotary: rotary, architecture: architecture)
    }

    /// The same model (adapters included) with its matrices held in `storage`: `.q8_0` quantizes
    /// f32 matrices (gguf-py rounding), `.f32` widens every other matrix.
    /// - Throws: `RuntimeError.shapeMismatch` for a matrix Q8_0 cannot hold.
    public func converted(to storage: WeightStorage) throws -> LlamaModel {
        guard storage != weightStorage else { return self }
        return withWeights(try weights.converted(to: storage))
    }

    /// The same model (adapters included) with every weight matrix rounded to bf16 or f16 and
    /// multiplied by the half kernels, as a checkpoint saved in that dtype runs with
    /// `.native` storage (benchmarks, tests).
    public func rounded(to format: HalfMatrix.Format) throws -> LlamaModel {
        withWeights(try weights.rounded(to: format))
    }

    /// The same model (adapters included) over other weights of the same shapes.
    private func withWeights(_ other: LlamaWeights) -> LlamaModel {
        var m = self
        m.weights = other
        return m
    }

    /// The one place the stored properties are set (checked parts passed in).
    private init(config: LlamaConfig, weights: LlamaWeights, rotary: RotaryEmbedding,
                 architecture: LlamaArchitecture) throws {
        self.config = config; self.weights = weights; self.rotary = rotary
        self.architecture = architecture
        self.localRotary = try config.localRope.map { local -> RotaryEmbedding in
            var c = config
            c.rope = local
            return try RotaryEmbedding(config: c)
        }
        self.blocks = BlockDescription.layers(config: config)
    }

    /// Adds a LoRA adapter (applied unmerged, summed with any others).
    /// - Throws: `RuntimeError.adapterMismatch` if it does not fit this model.
    public mutating func add(_ lora: LoRAWeights) throws {
        try lora.validate(for: config)
        loraAdapters.append(lora)
    }

    /// What adapters made for this model record (`SteeringAdapter.madeFor`): the resolved
    /// architecture name, d and the layer count.
    public var signature: ModelSignature {
        ModelSignature(architecture: architecture.name, hiddenSize: config.hiddenSize, layers: config.numHiddenLayers)
    }

    /// Adds a steering adapter (its hooks run before hooks passed to `forward`); `name`
    /// identifies it in errors.
    /// - Throws: `RuntimeError.adapterMismatch` if it does not fit this model: made for a model
    ///   of another architecture or shape (`ModelSignature.matches`), or of shapes that do not fit.
    public mutating func add(_ steering: SteeringAdapter, name: String) throws {
        if let made = steering.madeFor, !made.matches(signature) {
            throw RuntimeError.adapterMismatch(adapter: name, reason: "made for \(made); this model is \(signature)")
        }
        try steering.validate(for: config, name: name)
        steeringAdapters.append(steering)
    }

    /// A copy of this model with `lora` added.
    public func adding(_ lora: LoRAWeights) throws -> LlamaModel {
        var m = self
        try m.add(lora)
        return m
    }

    /// A copy of this model with `steering` added.
    public func adding(_ steering: SteeringAdapter, name: String) throws -> LlamaModel {
        var m = self
        try m.add(steering, name: name)
        return m
    }

    /// The same weights and config without adapters.
    public var withoutAdapters: LlamaModel {
        var m = self
        m.loraAdapters = []; m.steeringAdapters = []
        return m
    }

    /// LoRA factors per layer and projection, summed over adapters in order.
    func loraFactors(layer: Int) -> [LlamaProjection: [LoRAFactors]] {
        var out: [LlamaProjection: [LoRAFactors]] = [:]
        for adapter in loraAdapters {
            guard let modules = adapter.layers[layer] else { continue }
            for (p, f) in modules where f.rank > 0 { out[p, default: []].append(f) }
        }
        return out
    }

    /// Hooks of all steering adapters, chained in the order they were added.
    var steeringHooks: [HookSite: Hook] {
        steeringAdapters.reduce(into: [HookSite: Hook]()) { acc, a in acc = acc.chained(with: a.hooks) }
    }
}
