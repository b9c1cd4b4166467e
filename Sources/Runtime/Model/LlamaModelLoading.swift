import Foundation
import Formats
import Tensors

extension LlamaModel {
    /// Loads a model from a Hugging Face folder (`config.json` with `model.safetensors` or a
    /// sharded `model.safetensors.index.json`), a bare `.safetensors` file next to a
    /// `config.json`, or a GGUF file (`.gguf`). Weights are converted to f32 at load.
    /// - Throws: `FormatsError`/`SafetensorsError`/`GGUFError` for unreadable files,
    ///   `RuntimeError` for configs the runtime cannot run and missing or misshapen tensors
    ///   (naming the tensor and the path).
    public static func load(path: String) throws -> LlamaModel {
        if path.lowercased().hasSuffix(".gguf") { return try loadGGUF(path: path) }
        let checkpoint = try Checkpoint(path: path)
        let configPath = checkpoint.directory + "/config.json"
        guard let json = checkpoint.configJSON else {
            throw RuntimeError.invalidConfig(source: configPath, reason: "config.json not found next to the weights")
        }
        let config = try LlamaConfig.load(configJSON: json, source: configPath)
        try rejectSlidingWindow(configJSON: json, config: config, source: configPath)
        let weights = try LlamaWeights.load(config: config, source: path) { name in
            guard checkpoint.info(name) != nil else { throw RuntimeError.missingTensor(name: name, source: path) }
            return try checkpoint.tensor(named: name)
        }
        return try LlamaModel(config: config, weights: weights, source: path)
    }

    /// Mistral's and Qwen2's sliding-window attention is not implemented: accept a config only
    /// when its window is absent, null, disabled (`use_sliding_window: false`) or at least the
    /// context length (then it never masks anything).
    static func rejectSlidingWindow(configJSON: Data, config: LlamaConfig, source: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: configJSON) as? [String: Any] else { return }
        if let use = object["use_sliding_window"] as? Bool, !use { return }
        guard let window = object["sliding_window"] as? Int else { return }
        if window < config.maxPositionEmbeddings {
            throw RuntimeError.unsupportedFeature(
                "sliding_window \(window) < max_position_embeddings \(config.maxPositionEmbeddings)", source: source)
        }
    }

    static func loadGGUF(path: String) throws -> LlamaModel {
        throw RuntimeError.unsupportedFeature("GGUF loading (waiting for the Formats GGUF reader)", source: path)
    }
}
