import ArgumentParser
import Foundation
import Formats
import Runtime

extension ContrastiveMethod: ExpressibleByArgument {}
extension ContrastiveToken: ExpressibleByArgument {}

/// `steertool vectors`: contrastive steering vectors from pairs of texts.
struct VectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors",
        abstract: "Contrastive steering vectors from positive/negative text pairs (mean difference or PCA).",
        discussion: """
        Pairs: JSONL lines {"positive": "...", "negative": "..."}. Per layer, each text is read \
        at the residual stream after the block (the post-block site, llama.cpp's l_out) at its \
        last token (--token last) or averaged over its tokens (--token mean). mean-diff: the \
        mean of positive − negative. pca: the first right singular vector u of the matrix of \
        differences (one row per pair, not centred), signed so that the mean difference \
        projects positively on it and scaled to that projection, (d̄·u)·u. repeng's PCA centres \
        the differences first, which removes the mean shift and keeps only how the pairs vary \
        around it; this one keeps the shift along its principal direction. The output is a \
        vector-kind steering file every command applies with --adapter file:<scale>, or for a \
        .gguf output a llama.cpp control vector (which never steers layer 0: the default \
        layers are then 1 and up).
        """)

    @Option(name: .long, help: "Model: Hugging Face folder or GGUF file.")
    var model: String

    @Option(name: .long, help: WeightStorage.optionHelp)
    var weights: WeightStorage = .native

    @Option(name: .long, help: "Pairs (JSONL of {\"positive\", \"negative\"}).")
    var pairs: String

    @Option(name: .long, help: "mean-diff or pca.")
    var method: ContrastiveMethod = .meanDifference

    @Option(name: .long, help: "Layers, e.g. 2-5 or 3 (0-based, inclusive; default all, or 1 and up for a .gguf output).")
    var layers: LayerSpan?

    @Option(name: .long, help: "last or mean: the token whose residual stands for a text.")
    var token: ContrastiveToken = .last

    @Flag(name: .long, help: "Wrap each text in the model's chat template as one user turn (with the assistant's opening).")
    var chat = false

    @Option(name: .long, help: "Output: a steering file (.safetensors) or a llama.cpp control vector (.gguf).")
    var output: String

    @Flag(name: .long, help: "Overwrite an existing output.")
    var force = false

    @OptionGroup var threadArguments: ThreadArguments

    func run() throws {
        try threadArguments.apply()
        let gguf = output.lowercased().hasSuffix(".gguf")
        if !force, FileManager.default.fileExists(atPath: output) { throw ValidationError("\(output) exists; pass --force to overwrite it") }
        let m = try LlamaModel.load(path: model, storage: weights)
        let L = m.config.numHiddenLayers
        let chosen = try layers?.layers(within: L) ?? (gguf ? Array(1..<L) : Array(0..<L))
        let list = try ContrastivePair.load(path: pairs)
        let tokenizer = try Tokenizer.load(modelPath: model)
        let template = chat ? try tokenizer.chatTemplate(architecture: m.architecture.name).template : nil
        let adapter = try ContrastiveVectors.compute(model: m, pairs: list, source: pairs, encode: { text in
            template.map { tokenizer.encodeChat([ChatMessage(role: "user", content: text)], addGenerationPrompt: true, template: $0) }
                ?? tokenizer.encode(text, addSpecialTokens: true)
        }, method: method, token: token, layers: chosen)
        if gguf {
            // llama.cpp's model hint is the GGUF architecture (Mistral is llama).
            let hint = GGUFModelArchitecture(huggingFaceClass: m.architecture.name).rawValue
            let cv = try SteeringFiles.controlVector(from: adapter, modelHint: hint)
            try cv.write(to: output, force: force)
        } else {
            let report: JSONValue = .object([("method", .string(method.rawValue)), ("token", .string(token.rawValue)), ("chat", .bool(chat)),
                                             ("pairs", .int(list.count)), ("fingerprint", .string(try FileFingerprint(path: pairs).description))])
            try SteeringFiles.file(from: adapter, baseModel: model, source: "vectors:\(pairs)", report: report).write(to: output, force: force)
        }
        let norms = chosen.map { l in adapter.layers[l]?.bias.map { sqrt($0.scalars.reduce(0) { $0 + $1 * $1 }) } ?? 0 }
        print("layer  norm")
        for (l, n) in zip(chosen, norms) { print(String(format: "%5d  %.4f", l, n)) }
        print("\(list.count) pairs, \(method.rawValue), token \(token.rawValue); wrote \(output)")
    }
}
