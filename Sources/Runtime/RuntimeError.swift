/// Errors of the Runtime module (model loading, tokenization, forward pass, generation),
/// each carrying what and where.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// The model's architecture is not one steertool runs.
    case unsupportedArchitecture(String, source: String)
    /// config.json (or the GGUF metadata mapped to it) could not be decoded.
    case invalidConfig(source: String, reason: String)
    /// A configuration feature the runtime does not implement (e.g. a RoPE type, MLP biases,
    /// sliding-window attention), named with where it came from.
    case unsupportedFeature(String, source: String)
    /// A tensor the architecture needs is absent from the checkpoint or adapter.
    case missingTensor(name: String, source: String)
    /// A tensor's shape disagrees with the config (dimensions outermost first).
    case shapeMismatch(tensor: String, expected: [Int], found: [Int], source: String)
    /// A token id outside `0..<vocabSize` at a 0-based position of the input.
    case tokenOutOfRange(token: Int, position: Int, vocabSize: Int)
    /// An adapter that does not fit the model (wrong layer, width, projection or rank).
    case adapterMismatch(adapter: String, reason: String)
    /// A hook replaced its activation with one of another shape.
    case hookChangedShape(site: HookSite, expected: [Int], found: [Int])
    /// An argument outside what the operation accepts.
    case invalidArgument(String)
    /// A run stopped on request (Ctrl-C) after `after` completed steps; nothing was written.
    case interrupted(after: Int)
    /// A line of a data file that cannot be used (1-based `line`).
    case invalidData(file: String, line: Int, reason: String)
    /// A weight matrix stored in a type the chosen weight storage cannot hold in place (a GGUF
    /// Q2_K, Q3_K, IQ* or TQ* tensor under `.native`); `held` lists what it can.
    case unsupportedTensorType(tensor: String, type: String, source: String, held: String)
    /// Loading `source` with this weight storage would own `needed` bytes and only `available`
    /// are free (`LoadMemoryCheck`); `largestTensor` names the biggest tensor and its shape.
    case notEnoughMemory(source: String, storage: String, needed: Int, available: Int, largestTensor: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(arch, source):
            return "\(source): architecture \(arch) is not supported "
                + "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Gemma3ForCausalLM; GGUF llama and gemma3)"
        case let .invalidConfig(source, reason):
            return "\(source): invalid model config: \(reason)"
        case let .unsupportedFeature(what, source):
            return "\(source): unsupported: \(what)"
        case let .missingTensor(name, source):
            return "\(source): missing tensor '\(name)'"
        case let .shapeMismatch(tensor, expected, found, source):
            return "\(source): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .tokenOutOfRange(token, position, vocab):
            return "token id \(token) at position \(position) is outside the vocabulary (0..<\(vocab))"
        case let .adapterMismatch(adapter, reason):
            return "adapter \(adapter) does not fit the model: \(reason)"
        case let .hookChangedShape(site, expected, found):
            return "hook at \(site) changed the activation shape from \(expected) to \(found)"
        case let .invalidArgument(what):
            return what
        case let .interrupted(after):
            return "interrupted after \(after) step(s); nothing written"
        case let .invalidData(file, line, reason):
            return "\(file):\(line): \(reason)"
        case let .unsupportedTensorType(tensor, type, source, held):
            return "\(source): tensor '\(tensor)' is \(type), which is not computed in place (\(held)); "
                + "load it with --weights f32 (dequantized at load) or --weights q8_0"
        case let .notEnoughMemory(source, storage, needed, available, largest):
            func gb(_ b: Int) -> String { String(format: "%.1f GB", Double(b) / 1e9) }
            let hint = storage == WeightStorage.native.rawValue
                ? "" : "; use --weights native to compute with the file's matrices in place"
            return "\(source): loading with --weights \(storage) needs \(gb(needed)) of memory (largest tensor \(largest)) "
                + "and \(gb(available)) is available" + hint
        }
    }
}
