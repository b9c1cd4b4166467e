import Formats

extension LlamaModel {
    /// Adds both parts of a joint adapter bundle (`Formats.JointAdapterBundle`): its LoRA inside
    /// the projections and its steering adapter at its site, both unmerged. `scale` multiplies
    /// the steering part only.
    /// - Throws: `FormatsError` for a malformed bundle, `RuntimeError.adapterMismatch` when a part
    ///   does not fit this model.
    public mutating func addJointBundle(path: String, scale: Float = 1) throws {
        let parts = try JointAdapterBundle.read(path)
        try add(LoRAWeights.load(directory: parts.loraPath))
        try add(SteeringAdapter.load(path: parts.steeringPath, scale: scale), name: parts.steeringPath)
    }
}
