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
    /// `h` it sees (Δh computed from the activation before the shift): on every row, or for
    /// `positions == .last` on the rows of `HookContext.lastPromptRows` only.
    /// The hooks of a `.last` adapter throw `RuntimeError.unsupportedFeature` in a pass that
    /// does not say where its prompts end.
    public var hooks: [HookSite: Hook] {
        var out: [HookSite: Hook] = [:]
        let activation = activation, scale = scale, positions = positions
        for (layer, s) in layers {
            out[HookSite(site, layer: layer)] = Hook { x, context in
                switch positions {
                case .all:
                    let shift = s.shift(x, activation: activation)
                    x += scale == 1 ? shift : scale * shift
                case .last:
                    guard let rows = context.lastPromptRows else {
                        throw RuntimeError.unsupportedFeature(
                            "a steering adapter that shifts the last prompt token only (positions last) in a pass that does not say where its prompt ends (perplexity over text windows, a bare forward); use it with generate or eval --tasks",
                            source: "\(context.site)")
                    }
                    for r in rows {
                        let shift = s.shift(x.rows(r..<(r + 1)), activation: activation)
                        for j in 0..<x.columns { x[r, j] += scale * shift[0, j] }
                    }
                }
            }
        }
        return out
    }
}
