import ArgumentParser
import Equivalence
import Foundation
import Formats
import Runtime
import Tensors

/// `steertool distill`: distils a fine-tune (or a LoRA) into a post-block steering adapter,
/// layer by layer, and prints the per-layer report (held-out error, Theorem 3.1 e*/bounds,
/// site diagnostic). Thin: parse, call `Equivalence.Distiller`, print, write.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a fine-tune or LoRA into a post-block steering adapter, with a Theorem 3.1 report.",
        discussion: """
            Closed form (--method first-order, oracle or sequential): one fit per layer of the \
            --kind at --rank (or --target-error), printed as a per-layer table with held-out \
            error, Theorem 3.1 e* and bounds, and the pre-MLP / post-MLP / post-block site errors.

            End to end (--method kl): the sequential fit, then all layers trained together on KL \
            to the fine-tune, with the END-TO-END TRAINING options (and JOINT ADAPTATION for \
            --kind joint or lora).
            """)

    @Option(name: .long, help: "Base model (HF folder or GGUF).")
    var base: String

    @Option(name: .long, help: "Fine-tuned model with the same architecture.")
    var finetuned: String?

    @Option(name: .long, help: "PEFT LoRA folder applied to the base as the fine-tune.")
    var lora: String?

    @Option(name: .long, help: WeightStorage.optionHelp)
    var weights: WeightStorage = .native

    @Option(name: .long, help: "Calibration: a text file (tokenized with the base's tokenizer) or a JSON list of token-id lists (.json).")
    var calib: String

    @Option(name: .long, help: "Tokens per calibration sequence when --calib is text.")
    var sequenceLength = 128

    @Option(name: .long, help: "The target and fit: first-order, oracle, sequential, or kl (sequential init, then end-to-end KL training).")
    var method: DistillMethodArgument = .sequential

    @Option(name: .long, help: "vector, linear or silu (with --method kl also joint: linear adapters + a down_proj LoRA; lora: the LoRA alone).")
    var kind: DistillKindArgument = .linear

    @Option(name: .long, help: "Fixed rank per layer.")
    var rank: Int?

    @Option(name: .long, help: "Choose per layer the smallest rank whose held-in relative error is at most this.")
    var targetError: Float?

    @Option(name: .long, help: "Layers to steer, e.g. 2-5 or 3 (0-based, inclusive; default all).")
    var layers: LayerSpan?

    @Option(name: .long, help: "Ridge λ of the least-squares step.")
    var ridge: Float = 0

    @Option(name: .long, help: "Fraction of calibration tokens held out for the report.")
    var heldOut: Double = 0.2

    @Option(name: .long, help: "Seed of the token split and the SiLU training.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Output steering adapter (.safetensors).")
    var output: String

    @Option(name: .long, help: "Also write the report as JSON here.")
    var report: String?

    @Flag(name: .long, help: "Overwrite existing outputs.")
    var force = false

    @OptionGroup(title: "End-to-end training (--method kl)")
    var kl: KLTrainingArguments

    @OptionGroup(title: "Joint adaptation (--method kl --kind joint or lora)")
    var joint: JointTrainingArguments

    @OptionGroup var threadArguments: ThreadArguments

    func validate() throws {
        guard (finetuned == nil) != (lora == nil) else { throw ValidationError("give exactly one of --finetuned and --lora") }
        guard !(rank != nil && targetError != nil) else { throw ValidationError("give at most one of --rank and --target-error") }
        guard !kind.trainsLoRA || method == .kl else {
            throw ValidationError("--kind \(kind.rawValue) needs --method kl (the closed forms fit vector, linear or silu adapters)")
        }
        if kind.trainsLoRA && joint.loraOutput == nil && joint.bundle == nil {
            throw ValidationError("--kind \(kind.rawValue) needs --lora-output <dir> (or --bundle <dir> with --kind joint)")
        }
        if joint.bundle != nil && kind != .joint { throw ValidationError("--bundle applies to --method kl --kind joint") }
        guard sequenceLength >= 2 else { throw ValidationError("--sequence-length must be ≥ 2") }
        guard heldOut >= 0 && heldOut < 1 else { throw ValidationError("--held-out must be in [0, 1)") }
        if let rank, rank < 0 { throw ValidationError("--rank must be ≥ 0") }
    }

    func run() throws {
        try threadArguments.apply()
        let baseModel = try LlamaModel.load(path: base, storage: weights)
        let ft: LlamaModel
        if let finetuned { ft = try LlamaModel.load(path: finetuned, storage: weights) } else { ft = try baseModel.adding(LoRAWeights.load(directory: lora!)) }
        let sequences = try calibration()
        let fit = AdapterFitOptions(kind: kind.adapterKind ?? .linear,
                                    rank: targetError.map { .targetError($0) } ?? .fixed(rank ?? 8), ridge: ridge,
                                    silu: SiLUTrainingOptions(seed: seed))
        guard let closedForm = method.closedForm else { return try runKL(base: baseModel, finetuned: ft, calibration: sequences, fit: fit) }
        let options = DistillOptions(method: closedForm, fit: fit, layers: try layerList(baseModel.config.numHiddenLayers),
                                     heldOutFraction: heldOut, seed: seed)
        let status = TerminalStatus()
        let result = try Distiller.distill(base: baseModel, finetuned: ft, sequences: sequences, options: options) { p in
            let where_ = p.layer.map { "layer \(p.layerIndex + 1)/\(p.layerCount) (model layer \($0))" } ?? "all layers"
            status.update(done: p.layerIndex, total: p.layerCount, label: "distill: \(where_)  \(p.phase.rawValue)")
        }
        status.finish()

        print("layer  rank  params  heldout_err  e*      lower   upper   pre_mlp  post_mlp  post_block")
        for l in result.layers {
            let t = l.theorem31
            func f(_ x: Float?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
            print(String(format: "%5d  %4d  %6d  %11.4f  ", l.layer, l.fit.rank, l.fit.parameterCount, l.fit.heldOutRelativeError)
                  + "\(f(t?.exact))  \(f(t?.lower))  \(f(t?.upper))  \(f(l.siteErrors[.attentionOutput]))   \(f(l.siteErrors[.mlpOutput]))    \(f(l.siteErrors[.blockOutput]))")
        }
        if let note = result.uninformativeTheorem31 { print("note: " + note) }
        let t = result.timings
        print(String(format: "time %.1f s: forward passes %.1f s, fits %.1f s, diagnostics %.1f s", t.total, t.forward, t.fit, t.diagnostics))
        print("parameters \(result.parameterCount) (\(String(format: "%.4f", 100 * result.parameterFraction))% of the model), method \(method.rawValue), kind \(kind.rawValue), \(sequences.reduce(0) { $0 + $1.count }) calibration tokens")

        for (name, change) in result.nonBlockChanges.sorted(by: { $0.key < $1.key }) {
            print("warning: \(name) changed by \(String(format: "%.4f", change)) (relative); post-block steering cannot reproduce changes outside the blocks")
        }
        let json = reportJSON(result)
        let source = finetuned.map { "finetuned:\($0)" } ?? "lora:\(lora!)"
        try SteeringFiles.file(from: result.adapter, baseModel: base, source: source, report: json).write(to: output, force: force)
        if let report {
            let w = try AtomicFileWriter(path: report, force: force)
            try w.write(json.serialized(indent: 1) + "\n")
            try w.commit()
        }
    }

    /// Stable report keys: parameters, parameter_fraction, method, kind, layers[{layer, rank,
    /// heldout_relative_error, theorem31 {exact, lower, upper}, sites {pre_mlp, post_mlp, post_block}}],
    /// seconds {total, forward, fit, diagnostics}.
    func reportJSON(_ r: DistillationResult) -> JSONValue {
        func num(_ x: Float?) -> JSONValue { x.map { .float($0) } ?? .null }
        let layers: [JSONValue] = r.layers.map { l in
            .object([
                ("layer", .int(l.layer)), ("rank", .int(l.fit.rank)),
                ("heldout_relative_error", .float(l.fit.heldOutRelativeError)),
                ("theorem31", .object([("exact", num(l.theorem31?.exact)), ("lower", num(l.theorem31?.lower)), ("upper", num(l.theorem31?.upper))])),
                ("sites", .object([("pre_mlp", num(l.siteErrors[.attentionOutput])), ("post_mlp", num(l.siteErrors[.mlpOutput])),
                                   ("post_block", num(l.siteErrors[.blockOutput]))])),
            ])
        }
        return .object([("parameters", .int(r.parameterCount)), ("parameter_fraction", .double(r.parameterFraction)),
                        ("method", .string(method.rawValue)), ("kind", .string(kind.rawValue)), ("layers", .array(layers)),
                        ("seconds", .object([("total", .double(r.timings.total)), ("forward", .double(r.timings.forward)),
                                             ("fit", .double(r.timings.fit)), ("diagnostics", .double(r.timings.diagnostics))])),
                        ("nonblock_relative_change", .object(r.nonBlockChanges.sorted { $0.key < $1.key }.map { ($0.key, .float($0.value)) }))])
    }

    func calibration() throws -> [[Int]] {
        try CalibrationInput.sequences(calib, modelPath: base, sequenceLength: sequenceLength)
    }

    func layerList(_ count: Int) throws -> [Int]? { try layers?.layers(within: count) }
}

