import OrderedCollections

/// What a GGUF file holds, as far as `steertool convert` is concerned, decided from its metadata
/// (never from the file name).
public enum GGUFContent: String, Sendable, Equatable, CustomStringConvertible {
    /// A Llama model: `general.architecture = "llama"`, not an adapter, and the `llama.*`
    /// hyperparameters a model needs (`llama.embedding_length`, `llama.block_count`,
    /// `llama.attention.head_count`).
    case llamaModel
    /// A Gemma-3 text model: `general.architecture = "gemma3"`, not an adapter, with
    /// `gemma3.embedding_length`, `gemma3.block_count` and `gemma3.attention.head_count`.
    case gemma3Model
    /// A llama.cpp LoRA adapter (`general.type = "adapter"`, `adapter.type = "lora"`).
    case loraAdapter
    /// A llama.cpp control vector (`general.architecture = "controlvector"`).
    case controlVector
    /// Anything else: a file of named tensors with no layout steertool knows.
    case tensors

    /// The keys whose presence makes a `llama` GGUF a model.
    public static let llamaModelKeys = ["llama.embedding_length", "llama.block_count", "llama.attention.head_count"]

    /// Classifies GGUF metadata.
    public init(metadata: OrderedDictionary<String, GGUFValue>) {
        let arch = metadata["general.architecture"]?.stringValue
        if LlamaCppLoRAFile.isLoRA(metadata) {
            self = .loraAdapter
        } else if arch == ControlVectorFile.architecture {
            self = .controlVector
        } else if arch == LlamaMetadata.architecture, metadata["general.type"]?.stringValue ?? "model" == "model",
                  Self.llamaModelKeys.allSatisfy({ metadata[$0]?.intValue != nil }) {
            self = .llamaModel
        } else if arch == Gemma3Metadata.architecture, metadata["general.type"]?.stringValue ?? "model" == "model",
                  ["gemma3.embedding_length", "gemma3.block_count", "gemma3.attention.head_count"].allSatisfy({ metadata[$0]?.intValue != nil }) {
            self = .gemma3Model
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
