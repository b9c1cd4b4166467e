import Formats
import Tensors

extension LoRAWeights {
    /// Converts a PEFT LoRA adapter (Formats' `PEFTAdapter`, with rank/alpha patterns, rsLoRA
    /// and `layers_to_transform` already resolved per module) into per-layer, per-projection
    /// factors. `name` identifies it in errors.
    /// - Throws: `RuntimeError.adapterMismatch` for `fan_in_fan_out` (meaningless for Llama's
    ///   linear layers), a module that is not one of the seven projections of a layer, or a
    ///   module adapted twice.
    public init(peft: PEFTAdapter, name: String) throws {
        guard !peft.config.fanInFanOut else {
            throw RuntimeError.adapterMismatch(adapter: name, reason: "fan_in_fan_out is set; Llama projections are nn.Linear")
        }
        var layers: [Int: [LlamaProjection: LoRAFactors]] = [:]
        for module in peft.modules {
            let last = module.name.split(separator: ".").last.map(String.init) ?? ""
            guard let layer = module.layer, let projection = LlamaProjection(rawValue: last),
                  module.name == projection.modulePath(layer: layer) else {
                throw RuntimeError.adapterMismatch(
                    adapter: name, reason: "module '\(module.name)' is not a projection of a decoder layer")
            }
            guard layers[layer]?[projection] == nil else {
                throw RuntimeError.adapterMismatch(adapter: name, reason: "module '\(module.name)' is adapted twice")
            }
            layers[layer, default: [:]][projection] = LoRAFactors(a: module.a, b: module.b, scale: module.scale)
        }
        self.init(name: name, layers: layers)
    }

    /// Reads a PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
    public static func load(directory: String) throws -> LoRAWeights {
        try LoRAWeights(peft: PEFTAdapter.load(directory: directory), name: directory)
    }
}

extension SteeringAdapter {
    /// Converts a steertool steering file. The site is read as a `HookSiteKind` raw value
    /// ("block_output") or its case name ("blockOutput"); the activation as "identity" or "silu";
    /// the positions as "all" or "last".
    /// - Throws: `RuntimeError.adapterMismatch` for an unknown site, activation or positions, or
    ///   a layer holding only one of down/up.
    public init(file: SteeringAdapterFile, name: String, scale: Float = 1) throws {
        let siteKind = HookSiteKind(rawValue: file.site)
            ?? HookSiteKind.allCases.first { "\($0)" == file.site }
        guard let siteKind else {
            throw RuntimeError.adapterMismatch(adapter: name, reason: "unknown site '\(file.site)'")
        }
        guard let activation = SteeringActivation(rawValue: file.activation.lowercased()) else {
            throw RuntimeError.adapterMismatch(adapter: name, reason: "unknown activation '\(file.activation)'")
        }
        guard let positions = SteeringPositions(rawValue: file.positions) else {
            throw RuntimeError.adapterMismatch(adapter: name, reason: "unknown positions '\(file.positions)' (all or last)")
        }
        var layers: [Int: SteeringLayer] = [:]
        for l in file.layers {
            guard (l.down == nil) == (l.up == nil) else {
                throw RuntimeError.adapterMismatch(adapter: name, reason: "layers.\(l.index) has only one of down and up")
            }
            layers[l.index] = SteeringLayer(down: l.down, up: l.up, bias: l.bias)
        }
        self.init(site: siteKind, activation: activation, layers: layers, scale: scale, madeFor: file.modelSignature,
                  positions: positions)
    }

    /// Reads a steering adapter file.
    public static func load(path: String, scale: Float = 1) throws -> SteeringAdapter {
        try SteeringAdapter(file: SteeringAdapterFile.load(path: path), name: path, scale: scale)
    }

    /// A llama.cpp control vector as a post-block steering adapter: `direction.k` is added to the
    /// output of 0-based block k (see Formats' `ControlVectorFile` for the derivation), times `scale`.
    public init(controlVector: ControlVectorFile, scale: Float = 1) {
        var layers: [Int: SteeringLayer] = [:]
        for (k, v) in controlVector.directions { layers[k] = SteeringLayer(bias: Tensor(vector: v)) }
        self.init(site: .blockOutput, activation: .identity, layers: layers, scale: scale)
    }
}
