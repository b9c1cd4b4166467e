import ArgumentParser
import Formats

/// `steertool inspect <path> [--json]`: format, metadata and tensor table of a GGUF file, a
/// safetensors file, an HF model folder or index, a PEFT adapter folder, a steering adapter, a
/// control vector or a torch `.bin`.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the format, metadata and tensors (name, dtype, shape, bytes) of a model or adapter.")

    @Argument(help: "A .gguf / .safetensors / .bin file, an HF model folder or index.json, or a PEFT adapter folder.")
    var path: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let inspection = try FileInspector.inspect(path: path)
        print(json ? inspection.json.serialized(indent: 2) : inspection.text())
    }
}
