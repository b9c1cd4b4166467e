import Foundation

/// The model architectures steertool reads from and writes to GGUF (`general.architecture`), and
/// what differs between them in a file: the metadata ⇄ config.json mapping, the per-layer tensor
/// table (`LlamaTensorName`: Llama's Q/K rows permuted, the others' not), and whether norm weights
/// are stored as 1 + w (Gemma's converter adds the 1 that Hugging Face's Gemma checkpoints leave
/// to the norm). Mistral is written as `llama`, as llama.cpp's converter does.
public enum GGUFModelArchitecture: String, Sendable, CaseIterable {
    case llama = "llama", gemma3 = "gemma3", qwen2 = "qwen2", qwen3 = "qwen3"

    /// The architecture of a GGUF's metadata; nil for one steertool does not read as a model.
    public init?(metadata: OrderedDictionary<String, GGUFValue>) {
        guard let name = metadata["general.architecture"]?.stringValue else { return nil }
        self.init(rawValue: name)
    }

    /// The architecture a Hugging Face config.json converts to, by `architectures[0]` or else
    /// `model_type`: gemma3 for the Gemma-3 text model, qwen2 / qwen3 for Qwen2 / Qwen3, llama
    /// otherwise (Llama, Mistral).
    public init(configJSON data: Data) {
        let json = try? JSONParser.parse([UInt8](data))
        if let name = json?["architectures"]?.arrayValue?.first?.stringValue {
            self.init(huggingFaceClass: name)
        } else {
            let type = json?["model_type"]?.stringValue
            self = Self.allCases.first { $0.huggingFaceNames.modelType == type } ?? .llama
        }
    }

    /// The architecture a Hugging Face class converts to (`huggingFaceNames` read backwards):
    /// llama for Llama, Mistral and any class not listed.
    public init(huggingFaceClass name: String) {
        self = Self.allCases.first { $0.huggingFaceNames.architecture == name } ?? .llama
    }

    /// The Hugging Face class and `model_type` a GGUF of this architecture becomes.
    public var huggingFaceNames: (architecture: String, modelType: String) {
        switch self {
        case .llama: ("LlamaForCausalLM", "llama")
        case .gemma3: ("Gemma3ForCausalLM", "gemma3_text")
        case .qwen2: ("Qwen2ForCausalLM", "qwen2")
        case .qwen3: ("Qwen3ForCausalLM", "qwen3")
        }
    }

    /// Norm weights are stored as 1 + w where Hugging Face stores w.
    public var normWeightsHoldOne: Bool { self == .gemma3 }

    /// The metadata keys whose presence makes a GGUF of this architecture a model.
    public var modelKeys: [String] { ["embedding_length", "block_count", "attention.head_count"].map { rawValue + "." + $0 } }

    /// HF config.json bytes for `file`, a GGUF of this architecture: its metadata, its tensor
    /// names and the rows of its `token_embd.weight` (`configJSON(fromGGUF:tensorNames:embeddingRows:source:)`).
    /// - Throws: `FormatsError.invalidModel` for a missing key or another architecture.
    public func configJSON(of file: GGUFFile, source: String) throws -> Data {
        try configJSON(fromGGUF: file.metadata, tensorNames: file.tensorNames,
                       embeddingRows: file.info("token_embd.weight")?.shape.dims.first, source: source)
    }

    /// HF config.json bytes for a GGUF of this architecture (`LlamaMetadata` / `Gemma3Metadata`).
    /// `embeddingRows` (the rows of `token_embd.weight`) gives the vocabulary size of a file
    /// without `<arch>.vocab_size` or a token list (a Qwen GGUF written from a folder without a
    /// tokenizer).
    /// - Throws: `FormatsError.invalidModel` for a missing key or another architecture.
    public func configJSON(fromGGUF metadata: OrderedDictionary<String, GGUFValue>, tensorNames: [String],
                           embeddingRows: Int? = nil, source: String = "GGUF") throws -> Data {
        switch self {
        case .llama, .qwen2, .qwen3:
            try LlamaMetadata.configJSON(fromGGUF: metadata, tensorNames: tensorNames, embeddingRows: embeddingRows, source: source,
                                         architecture: self)
        case .gemma3: try Gemma3Metadata.configJSON(fromGGUF: metadata, tensorNames: tensorNames, source: source)
        }
    }
}