/// `distill --method kl`: the closed-form sequential adapters, then every layer trained together
/// by Adam on mean KL to the fine-tune over calibration windows.
struct KLTrainingArguments: ParsableArguments {
    @Option(name: .long, help: "Adam steps.")
    var steps = 300

    @Option(name: .long, help: "Calibration sequences per step.")
    var batch = 4

    @Option(name: .long, help: "Learning rate (cosine schedule down to 0.1× of it).")
    var lr: Float = 3e-3

    @Option(name: .long, help: "Measure held-out KL, loss and recovered fraction every this many steps.")
    var evalEvery = 50

    @Option(name: .long, help: "Held-out sequences (JSON list of token-id lists); default: the last fifth of --calib.")
    var evalTokens: String?

    @Flag(name: .long, help: "Keep the evaluated step with the lowest held-out KL (the closed-form start included), not the last.")
    var keepBest = false
}

/// `distill --method kl --kind joint|lora`: a down_proj LoRA trained with (joint) or instead of
/// (lora) the post-block adapters.
struct JointTrainingArguments: ParsableArguments {
    @Option(name: .long, help: "Rank of the down_proj LoRA trained with the adapters.")
    var loraRank = 4

    @Option(name: .long, help: "Project each adapter's D off col(B_down) every this many steps (0 = never).")
    var projectEvery = 100

    @Option(name: .long, help: "Soft penalty λ·‖BᵀD‖² instead of (or with) the projection.")
    var penalty: Float = 0

    @Option(name: .long, help: "Write the trained LoRA here as a PEFT folder.")
    var loraOutput: String?

    @Option(name: .long, help: "--kind joint: write both parts as one joint bundle folder (lora/ + steering.safetensors), usable with --adapter and merge lora.")
    var bundle: String?
}
