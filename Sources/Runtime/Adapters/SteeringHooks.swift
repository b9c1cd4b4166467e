import Tensors

extension SteeringAdapter {
    /// Checks the adapter against `config`: layers in range, D and U `[d, r]` with equal r,
    /// b `[d]`. `name` identifies the adapter in errors.
    /// - Throws: `RuntimeError.adapterMismatch`.
    public func validate(for config: LlamaConfig, name: String) throws {
        let d = config.hiddenSize
        for (layer, s) in layers {
            guard layer >= 0, layer < config.numHiddenLayers else {
                throw RuntimeError.adapterMismatch(adapter: name, reason: "layer \(layer) outside 0..<\(config.numHiddenLayers)")
            }
            if let down = s.down, let up = s.up {
                guard down.rank == 2, up.rank == 2, down.shape[0] == d, up.shape.dims == down.shape.dims else {
                    throw RuntimeError.adapterMismatch(
                        adapter: name, reason: "layers.\(layer): down \(down.shape) and up \(up.shape) must both be [\(d), r]")
                }
            }
            if let b = s.bias, b.shape.dims != [d] {
                throw RuntimeError.adapterMismatch(adapter: name, reason: "layers.\(layer).bias has shape \(b.shape), expected [\(d)]")
            }
        }
    }

    /// One hook per steered layer at `site(layer)` that adds `scale · Δh(h)` to the activation
    /// `h` it sees (Δh computed from the activation before the shift).
    public var hooks: [HookSite: Hook] {
        var out: [HookSite: Hook] = [:]
        let activation = activation, scale = scale
        for (layer, s) in layers {
            out[HookSite(site, layer: layer)] = Hook { x, _ in
                let shift = s.shift(x, activation: activation)
                x += scale == 1 ? shift : scale * shift
            }
        }
        return out
    }
}
