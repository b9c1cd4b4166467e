import ArgumentParser
import Formats
import Runtime
import Tensors

/// `steertool forward`: one forward pass, written as safetensors (`logits` [T, vocab] and
/// `hidden.<l>` [T, d] = output of block l, for every layer, all F32).
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run a forward pass and write logits and every block output as safetensors.")

    @OptionGroup var modelArguments: ModelArguments

    @Option(name: .long, help: "Comma-separated token ids.")
    var tokens: String?

    @Option(name: .long, help: "Text to tokenize with the model's tokenizer.")
    var text: String?

    @Option(name: .long, help: "Output .safetensors file.")
    var output: String

    @Flag(name: .long, help: "Overwrite an existing output.")
    var force = false

    func validate() throws {
        guard (tokens == nil) != (text == nil) else { throw ValidationError("give exactly one of --tokens and --text") }
    }

    func run() throws {
        let model = try modelArguments.load()
        let ids: [Int]
        if let tokens {
            ids = try parseTokenList(tokens)
        } else {
            ids = try TextInput.encode(text ?? "", modelPath: modelArguments.model, addSpecialTokens: true)
        }
        let result = try model.forward(tokens: ids, options: ForwardOptions(blockOutputs: true))
        var records = [SafetensorsWriter.record("logits", result.logits)]
        for (l, h) in result.blockOutputs.enumerated() { records.append(SafetensorsWriter.record("hidden.\(l)", h)) }
        try SafetensorsWriter.write(records, metadata: ["tokens": ids.map(String.init).joined(separator: ",")],
                                    to: output, force: force)
        print("wrote \(output): logits [\(ids.count), \(model.config.vocabSize)], hidden.0…\(model.config.numHiddenLayers - 1) [\(ids.count), \(model.config.hiddenSize)]")
    }
}
