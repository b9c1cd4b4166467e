import ArgumentParser
import Foundation
import Runtime
import Tensors

/// `--model` and `--adapter` options shared by the commands that run a model.
struct ModelArguments: ParsableArguments {
    @Option(name: .long, help: "Model: Hugging Face folder (config.json + safetensors) or GGUF file.")
    var model: String

    @Option(name: .long, help: "Adapter applied unmerged, repeatable: PEFT LoRA folder, steering file (.safetensors), llama.cpp control vector (.gguf) or joint bundle folder; append :<scale> to scale a steering part (vec.safetensors:0.5).")
    var adapter: [String] = []

    @Option(name: .long, help: WeightStorage.optionHelp)
    var weights: WeightStorage = .native

    @OptionGroup var threadArguments: ThreadArguments

    /// Loads the model (matrices held as `--weights` says) and applies every adapter.
    func load() throws -> LlamaModel {
        try threadArguments.apply()
        var m = try LlamaModel.load(path: model, storage: weights)
        for path in adapter {
            try AdapterLoading.apply(path: path, to: &m)
        }
        return m
    }
}

extension WeightStorage: ExpressibleByArgument {
    /// The help of every command's `--weights` option.
    static let optionHelp = ArgumentHelp("How the weight matrices are held: native (the file's dtype: BF16/F16 and GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K used in place from the mapped file, a safetensors checkpoint's other dtypes converted to f32; a GGUF of another type is refused), f32 (everything widened to f32: the exactness reference), or q8_0 (a Q8_0 GGUF in place, anything else quantized at load).")
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
