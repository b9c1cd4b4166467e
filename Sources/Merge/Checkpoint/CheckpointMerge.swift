import Tensors

/// A source of named tensors (a checkpoint): names in file order and one tensor at a time, so a
/// merge holds only (models + 1) tensors at once. Formats' readers conform through a small adapter.
public protocol TensorSource {
    /// Every tensor name, in the checkpoint's order.
    var tensorNames: [String] { get }
    /// The tensor as Float32. Throws when it is missing or unreadable.
    func tensor(named name: String) throws -> Tensor
    /// Called once a merge is done reading `name` (mapped sources drop its pages from memory).
    func doneReading(_ name: String)
}

extension TensorSource {
    /// Nothing to release by default.
    public func doneReading(_ name: String) {}
}

/// An in-memory checkpoint (tests, small adapters).
public struct InMemoryTensorSource: TensorSource, Sendable {
    /// The tensors by name.
    public var tensors: [String: Tensor]
    /// Names in checkpoint order.
    public var tensorNames: [String]
    /// Wraps tensors; `order` defaults to sorted names.
    public init(_ tensors: [String: Tensor], order: [String]? = nil) {
        self.tensors = tensors
        self.tensorNames = order ?? tensors.keys.sorted()
    }
    /// The tensor, or `MergeError.missingTensor`.
    public func tensor(named name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw MergeError.missingTensor(name: name, source: "in-memory checkpoint") }
        return t
    }
}

/// A mergekit-config checkpoint merge, tensor by tensor (mergekit `run_merge` for the supported
/// methods on models of one architecture, without slices).
///
/// Each output tensor takes the base model's names (or the first model's for `linear`). Per
/// tensor, parameters resolve with mergekit's precedence (the model's own `parameters`, then the
/// top-level ones) and its layer position t = ℓ/(L−1) for tensors of `model.layers.ℓ.` (L layers;
/// 1 when L = 1) and t = 0 for the others (embeddings, final norm, lm_head).
public struct CheckpointMerge {
    /// The parsed mergekit config.
    public var config: MergekitConfig
    /// Seed of DARE's masks (mergekit's `--random-seed`; torch's stream is not reproduced).
    public var seed: UInt64

    /// A merge of `config` with DARE seed `seed`.
    public init(config: MergekitConfig, seed: UInt64 = 0) { self.config = config; self.seed = seed }

    /// The 0-based decoder layer of a Llama tensor name (`model.layers.ℓ.…`), or nil.
    public static func layerIndex(of name: String) -> Int? {
        guard let r = name.range(of: "layers.") else { return nil }
        let digits = name[r.upperBound...].prefix { $0.isNumber }
        guard !digits.isEmpty, name[r.upperBound...].dropFirst(digits.count).first == "." else { return nil }
        return Int(digits)
    }

    /// mergekit's layer position of a tensor for gradients.
    public static func layerPosition(of name: String, layerCount: Int) -> Double {
        guard let l = layerIndex(of: name) else { return 0 }
        return layerCount > 1 ? Double(l) / Double(layerCount - 1) : 1
    }

    func number(_ key: String, model: MergekitModelEntry?, tensor: String, t: Double) -> Double? {
        if let m = model, let p = m.parameters[key] { return p.number(tensor: tensor, t: t) }
        return config.parameters[key]?.number(tensor: tensor, t: t)
    }

    func bool(_ key: String, tensor: String, t: Double) -> Bool? {
        config.parameters[key]?.bool(tensor: tensor, t: t)
    }

    /// The method value for one tensor (shared parameters resolved at its position).
    public func method(forTensor name: String, t: Double) throws -> any MergeMethod {
        switch config.mergeMethod {
        case "linear":
            return LinearMerge(normalize: bool("normalize", tensor: name, t: t) ?? true)
        case "slerp":
            guard let tv = number("t", model: nil, tensor: name, t: t) else {
                throw MergeError.invalidConfig("slerp: no 't' applies to tensor '\(name)'")
            }
            return SlerpMerge(t: tv)
        default:
            guard let kind = GeneralizedTaskArithmetic.Kind(rawValue: config.mergeMethod) else {
                throw MergeError.unknownMethod(config.mergeMethod)
            }
            return GeneralizedTaskArithmetic(
                kind: kind, normalize: bool("normalize", tensor: name, t: t), rescale: bool("rescale", tensor: name, t: t),
                lambda: number("lambda", model: nil, tensor: name, t: t) ?? 1)
        }
    }

