import Foundation
import Formats
import Tensors

/// A PEFT LoRA adapter folder: `adapter_config.json` and `adapter_model.safetensors` with tensors
/// `base_model.model.<module>.lora_A.weight` `[r, in]` and `.lora_B.weight` `[out, r]`.
/// Legacy `adapter_model.bin` pickles are read through Formats' restricted reader (executes nothing).
public enum PEFTAdapterFolder {
    /// File name of the config inside the folder.
    public static let configName = "adapter_config.json"
    /// File name of the tensors inside the folder.
    public static let weightsName = "adapter_model.safetensors"

    /// Reads an adapter folder. Throws naming the file when a part is missing or inconsistent.
    public static func read(_ path: String) throws -> PEFTLoRAAdapter {
        let cfgPath = path + "/" + configName, wPath = path + "/" + weightsName
        guard let data = FileManager.default.contents(atPath: cfgPath) else {
            throw MergeError.io(path: cfgPath, reason: "missing (not a PEFT adapter folder)")
        }
        let config = try PEFTLoRAConfig(json: data, path: cfgPath)
        var tensors: [String: Tensor] = [:]
        var source = wPath
        if FileManager.default.fileExists(atPath: wPath) {
            let file = try SafetensorsFile(path: wPath)
            for name in file.tensorNames where PEFTLoRAAdapter.moduleName(ofTensor: name) != nil {
                tensors[name] = try file.tensor(named: name)
            }
        } else if FileManager.default.fileExists(atPath: path + "/adapter_model.bin") {
            source = path + "/adapter_model.bin"
            tensors = try TorchPickleReader.load(path: source).filter { PEFTLoRAAdapter.moduleName(ofTensor: $0.key) != nil }
        } else {
            throw MergeError.io(path: wPath, reason: "missing (neither adapter_model.safetensors nor adapter_model.bin)")
        }
        return try PEFTLoRAAdapter(config: config, tensors: tensors, source: source)
    }

    /// Writes factors as a PEFT adapter folder PEFT can load: every module's factors are stored
    /// with scaling folded into B (B·s), r = the largest rank, lora_alpha = r, and differing
    /// ranks/alphas listed in rank_pattern/alpha_pattern by full module name (so every module's
    /// PEFT scaling is 1). Target modules are the modules' last name components.
    ///
    /// `useRSLoRA` writes `use_rslora: true` with the same factors, so PEFT loads them with scaling
    /// alpha/√r = √r: what PEFT's own `add_weighted_adapter` produces when the first combined
    /// adapter uses rsLoRA (it copies that flag into the new config).
    ///
    /// `alpha` (a trained LoRA of one rank and scaling alpha/r everywhere): B is stored as it is
    /// and `lora_alpha` = alpha, so the folder holds the factors that were trained (PEFT trains
    /// them on from there with the same dynamics). Refused when a module's scaling is not alpha/r.
    public static func write(_ modules: [String: LoRAUpdate], to path: String, baseModel: String? = nil,
                             useRSLoRA: Bool = false, alpha: Float? = nil, force: Bool = false) throws {
        guard !modules.isEmpty else { throw MergeError.incompatibleInputs("no LoRA modules to write") }
        if let f = modules.values.first(where: { $0.fanInFanOut }) {
            _ = f
            throw MergeError.unsupported("writing fan_in_fan_out adapters")
        }
        let names = modules.keys.sorted()
        let maxRank = modules.values.map(\.rank).max() ?? 1
        if let alpha {
            let expected = alpha / Float(maxRank)
            let mismatched = names.first { n in modules[n]!.rank != maxRank || abs(modules[n]!.scaling - expected) > 1e-6 * expected }
            guard !useRSLoRA, mismatched == nil else {
                throw MergeError.incompatibleInputs("lora_alpha \(alpha): \(mismatched ?? "rsLoRA") is not of rank \(maxRank) with scaling alpha/r")
            }
        }
        try OutputFolder.prepare(path, force: force)
        var records: [TensorRecord] = []
        var rankPattern: [(String, JSONValue)] = []
        for n in names {
            let f = modules[n]!
            records.append(SafetensorsWriter.record("base_model.model.\(n).lora_A.weight", f.a))
            records.append(SafetensorsWriter.record("base_model.model.\(n).lora_B.weight", f.scaling == 1 || alpha != nil ? f.b : f.scaling * f.b))
            if f.rank != maxRank { rankPattern.append((n, .int(f.rank))) }
        }
        let targets = Array(Set(names.map { String($0.split(separator: ".").last ?? Substring($0)) })).sorted()
        let config = JSONValue.object([
            ("base_model_name_or_path", baseModel.map { .string($0) } ?? .null),
            ("peft_type", .string("LORA")),
            ("task_type", .string("CAUSAL_LM")),
            ("r", .int(maxRank)),
            ("lora_alpha", alpha.map { $0 == $0.rounded() ? .int(Int($0)) : .float($0) } ?? .int(maxRank)),
            ("rank_pattern", .object(rankPattern)),
            ("alpha_pattern", .object(rankPattern)),
            ("target_modules", .array(targets.map { .string($0) })),
            ("lora_dropout", .number("0.0")),
            ("fan_in_fan_out", .bool(false)),
            ("use_rslora", .bool(useRSLoRA)),
            ("bias", .string("none")),
            ("inference_mode", .bool(true)),
        ])
        try SafetensorsWriter.write(records, metadata: ["format": "pt"], to: path + "/" + weightsName, force: force)
        let out = try AtomicFileWriter(path: path + "/" + configName, force: force)
        try out.write(config.serialized(indent: 2) + "\n")
        try out.commit()
    }
}
