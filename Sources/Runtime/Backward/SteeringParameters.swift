import Tensors

extension SteeringLayer {
    /// The layer's tensors in a fixed order: down, up, bias (those present).
    public var parameterTensors: [Tensor] { [down, up, bias].compactMap { $0 } }

    /// The same layer with its present tensors replaced, in `parameterTensors` order, taken
    /// from the front of `values` (which is advanced past them).
    func replacingParameters(_ values: inout ArraySlice<Tensor>) -> SteeringLayer {
        var s = self
        if s.down != nil { s.down = values.removeFirst() }
        if s.up != nil { s.up = values.removeFirst() }
        if s.bias != nil { s.bias = values.removeFirst() }
        return s
    }
}

extension SteeringAdapter {
    /// All trainable tensors, layers ascending, each layer's in `SteeringLayer.parameterTensors`
    /// order (the order `SteeringGradients.tensors(matching:)` returns gradients in).
    public var parameterTensors: [Tensor] {
        layers.keys.sorted().flatMap { layers[$0]!.parameterTensors }
    }

    /// The adapter with its tensors replaced by `values` (in `parameterTensors` order, same shapes).
    public func replacingParameters(_ values: [Tensor]) -> SteeringAdapter {
        var slice = values[...]
        var out = self
        for l in layers.keys.sorted() { out.layers[l] = layers[l]!.replacingParameters(&slice) }
        precondition(slice.isEmpty, "replacingParameters: \(slice.count) tensors left over")
        return out
    }
}

extension SteeringGradients {
    /// The gradients in `adapter.parameterTensors` order.
    public func tensors(matching adapter: SteeringAdapter) -> [Tensor] {
        adapter.layers.keys.sorted().flatMap { layers[$0]?.parameterTensors ?? [] }
    }
}

extension LoRAWeights {
    /// The (layer, projection) pairs with a rank > 0 module, layers ascending, projections in
    /// `LlamaProjection.allCases` order: the order of `parameterTensors`.
    public var moduleKeys: [(layer: Int, projection: LlamaProjection)] {
        layers.keys.sorted().flatMap { l in
            LlamaProjection.allCases.filter { (layers[l]?[$0]?.rank ?? 0) > 0 }.map { (l, $0) }
        }
    }

    /// All trainable tensors: A then B of each module, in `moduleKeys` order.
    public var parameterTensors: [Tensor] {
        moduleKeys.flatMap { k in [layers[k.layer]![k.projection]!.a, layers[k.layer]![k.projection]!.b] }
    }

    /// The LoRA with its factors replaced by `values` (in `parameterTensors` order, same shapes).
    public func replacingParameters(_ values: [Tensor]) -> LoRAWeights {
        var out = self
        for (i, k) in moduleKeys.enumerated() {
            out.layers[k.layer]![k.projection]!.a = values[2 * i]
            out.layers[k.layer]![k.projection]!.b = values[2 * i + 1]
        }
        return out
    }

    /// Number of parameters (A and B of every module).
    public var parameterCount: Int { parameterTensors.reduce(0) { $0 + $1.count } }
}

extension SteeringGradients {
    /// The LoRA gradients in `lora.parameterTensors` order.
    public func loraTensors(matching lora: LoRAWeights) -> [Tensor] {
        lora.moduleKeys.flatMap { k in [self.lora[k.layer]![k.projection]!.a, self.lora[k.layer]![k.projection]!.b] }
    }
}
