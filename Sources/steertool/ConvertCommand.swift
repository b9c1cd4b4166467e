import ArgumentParser
import Foundation
import Formats
#if canImport(Glibc)
import Glibc
#endif

/// `steertool convert <input> <output> [--type …] [--force]`: HF folder / safetensors → GGUF, or
/// GGUF → HF folder, tensor by tensor.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Llama model between a Hugging Face folder and GGUF (direction from the input).")

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
}
