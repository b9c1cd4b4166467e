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