    /// What a run merges: the reference model whose tensor names and order the output takes
    /// (the base, or the first model for `linear`), the non-base entries, and the layer count.
    public struct Plan: Sendable {
        /// Model whose tensor names and order the output takes.
        public var referenceModel: String
        /// Whether the method reads the base model's tensors.
        public var usesBase: Bool
        /// The models merged into the base (all models for `linear`).
        public var entries: [MergekitModelEntry]
        /// Names in checkpoint order.
        public var tensorNames: [String]
        /// Decoder layers of the reference model (for gradients' t).
        public var layerCount: Int
    }

    /// Mutable state of a run: the DARE generator, advanced tensor by tensor in output order.
    public struct RunState: Sendable {
        /// The DARE mask generator.
        public var rng: SplitMix64
        /// Fresh state for a run seeded with `seed`.
        public init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    }

    /// Checks that every model reference has a source and every input holds every tensor of the
    /// reference model, and returns the plan. Throws naming the missing model or tensor.
    public func plan(sources: [String: any TensorSource]) throws -> Plan {
        let refs = Set(config.models.map(\.model) + (config.baseModel.map { [$0] } ?? []))
        for r in refs.sorted() where sources[r] == nil {
            throw MergeError.invalidConfig("no checkpoint given for model '\(r)'")
        }
        let usesBase = config.mergeMethod != "linear"
        let entries = usesBase ? config.models.filter { $0.model != config.baseModel } : config.models
        let referenceName = usesBase ? config.baseModel! : config.models[0].model
        let names = sources[referenceName]!.tensorNames
        for e in entries {
            let have = Set(sources[e.model]!.tensorNames)
            if let missing = names.first(where: { !have.contains($0) }) {
                throw MergeError.missingTensor(name: missing, source: e.model)
            }
        }
        let layerCount = (names.compactMap(Self.layerIndex(of:)).max() ?? -1) + 1
        // resolve every per-tensor parameter now, so a bad value fails before anything is written
        let needsWeight = config.mergeMethod != "slerp"
        let usesDensity = ["ties", "dare_ties", "dare_linear"].contains(config.mergeMethod)
        for name in names {
            let t = Self.layerPosition(of: name, layerCount: layerCount)
            _ = try method(forTensor: name, t: t)
            for e in entries {
                if needsWeight && number("weight", model: e, tensor: name, t: t) == nil {
                    throw MergeError.invalidParameter(name: "weight", value: "none",
                                                      reason: "\(config.mergeMethod) needs a weight for model '\(e.model)' (tensor '\(name)')")
                }
                if usesDensity, let d = number("density", model: e, tensor: name, t: t), !(d > 0 && d <= 1) {
                    throw MergeError.invalidParameter(name: "density", value: "\(d)",
                                                      reason: "must be in (0, 1] (model '\(e.model)', tensor '\(name)')")
                }
            }
        }
        return Plan(referenceModel: referenceName, usesBase: usesBase, entries: entries, tensorNames: names, layerCount: layerCount)
    }

    /// Merges one tensor (reads it from every input, holds models + 1 tensors).
    public func mergedTensor(named name: String, plan: Plan, sources: [String: any TensorSource],
                             state: inout RunState) throws -> Tensor {
        let t = Self.layerPosition(of: name, layerCount: plan.layerCount)
        let method = try method(forTensor: name, t: t)
        let base = plan.usesBase ? try sources[plan.referenceModel]!.tensor(named: name) : nil
        var inputs: [MergeInput] = []
        for e in plan.entries {
            let x = try sources[e.model]!.tensor(named: name)
            let density = number("density", model: e, tensor: name, t: t) ?? 1
            inputs.append(MergeInput(tensor: x, weight: number("weight", model: e, tensor: name, t: t), density: density))
        }
        return try method.merge(TensorMergeInputs(name: name, base: base, models: consume inputs), rng: &state.rng)
    }

    /// Runs the merge: `sources` maps each model reference of the config to its checkpoint;
    /// `emit` receives every output tensor in order. Every input must hold every tensor of the
    /// reference model with the same shape. Throws before emitting anything when a source or a
    /// tensor is missing.
    public func run(sources: [String: any TensorSource], emit: (String, Tensor) throws -> Void) throws {
        let plan = try plan(sources: sources)
        var state = RunState(seed: seed)
        for name in plan.tensorNames {
            try emit(name, try mergedTensor(named: name, plan: plan, sources: sources, state: &state))
            for source in sources.values { source.doneReading(name) }
        }
    }
}
