import OrderedCollections

/// What a GGUF file holds, as far as `steertool convert` is concerned, decided from its metadata
/// (never from the file name).
public enum GGUFContent: String, Sendable, Equatable, CustomStringConvertible {
    /// A Llama-family model: `general.architecture` "llama" (Llama, Mistral), "qwen2" or
    /// "qwen3", not an adapter, and the `<arch>.*` hyperparameters a model needs
    /// (`<arch>.embedding_length`, `<arch>.block_count`, `<arch>.attention.head_count`).
    case llamaModel
    /// A Gemma-3 text model: the same with `gemma3` (`GGUFModelArchitecture.modelKeys`).
    case gemma3Model
    /// A llama.cpp LoRA adapter (`general.type = "adapter"`, `adapter.type = "lora"`).
    case loraAdapter
    /// A llama.cpp control vector (`general.architecture = "controlvector"`).
    case controlVector
    /// Anything else: a file of named tensors with no layout steertool knows.
    case tensors

    /// Classifies GGUF metadata.
    public init(metadata: OrderedDictionary<String, GGUFValue>) {
        let arch = metadata["general.architecture"]?.stringValue
        if LlamaCppLoRAFile.isLoRA(metadata) {
            self = .loraAdapter
        } else if arch == ControlVectorFile.architecture {
            self = .controlVector
        } else if let model = GGUFModelArchitecture(metadata: metadata), metadata["general.type"]?.stringValue ?? "model" == "model",
                  model.modelKeys.allSatisfy({ metadata[$0]?.intValue != nil }) {
            self = model == .gemma3 ? .gemma3Model : .llamaModel
        } else {
            self = .tensors
        }
    }

    public var description: String {
        switch self {
        case .llamaModel: "Llama model"
        case .gemma3Model: "Gemma-3 model"
        case .loraAdapter: "llama.cpp LoRA adapter"
        case .controlVector: "llama.cpp control vector"
        case .tensors: "tensor file"
        }
    }
}
