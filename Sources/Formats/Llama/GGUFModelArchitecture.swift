import Foundation

/// The model architectures steertool reads from and writes to GGUF (`general.architecture`), and
/// what differs between them in a file: the metadata ⇄ config.json mapping, the per-layer tensor
/// table (`LlamaTensorName`), and whether norm weights are stored as 1 + w (Gemma's converter adds
/// the 1 that Hugging Face's Gemma checkpoints leave to the norm).
public enum GGUFModelArchitecture: String, Sendable, CaseIterable {
    case llama = "llama", gemma3 = "gemma3"

    /// The architecture of a GGUF's metadata; nil for one steertool does not read as a model.
    public init?(metadata: OrderedDictionary<String, GGUFValue>) {
        guard let name = metadata["general.architecture"]?.stringValue else { return nil }
        self.init(rawValue: name)
    }

    /// The architecture a Hugging Face config.json converts to: gemma3 for the Gemma-3 text model
    /// (`Gemma3ForCausalLM` or model_type `gemma3_text`), llama otherwise.
    public init(configJSON data: Data) {
        let json = try? JSONParser.parse([UInt8](data))
        let gemma3 = json?["architectures"]?.arrayValue?.first?.stringValue == "Gemma3ForCausalLM"
            || json?["model_type"]?.stringValue == "gemma3_text"
        self = gemma3 ? .gemma3 : .llama
    }

    /// Norm weights are stored as 1 + w where Hugging Face stores w.
    public var normWeightsHoldOne: Bool { self == .gemma3 }

    /// The metadata keys whose presence makes a GGUF of this architecture a model.
    public var modelKeys: [String] { ["embedding_length", "block_count", "attention.head_count"].map { rawValue + "." + $0 } }

    /// HF config.json bytes for a GGUF of this architecture (`LlamaMetadata` / `Gemma3Metadata`).
    /// - Throws: `FormatsError.invalidModel` for a missing key or another architecture.
    public func configJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, tensorNames: [String],
                           source: String = "GGUF") throws -> Data {
        switch self {
        case .llama: try LlamaMetadata.configJSON(fromGGUF: metadata, tensorNames: tensorNames, source: source)
        case .gemma3: try Gemma3Metadata.configJSON(fromGGUF: metadata, tensorNames: tensorNames, source: source)
        }
    }
}
