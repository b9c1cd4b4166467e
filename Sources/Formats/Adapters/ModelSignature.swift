import OrderedCollections

/// The model an adapter was made for, as adapter files record it: the Hugging Face architecture
/// class (`LlamaForCausalLM`, `Qwen3ForCausalLM`, …), the residual width d and the number of
/// decoder layers. Applying an adapter to a model with another signature is refused.
public struct ModelSignature: Sendable, Equatable, CustomStringConvertible {
    /// `architectures[0]` as the runtime resolves it.
    public var architecture: String
    /// d, the residual stream's width.
    public var hiddenSize: Int
    /// Decoder layers.
    public var layers: Int

    /// A signature.
    public init(architecture: String, hiddenSize: Int, layers: Int) {
        self.architecture = architecture; self.hiddenSize = hiddenSize; self.layers = layers
    }

    /// Whether an adapter made for `self` fits a model of signature `other`: the same width and
    /// layer count and the same computation. Mistral's class is Llama's computation (with a
    /// sliding window the model config carries, not the adapter), and llama.cpp writes Mistral
    /// GGUFs as `llama`, so an adapter distilled on a Mistral folder applies to its GGUF and back.
    public func matches(_ other: ModelSignature) -> Bool {
        hiddenSize == other.hiddenSize && layers == other.layers
            && Self.computation(architecture) == Self.computation(other.architecture)
    }

    /// The architecture whose computation `name` shares ("MistralForCausalLM" → "LlamaForCausalLM").
    private static func computation(_ name: String) -> String {
        name == "MistralForCausalLM" ? "LlamaForCausalLM" : name
    }

    /// "Qwen3ForCausalLM (d 64, 3 layers)".
    public var description: String { "\(architecture) (d \(hiddenSize), \(layers) layers)" }

    /// Metadata keys of steertool's adapter files.
    static let keys = (architecture: "model_architecture", hiddenSize: "model_hidden_size", layers: "model_layers")

    /// The signature recorded in file metadata; nil when the file records none (files written
    /// before signatures). - Throws: `FormatsError.invalidModel` naming `file` when the keys are
    /// partial or malformed.
    static func read(_ m: OrderedDictionary<String, String>, file: String) throws -> ModelSignature? {
        let (a, d, l) = (m[keys.architecture], m[keys.hiddenSize], m[keys.layers])
        if a == nil && d == nil && l == nil { return nil }
        guard let a, !a.isEmpty, let d = d.flatMap(Int.init), d > 0, let l = l.flatMap(Int.init), l > 0 else {
            throw FormatsError.invalidModel(file: file, reason: "model signature \(keys.architecture)=\(a ?? "missing"), "
                                            + "\(keys.hiddenSize)=\(d ?? "missing"), \(keys.layers)=\(l ?? "missing") is incomplete or malformed")
        }
        return ModelSignature(architecture: a, hiddenSize: d, layers: l)
    }

    /// The metadata entries recording this signature.
    var metadata: [(String, String)] {
        [(Self.keys.architecture, architecture), (Self.keys.hiddenSize, String(hiddenSize)), (Self.keys.layers, String(layers))]
    }
}
