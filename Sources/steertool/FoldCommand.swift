import ArgumentParser
import Equivalence
import Foundation
import Formats
import Merge
import Runtime
import Tensors

/// `steertool fold`: activation → weights. Finds, per steered layer, the weight delta that
/// reproduces a steering adapter's effect on the block output on calibration tokens, and writes
/// it as a PEFT LoRA when every layer's residual (calibration and held-out sequences) is at most
/// `--max-error`; otherwise refuses with the measured figures (`--force` writes anyway).
struct FoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fold", abstract: "Fold a steering adapter back into a LoRA where the block allows it, or refuse with the residual.")

    @Option(name: .long, help: "Base model (HF folder or GGUF).")
    var base: String

    @Option(name: .long, help: WeightStorage.optionHelp)
    var weights: WeightStorage = .native

    @Option(name: .long, help: "Steering adapter file (.safetensors).")
    var adapter: String

    @Option(name: .long, help: "Calibration: a text file (base's tokenizer) or a JSON list of token-id lists (.json). Use more tokens than d_ff.")
    var calib: String

    @Option(name: .long, help: "Tokens per calibration sequence when --calib is text.")
    var sequenceLength = 128

    @Option(name: .long, help: "Projections the delta may change, comma-separated (q,k,v,o,gate,up,down).")
    var projections = "down"

    @Option(name: .long, help: "LoRA rank of least-squares deltas (default: the adapter's rank).")
    var rank: Int?

    @Option(name: .long, help: "Largest accepted relative residual.")
    var maxError: Float = 0.05

    @Option(name: .long, help: "Output: a PEFT adapter folder (--as lora), or a model (--as dense: HF folder, or .gguf).")
    var output: String

    @Option(name: .customLong("as"), help: "lora (a PEFT adapter of the delta) or dense (the base with the delta merged in).")
    var outputKind: FoldOutputArgument = .lora

    @Flag(name: .long, help: "Write even when refused, and overwrite an existing output.")
    var force = false

    @OptionGroup var threadArguments: ThreadArguments

    func run() throws {
        try threadArguments.apply()
        var projs = Set<LlamaProjection>()
        for name in projections.split(separator: ",") {
            let n = name.trimmingCharacters(in: .whitespaces)
            guard let p = LlamaProjection(rawValue: n) ?? LlamaProjection(rawValue: n + "_proj") else {
                throw ValidationError("--projections: unknown projection '\(n)'")
            }
            projs.insert(p)
        }
        let model = try LlamaModel.load(path: base, storage: weights)
        let steering = try SteeringAdapter.load(path: adapter)
        try FoldBack.requireEveryPosition(steering.positions)
        let sequences = try CalibrationInput.sequences(calib, modelPath: base, sequenceLength: sequenceLength)
        guard sequences.count >= 2 else { throw ValidationError("--calib needs at least 2 sequences (one is held out)") }
        let nHeld = max(1, sequences.count / 5)
        var modules: [String: LoRAUpdate] = [:]
        var refused = false
        print("layer  residual  heldout  unknowns  equations  exact  decision")
        for layer in steering.layers.keys.sorted() {
            let s = steering.layers[layer]!
            let scaled = SteeringLayer(down: s.down, up: s.up.map { steering.scale * $0 }, bias: s.bias.map { steering.scale * $0 })
            var o = ForwardOptions(logits: .none)
            o.record = [.blockInput(layer)]
            let ev = try FirstOrderMap(config: model.config, weights: model.layerWeights(layer), layer: layer)
            let acts = try sequences.map { try ev.forward(try model.forward(tokens: $0, options: o).activations[.blockInput(layer)]!) }
            let options = FoldBackOptions(projections: projs, rank: projs == [.down] ? (rank ?? max(s.rank, 1)) : nil, maxError: maxError)
            let outcome = try FoldBack.fold(scaled, activation: steering.activation, site: steering.site, evaluator: ev,
                                            sequences: Array(acts.dropLast(nHeld)), heldOut: Array(acts.suffix(nHeld)), options: options)
            let w = outcome.weights
            let decision: String
            switch outcome {
            case .folded: decision = "folded"
            case let .refused(reasons, _): decision = "refused: " + reasons.map(\.description).joined(separator: "; "); refused = true
            }
            print(String(format: "%5d  %8.4f  %7.4f  %8d  %9d  %5@  ", layer, w.residual, w.heldOutResidual ?? .nan, w.unknowns, w.equations,
                         w.isExactFactorization ? "yes" : "no") + decision)
            for (p, d) in w.delta.projections {
                guard case let .lowRank(a, b, scale) = try d.lowRank(maximumRank: rank ?? max(s.rank, 1)) else { continue }
                modules[p.modulePath(layer: layer)] = LoRAUpdate(a: a, b: b, scaling: scale)
            }
        }
        if refused && !force {
            throw ValidationError("fold refused (see the table); --force writes the closest LoRA anyway")
        }
        if outputKind == .dense {
            // The same delta merged into the base weights: written as a LoRA next to the output,
            // merged tensor by tensor (Merge's streaming LoRA merge), then removed.
            let parent = (output as NSString).deletingLastPathComponent
            let scratch = (parent.isEmpty ? "." : parent) + "/.steertool-fold-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try PEFTAdapterFolder.write(modules, to: scratch, baseModel: base, force: false)
            _ = try MergeFiles.mergeLoRAAnyFormat(base: base, adapter: scratch, output: output, force: force)
            print("wrote \(base) with \(modules.count) folded projection delta(s) merged to \(output)")
        } else {
            try PEFTAdapterFolder.write(modules, to: output, baseModel: base, force: force)
            print("wrote \(modules.count) LoRA module(s) to \(output)")
        }
    }
}

/// Calibration token sequences from a JSON list of token-id lists or a text file cut by
/// `CalibrationSequences` (the model's tokenizer; each sequence starts as the model is run).
enum CalibrationInput {
    static func sequences(_ path: String, modelPath: String, sequenceLength: Int) throws -> [[Int]] {
        if path.lowercased().hasSuffix(".json") { return try TokenListFile.load(path: path) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("\(path): cannot read the calibration text")
        }
        return try CalibrationSequences.cut(text, source: path, tokenizer: try Tokenizer.load(modelPath: modelPath),
                                            sequenceLength: sequenceLength)
    }
}
