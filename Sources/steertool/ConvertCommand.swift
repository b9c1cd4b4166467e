import ArgumentParser
import Foundation
import Formats
import Merge
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `steertool convert <input> <output> [--type …] [--force]`: HF folder / safetensors → GGUF, or
/// GGUF → HF folder, tensor by tensor; and a vector-kind steering adapter (.safetensors) ⇄ a
/// llama.cpp control vector (.gguf), decided from the files.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Llama model between a Hugging Face folder and GGUF, or a steering adapter and a llama.cpp control vector (direction from the input).")

    @Argument(help: "An HF model folder (or its .safetensors / index.json), or a .gguf file.")
    var input: String

    @Argument(help: "The .gguf file to write, or the HF folder to write.")
    var output: String

    @Option(name: .customLong("type"), help: "GGUF tensor type for 2-D weights: f32, f16, bf16, q8_0, q4_0 (HF → GGUF only).")
    var type: String = "f16"

    @Flag(help: "Replace existing output files.")
    var force = false

    func validate() throws {
        guard LlamaConverter.OutputType(rawValue: type) != nil else {
            throw ValidationError("--type must be one of f32, f16, bf16, q8_0, q4_0 (got \(type))")
        }
    }

    func run() throws {
        if try convertControlVector() { return }
        let tty = isatty(2) != 0
        let progress: LlamaConverter.Progress? = tty ? { i, n, name in
            var line = "\r[\(i)/\(n)] \(name)"
            line += String(repeating: " ", count: max(0, 70 - line.count))
            if i == n { line += "\n" }
            FileHandle.standardError.write(Data(line.utf8))
        } : nil
        if input.hasSuffix(".gguf") {
            try LlamaConverter.ggufToHF(input: input, output: output, force: force, progress: progress)
        } else {
            guard let t = LlamaConverter.OutputType(rawValue: type) else { throw ValidationError("bad --type \(type)") }
            try LlamaConverter.hfToGGUF(input: input, output: output, type: t, force: force, progress: progress)
        }
        print("wrote \(output)")
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
