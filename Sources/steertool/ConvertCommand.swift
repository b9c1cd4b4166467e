import ArgumentParser
import Foundation
import Formats
import Merge
import Runtime
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// `steertool convert <input> <output> [--type …] [--base …] [--force]`: what converts to what is
/// decided from the files' contents (see `discussion`); the Formats module does the work.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert models (Llama, Mistral, Qwen2, Qwen3, Gemma-3), LoRA adapters, control vectors and plain tensor files between GGUF and safetensors / Hugging Face folders.",
        discussion: """
        The input's contents decide the conversion (a GGUF by its metadata):
          HF model folder (or its .safetensors / index.json) -> .gguf   Llama / Mistral model (Q/K rows permuted as
                                                                       convert_hf_to_gguf.py), Qwen2 / Qwen3 (qwen2 / qwen3
                                                                       files, rows in HF order), or Gemma-3 text model (norm
                                                                       weights stored as 1 + w; its vocabulary is not written yet)
          Llama, Qwen or Gemma-3 model .gguf -> folder                 HF folder: model.safetensors, config.json, tokenizer.json
                                                                       (gpt2-style vocabularies; Gemma norms back to w)
          LoRA adapter .gguf (general.type=adapter) -> folder          PEFT folder: adapter_config.json + adapter_model.safetensors
          PEFT folder (adapter_config.json) -> .gguf                   llama.cpp LoRA GGUF (convert_lora_to_gguf.py layout)
          steering adapter .safetensors <-> control vector .gguf       vector-kind steering adapters only
          any other .gguf -> .safetensors                              every tensor dequantized to --type (f32, f16, bf16;
                                                                       default f32), integer tensors kept, names kept,
                                                                       GGUF metadata as __metadata__ strings (arrays as
                                                                       JSON, types in "gguf.value_types")
          any other .safetensors -> .gguf                              tensors, dtypes and metadata kept
        A Llama model .gguf written to a .safetensors file converts as a plain tensor file (GGUF names).
        A LoRA GGUF records its base model's architecture (llama for Llama and Mistral, qwen2, qwen3,
        gemma3). PEFT -> GGUF needs the base model (--base, or the adapter's base_model_name_or_path
        when it is a local folder) for that architecture and, for llama, the head counts of the q/k
        permutation; GGUF -> PEFT needs --base for a llama file adapting q/k, and refuses a base of
        another architecture.
        """)

    @Argument(help: "A .gguf file, a .safetensors file, an HF model folder (or its index.json), or a PEFT adapter folder.")
    var input: String

    @Argument(help: "The .gguf or .safetensors file, or the HF / PEFT folder, to write.")
    var output: String

    @Option(name: .customLong("type"), help: "To GGUF: tensor type for 2-D weights, f32, f16, bf16, q8_0, q4_0 (default f16 for models, f32 for LoRA). From GGUF: f32, f16 or bf16 (default f32 for tensor files; models keep F16/BF16).")
    var type: String?

    @Option(name: .customLong("base"), help: "The base model (HF folder, config.json or .gguf) of a LoRA adapter, for its architecture and head counts; written as base_model_name_or_path.")
    var base: String?

    @Flag(help: "Replace existing output files.")
    var force = false

    func validate() throws {
        if let type, LlamaConverter.OutputType(rawValue: type) == nil {
            throw ValidationError("--type must be one of f32, f16, bf16, q8_0, q4_0 (got \(type))")
        }
    }

    /// `--type` as a float dtype for conversions out of GGUF (nil when not given).
    private func floatType() throws -> DType? {
        guard let type else { return nil }
        switch type {
        case "f32": return .f32
        case "f16": return .f16
        case "bf16": return .bf16
        default: throw ValidationError("--type \(type) does not apply when converting from GGUF (use f32, f16 or bf16)")
        }
    }

    private var progress: LlamaConverter.Progress? {
        guard isatty(2) != 0 else { return nil }
        return { i, n, name in
            var line = "\r[\(i)/\(n)] \(name)"
            line += String(repeating: " ", count: max(0, 70 - line.count))
            if i == n { line += "\n" }
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func run() throws {
        if try convertControlVector() { return }
        let lower = input.lowercased(), outLower = output.lowercased()
        var isDir: ObjCBool = false
        let inputIsFolder = FileManager.default.fileExists(atPath: input, isDirectory: &isDir) && isDir.boolValue
        if lower.hasSuffix(".gguf") {
            let content = GGUFContent(metadata: try GGUFFile(path: input).metadata)
            switch content {
            case .loraAdapter:
                let g = try GGUFFile(path: input)
                let baseModel = try base.map { try LlamaCppLoRAFile.BaseModel(path: $0) }
                let adapter = try LlamaCppLoRAFile.peftAdapter(from: g, base: baseModel, baseModelNameOrPath: base)
                try adapter.write(to: output, force: force)
                print("wrote PEFT adapter \(output) (\(adapter.modules.count) modules, r \(adapter.config.r), alpha \(adapter.config.loraAlpha))")
            case .llamaModel where !outLower.hasSuffix(".safetensors"), .gemma3Model where !outLower.hasSuffix(".safetensors"):
                try LlamaConverter.ggufToHF(input: input, output: output, dtype: try floatType(), force: force, progress: progress)
                print("wrote \(output)")
            default:
                guard outLower.hasSuffix(".safetensors") else {
                    throw ValidationError("\(input) is a \(content); it converts to a .safetensors file, not '\(output)'")
                }
                let r = try TensorFileConverter.ggufToSafetensors(input: input, output: output, dtype: try floatType() ?? .f32,
                                                                  force: force, progress: progress)
                print("wrote \(output) (\(r.tensors) tensors, \(r.metadataKeys) metadata keys)")
                if !r.omittedKeys.isEmpty { print("left out metadata too long for a string: \(r.omittedKeys.joined(separator: ", "))") }
            }
            return
        }
        guard outLower.hasSuffix(".gguf") else {
            throw ValidationError("one side of a conversion must be a .gguf file (got '\(input)' -> '\(output)')")
        }
        let t = try LlamaConverter.OutputType(rawValue: type ?? "f16").orThrow("--type")
        if inputIsFolder, FileManager.default.fileExists(atPath: input + "/adapter_config.json") {
            let adapter = try PEFTAdapter.load(directory: input)
            let baseModel = try loraBase(adapter: adapter)
            try LlamaCppLoRAFile.write(adapter, base: baseModel, to: output, type: type == nil ? .f32 : t,
                                       name: URL(fileURLWithPath: input).lastPathComponent, force: force)
            print("wrote LoRA GGUF \(output) (\(adapter.modules.count) modules)")
            return
        }
        if lower.hasSuffix(".safetensors"), try !isLlamaCheckpoint(input) {
            let r = try TensorFileConverter.safetensorsToGGUF(input: input, output: output, force: force, progress: progress)
            print("wrote \(output) (\(r.tensors) tensors, \(r.metadataKeys) metadata keys)")
            return
        }
        try LlamaConverter.hfToGGUF(input: input, output: output, type: t, force: force, progress: progress)
        print("wrote \(output)")
    }

    /// A .safetensors file is a Llama checkpoint when config.json sits beside it and every tensor
    /// name is a Llama HF name.
    private func isLlamaCheckpoint(_ path: String) throws -> Bool {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder + "/config.json") else { return false }
        return try SafetensorsFile(path: path).tensorNames.allSatisfy { LlamaTensorName.gguf(fromHF: $0) != nil }
    }

    /// The base model of a PEFT → GGUF conversion (its architecture names the GGUF's tensors,
    /// its heads permute llama's q/k rows): --base, else the adapter's base_model_name_or_path
    /// (relative to the adapter folder) when it is on disk.
    /// - Throws: `ValidationError` when neither is given.
    private func loraBase(adapter: PEFTAdapter) throws -> LlamaCppLoRAFile.BaseModel {
        if let base { return try LlamaCppLoRAFile.BaseModel(path: base) }
        if let b = adapter.config.baseModelNameOrPath {
            let path = b.hasPrefix("/") ? b : input + "/" + b
            if FileManager.default.fileExists(atPath: path) { return try LlamaCppLoRAFile.BaseModel(path: path) }
        }
        throw ValidationError("\(input): the base model is needed for its architecture and heads: give --base (the adapter's base_model_name_or_path \(adapter.config.baseModelNameOrPath.map { "'\($0)'" } ?? "is unset") is not on disk)")
    }

    /// Steering adapter (.safetensors, steertool format) → control vector (.gguf), or a GGUF with
    /// `general.architecture = controlvector` → steering adapter. Returns false for models.
    private func convertControlVector() throws -> Bool {
        let lower = input.lowercased(), outLower = output.lowercased()
        if lower.hasSuffix(".safetensors"), outLower.hasSuffix(".gguf"),
           (try? SafetensorsFile(path: input))?.metadata["format"] == SteeringAdapterFile.formatName {
            let cv = try runMerge { try SteeringFiles.controlVector(from: try SteeringAdapter.load(path: input)) }
            try cv.write(to: output, force: force)
            print("wrote control vector \(output) (\(cv.directions.count) directions)")
            return true
        }
        if lower.hasSuffix(".gguf"), outLower.hasSuffix(".safetensors"),
           (try? GGUFFile(path: input))?.metadata["general.architecture"] == .string("controlvector") {
            let adapter = SteeringAdapter(controlVector: try ControlVectorFile.load(path: input))
            try SteeringFiles.file(from: adapter, source: input).write(to: output, force: force)
            print("wrote steering adapter \(output) (\(adapter.layers.count) layers)")
            return true
        }
        return false
    }
}

private extension Optional {
    /// The value, or a validation error naming `what`.
    func orThrow(_ what: String) throws -> Wrapped {
        guard let v = self else { throw ValidationError("bad \(what)") }
        return v
    }
}
