import Runtime

/// Reads adapter files for the CLI and adds them to a model.
enum AdapterLoading {
    static func apply(path: String, to model: inout LlamaModel) throws {
        throw RuntimeError.unsupportedFeature("adapters (waiting for the Formats PEFT/steering readers)", source: path)
    }
}
