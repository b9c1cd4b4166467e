import ArgumentParser
import Foundation
import Runtime
import Tensors

/// `--model` and `--adapter` options shared by the commands that run a model.
struct ModelArguments: ParsableArguments {
    @Option(name: .long, help: "Model: Hugging Face folder (config.json + safetensors) or GGUF file.")
    var model: String

    @Option(name: .long, help: "Adapter applied unmerged (PEFT LoRA folder or steering adapter file); repeatable.")
    var adapter: [String] = []

    @OptionGroup var threadArguments: ThreadArguments

    /// Loads the model and applies every adapter.
    func load() throws -> LlamaModel {
        try threadArguments.apply()
        var m = try LlamaModel.load(path: model)
        for path in adapter {
            try AdapterLoading.apply(path: path, to: &m)
        }
        return m
    }
}

/// Token ids from `--tokens 1,2,3`.
func parseTokenList(_ s: String) throws -> [Int] {
    let parts = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    var ids: [Int] = []
    for p in parts {
        guard let v = Int(p) else { throw ValidationError("--tokens: '\(p)' is not an integer token id") }
        ids.append(v)
    }
    guard !ids.isEmpty else { throw ValidationError("--tokens is empty") }
    return ids
}
