import Tensors

/// A PEFT LoRA adapter in memory: its config and per-module factors keyed by the base model's
/// module name (`model.layers.0.self_attn.q_proj`). Built from the adapter's state dict names
/// `base_model.model.<module>.lora_A.weight` `[r, in]` and `.lora_B.weight` `[out, r]`.
public struct PEFTLoRAAdapter: Sendable {
    /// The adapter's adapter_config.json.
    public var config: PEFTLoRAConfig
    /// Module name → factors with PEFT's scaling for that module.
    public var modules: [String: LoRAUpdate]

    /// The module name of a PEFT adapter tensor name and which factor it is ("A"/"B"), or nil
    /// for other tensors.
    public static func moduleName(ofTensor name: String) -> (module: String, factor: String)? {
        var n = Substring(name)
        for p in ["base_model.model."] where n.hasPrefix(p) { n = n.dropFirst(p.count) }
        for (suffix, f) in [(".lora_A.weight", "A"), (".lora_B.weight", "B")] where n.hasSuffix(suffix) {
            return (String(n.dropLast(suffix.count)), f)
        }
        return nil
    }

    /// Groups a state dict into modules, checking that A `[r, in]` and B `[out, r]` pair up and
    /// that r is the rank PEFT's rank_pattern gives the module. Throws naming the tensor otherwise.
    public init(config: PEFTLoRAConfig, tensors: [String: Tensor], source: String = "adapter") throws {
        var a: [String: Tensor] = [:], b: [String: Tensor] = [:]
        for (name, t) in tensors {
            guard let (module, f) = Self.moduleName(ofTensor: name) else { continue }
            guard t.rank == 2 else { throw MergeError.shapeMismatch(tensor: name, expected: [-1, -1], found: t.shape.dims) }
            if f == "A" { a[module] = t } else { b[module] = t }
        }
        var modules: [String: LoRAUpdate] = [:]
        for (module, ta) in a {
            guard let tb = b[module] else { throw MergeError.missingTensor(name: "base_model.model.\(module).lora_B.weight", source: source) }
            let r = config.rank(forModule: module)
            guard ta.rows == r, tb.columns == r else {
                throw MergeError.shapeMismatch(tensor: "base_model.model.\(module).lora_A.weight", expected: [r, ta.columns], found: ta.shape.dims)
            }
            modules[module] = LoRAUpdate(a: ta, b: tb, scaling: config.scaling(forModule: module), fanInFanOut: config.fanInFanOut)
        }
        if let orphan = b.keys.first(where: { a[$0] == nil }) {
            throw MergeError.missingTensor(name: "base_model.model.\(orphan).lora_A.weight", source: source)
        }
        self.config = config
        self.modules = modules
    }

    /// The adapter's updates folded into base weights (PEFT `merge_and_unload`), streaming:
    /// every base tensor is read once, `<module>.weight` gets W + ΔW, others pass through, and
    /// `emit` receives each output tensor in the base's order. Throws when a module has no base
    /// weight or shapes disagree, before emitting anything for the mismatched tensor.
    public func merge(into base: any TensorSource, emit: (String, Tensor) throws -> Void) throws {
        let names = Set(base.tensorNames)
        for m in modules.keys.sorted() where !names.contains(m + ".weight") {
            throw MergeError.missingTensor(name: m + ".weight", source: "base model")
        }
        for name in base.tensorNames {
            let w = try base.tensor(named: name)
            if name.hasSuffix(".weight"), let f = modules[String(name.dropLast(".weight".count))] {
                try emit(name, try f.merged(into: w, name: name))
            } else {
                try emit(name, w)
            }
        }
    }
}
