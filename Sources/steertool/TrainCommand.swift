import ArgumentParser
import Foundation
import Formats
import Merge
import Runtime

extension TrainingKind: ExpressibleByArgument {}
extension TrainingSchedule: ExpressibleByArgument {}
extension SteeringPositions: ExpressibleByArgument {}
extension LlamaProjection: ExpressibleByArgument {}

/// `steertool train`: post-block steering adapters trained on a user's task data, the model frozen.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train post-block steering adapters (vector, linear or SiLU), a LoRA, or both jointly on task data, the model frozen.",
        discussion: """
        Δh = U·φ(Dᵀh) (linear: φ = identity; silu) or Δh = b (vector) is added to every steered \
        block's output after its residual add, at every position (--positions last: at the \
        prompt's last token only, as generate and eval --tasks then apply it); the loss is the next-token \
        cross-entropy on the completion tokens only. Data: JSONL with one kind per file: \
        {"prompt", "completion"} (loss on the completion and the EOS after it; with --chat the \
        prompt is a user turn of the model's chat template and the completion its reply), \
        {"text"} (loss on every token), or {"messages": [{"role", "content"}, ...]} (the chat \
        template applied, loss on the assistant replies and their end-of-turn markers). \
        Defaults follow the paper's code: rank 8, lr 9e-4, linear decay after 3% warm-up, \
        batch 16 as 8 × 2 accumulation, one epoch, no weight decay, clipping at 1. The output is a \
        steering file every command takes with --adapter, recording the training settings and \
        the data's fingerprint. --kind lora trains a PEFT-style LoRA (W + (alpha/r)·B·A on \
        --lora-projections, default all seven) and writes a PEFT folder (adapter_config.json, \
        adapter_model.safetensors, and steertool-training.json with the report); --kind joint \
        trains a linear adapter and a LoRA together, projecting each layer's D off col(B) of its \
        down_proj LoRA every --project-every steps (the paper's joint mode), and writes a joint \
        bundle. Ctrl-C stops before the next step and writes nothing.
        """)

    @Option(name: .long, help: "Model: Hugging Face folder or GGUF file.")
    var model: String

    @Option(name: .long, help: WeightStorage.optionHelp)
    var weights: WeightStorage = .native

    @Option(name: .long, help: "Training data (JSONL).")
    var data: String

    @Option(name: .long, help: "What to train: vector, linear or silu (post-block adapters), lora, or joint (linear + LoRA).")
    var kind: TrainingKind = .linear

    @Option(name: .long, help: "Rank r of the linear and SiLU kinds (and of joint's adapter).")
    var rank = 8

    @Option(name: .long, help: "LoRA rank (lora and joint).")
    var loraRank = 8

    @Option(name: .long, help: "LoRA alpha: the update is (alpha / rank)·B·A.")
    var loraAlpha: Float = 16

    @Option(name: .long, parsing: .upToNextOption, help: "Projections carrying the LoRA (default all seven: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj).")
    var loraProjections: [LlamaProjection] = LlamaProjection.allCases

    @Option(name: .long, help: "Joint: steps between orthogonal projections of the adapters off the LoRA (0: never).")
    var projectEvery = 100

    @Option(name: .long, help: "Layers to steer, e.g. 2-5 or 3 (0-based, inclusive; default all).")
    var layers: LayerSpan?

    @Option(name: .long, help: "Positions steered: all (every token) or last (the prompt's last token; one prompt and one completion per line).")
    var positions: SteeringPositions = .all

    @Option(name: .long, help: "Passes over the data.")
    var epochs = 1

    @Option(name: .long, help: "Sequences per micro-batch.")
    var batch = 8

    @Option(name: .long, help: "Micro-batches per optimizer step (the step's loss is the mean over all their completion tokens).")
    var gradAccum = 2

    @Option(name: .long, help: "Peak learning rate.")
    var lr: Float = 9e-4

    @Option(name: .long, help: "Fraction of the steps spent warming up (linear), before linear decay to 0.")
    var warmup: Double = 0.03

    @Option(name: .long, help: "The learning rate after the warm-up: linear (decay to 0), cosine (half-cosine to 0) or constant.")
    var schedule: TrainingSchedule = .linear

    @Option(name: .long, help: "Validation data (JSONL) scored every --eval-every steps and after the last: training lines (read as --data is) by their mean completion loss, {\"prompt\", \"answer\"} items by greedy accuracy as eval --tasks scores them (with --chat, the prompt as a user turn); a line may be both.")
    var eval: String?

    @Option(name: .long, help: "Most new tokens per validation item without max_tokens.")
    var evalMaxTokens = 16

    @Option(name: .long, help: "Steps between validation losses.")
    var evalEvery = 50

    @Flag(name: .long, help: "With --eval: keep the evaluated step of best validation (highest accuracy when there are items, else lowest loss; the start included), not the last.")
    var keepBest = false

    @Option(name: .long, help: "AdamW's decoupled weight decay.")
    var weightDecay: Float = 0

    @Option(name: .long, help: "Seed of the initialisation and the data order.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Longest sequence accepted (default: the model's context); a longer line is an error, never cut.")
    var maxLength: Int?

    @Option(name: .long, help: "Stop after this many optimizer steps (the schedule still spans every epoch).")
    var maxSteps: Int?

    @Flag(name: .long, help: "Render {\"prompt\", \"completion\"} lines through the model's chat template (a user turn and its reply).")
    var chat = false

    @Option(name: .long, help: "Output: a steering file (.safetensors) for vector/linear/silu, a PEFT folder for lora, a joint bundle folder for joint.")
    var output: String

    @Flag(name: .long, help: "Overwrite an existing output.")
    var force = false

    @Option(name: .long, help: "Save a checkpoint every this many steps (and after the last, and on Ctrl-C) to --checkpoint.")
    var checkpointEvery: Int?

    @Option(name: .long, help: "Checkpoint file (default: the --resume file, else <output>.checkpoint.safetensors).")
    var checkpoint: String?

    @Option(name: .long, help: "Continue the run saved in this checkpoint (the same command otherwise: same data, settings and seed; --max-steps may differ).")
    var resume: String?

    @OptionGroup var threadArguments: ThreadArguments

    /// ", validation loss x, accuracy y" for the figures present.
    static func describe(_ v: ValidationScore) -> String {
        (v.loss.map { String(format: ", validation loss %.4f", $0) } ?? "") + (v.accuracy.map { String(format: ", validation accuracy %.4f", $0) } ?? "")
    }

    func validate() throws {
        guard rank >= 1, epochs >= 1, batch >= 1, gradAccum >= 1, loraRank >= 1 else {
            throw ValidationError("--rank, --lora-rank, --epochs, --batch and --grad-accum must be ≥ 1")
        }
        guard loraAlpha > 0, loraAlpha.isFinite, projectEvery >= 0, !loraProjections.isEmpty else {
            throw ValidationError("--lora-alpha > 0, --project-every ≥ 0, at least one --lora-projections")
        }
        guard lr > 0, warmup >= 0, warmup < 1, weightDecay >= 0 else { throw ValidationError("--lr > 0, --warmup in [0, 1), --weight-decay ≥ 0") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be ≥ 2") }
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be ≥ 1") }
        guard evalEvery >= 1, evalMaxTokens >= 1, evalMaxTokens <= GenerationItem.maxTokensLimit else {
            throw ValidationError("--eval-every ≥ 1, --eval-max-tokens in 1...\(GenerationItem.maxTokensLimit)")
        }
        guard !keepBest || eval != nil else { throw ValidationError("--keep-best needs --eval") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be ≥ 1") }
        if kind.trainsLoRA, [".safetensors", ".gguf"].contains(where: { output.lowercased().hasSuffix($0) }) {
            throw ValidationError("--kind \(kind.rawValue) writes a folder (\(kind == .lora ? "a PEFT adapter" : "a joint bundle")); --output \(output) names a file")
        }
        guard checkpoint == nil || checkpointEvery != nil else { throw ValidationError("--checkpoint needs --checkpoint-every") }
    }

    func run() throws {
        try threadArguments.apply()
        if !force, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("\(output) exists; pass --force to overwrite it")
        }
        let m = try LlamaModel.load(path: model, storage: weights)
        let context = m.config.maxPositionEmbeddings
        if let maxLength, maxLength > context { throw ValidationError("--max-length \(maxLength) exceeds the model's context of \(context)") }
        let tokenizer = try Tokenizer.load(modelPath: model)
        // --chat needs the template now; {"messages"} lines need it when they are read.
        var template: ChatTemplate?, unavailable = ""
        do { template = try tokenizer.chatTemplate(architecture: m.architecture.name).template } catch {
            if chat { throw error }
            unavailable = "\(error)"
        }
        let limit = maxLength ?? context
        var dataOptions = TrainingDataOptions(template: template, chatPrompts: chat, maxLength: limit,
                                              vocabularySize: m.config.vocabSize, endOfSequence: m.config.eosTokenIds.first)
        if !unavailable.isEmpty { dataOptions.templateUnavailable = unavailable }
        let trainingData = try TrainingData.load(path: data, tokenizer: tokenizer, options: dataOptions)
        let contents = try eval.map { try ValidationFileContents(path: $0) }
        let validation = try eval.flatMap { contents?.training == true ? try TrainingData.load(path: $0, tokenizer: tokenizer, options: dataOptions) : nil }
        var validationTasks: ValidationTasks?
        if let eval, contents?.tasks == true {
            guard case .generation(let items) = try TaskFile.loadTasks(path: eval) else {
                throw RuntimeError.invalidArgument("\(eval): validation items must be generation-scored {\"prompt\", \"answer\"}")
            }
            let itemTemplate = chat ? template : nil
            validationTasks = ValidationTasks(items: items, tokenizer: tokenizer,
                                              stopTokens: GenerationEvaluator.stopTokens(config: m.config, tokenizer: tokenizer, template: itemTemplate),
                                              evaluator: GenerationEvaluator(defaultMaxTokens: evalMaxTokens),
                                              encodePrompt: GenerationEvaluator.promptEncoder(tokenizer: tokenizer, template: itemTemplate))
        }
        let fingerprint = try FileFingerprint(path: data)
        var options = SteeringTrainingOptions()
        options.kind = kind; options.rank = rank; options.positions = positions
        options.loraRank = loraRank; options.loraAlpha = loraAlpha; options.loraProjections = loraProjections
        options.projectionInterval = projectEvery; options.layers = try layers?.layers(within: m.config.numHiddenLayers)
        options.epochs = epochs; options.batchSize = batch; options.gradientAccumulation = gradAccum
        options.learningRate = lr; options.warmupFraction = warmup; options.weightDecay = weightDecay
        options.seed = seed; options.maxSteps = maxSteps
        options.schedule = schedule; options.evaluationInterval = evalEvery; options.keepBest = keepBest

        let planned = min(SteeringTrainer.plannedSteps(examples: trainingData.examples.count, options: options), maxSteps ?? .max)
        print("train: \(trainingData.examples.count) examples (\(trainingData.kind.rawValue)), \(planned) steps of \(options.sequencesPerStep) sequences, kind \(kind.rawValue)\(kind.trainsSteering && kind != .vector ? " rank \(rank)" : "")\(kind.trainsLoRA ? ", LoRA rank \(loraRank) alpha \(loraAlpha)" : "")")
        let identity = TrainingCheckpoint.runIdentity(options: options, data: fingerprint, validation: try eval.map { try FileFingerprint(path: $0) },
                                                      maxLength: limit, chat: chat)
        let resumed = try resume.map { try TrainingCheckpoint.load(path: $0) }
        let checkpointPath = checkpoint ?? resume ?? output + ".checkpoint.safetensors"
        var checkpoints: TrainingCheckpoints?
        if checkpointEvery != nil || resumed != nil {
            checkpoints = TrainingCheckpoints(interval: checkpointEvery ?? Int.max, run: identity, resume: resumed) { c in
                guard checkpointEvery != nil else { return }
                try c.write(to: checkpointPath)
            }
        }
        if let resumed { print("resuming after step \(resumed.completedSteps) from \(resume!)") }
        let stop = InterruptFlag()
        let status = TerminalStatus()
        let result: SteeringTrainingResult
        do {
            result = try SteeringTrainer.train(model: m, data: trainingData, validation: validation, validationTasks: validationTasks, options: options,
                                               checkpoints: checkpoints, progress: { s in
                let rate = s.seconds > 0 ? Double(s.tokens) / s.seconds : 0
                status.update(done: s.step, total: planned,
                              label: String(format: "train: step %d/%d  loss %.4f  lr %.2e  %.0f tok/s", s.step, planned, s.loss, s.learningRate, rate))
                if let v = s.validation {
                    status.finish()
                    print(String(format: "step %d: train loss %.4f", s.step, s.loss) + Self.describe(v))
                }
            }, shouldStop: { stop.isSet })
        } catch RuntimeError.interrupted(let after) where checkpointEvery != nil {
            status.finish()
            throw RuntimeError.invalidArgument("interrupted after \(after) step(s); nothing written but the checkpoint \(checkpointPath): continue with the same command and --resume \(checkpointPath)")
        }
        status.finish()
        if result.initialValidationLoss != nil || result.initialValidationAccuracy != nil {
            print("at the start" + Self.describe(ValidationScore(loss: result.initialValidationLoss, accuracy: result.initialValidationAccuracy))
                  + "; kept step \(result.selectedStep)")
        }
        let report = TrainingReport.json(result: result, options: options, data: trainingData, fingerprint: fingerprint,
                                         maxLength: limit, chat: chat)
        let steeringFile = SteeringFiles.file(from: result.adapter, baseModel: model, source: "train:\(data)", report: report)
        switch kind {
        case .vector, .linear, .silu:
            try steeringFile.write(to: output, force: force)
        case .lora:
            try PEFTAdapterFolder.write(result.lora!.peftModules, to: output, baseModel: model, alpha: loraAlpha, force: force)
            let w = try AtomicFileWriter(path: output + "/" + TrainingReport.fileName, force: true)
            try w.write(report.serialized(indent: 1) + "\n")
            try w.commit()
        case .joint:
            try writeJointBundle(to: output, steering: steeringFile, lora: result.lora!, baseModel: model, alpha: loraAlpha,
                                 details: ["base_model": model, "source": "train:\(data)", "lora_rank": String(loraRank), "rank": String(rank),
                                           "project_every": String(projectEvery)],
                                 force: force)
        }
        print(String(format: "loss %.4f → %.4f over %d steps, %.1f s, %.0f tokens/s", result.steps.first?.loss ?? 0, result.steps.last?.loss ?? 0,
                     result.steps.count, result.seconds, result.tokensPerSecond))
        print("parameters \(result.parameterCount) (\(String(format: "%.4f", 100 * result.parameterFraction))% of the model); wrote \(output)")
    }
}

/// Set by SIGINT (Ctrl-C): the training loop stops before its next step; the default handler
/// comes back for a second Ctrl-C.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [weak self] in self?.raise() }
        source.resume()
    }

    private func raise() {
        lock.lock(); set = true; lock.unlock()
        FileHandle.standardError.write(Data("\nsteertool: interrupted; stopping before the next step, nothing will be written (Ctrl-C again to quit now)\n".utf8))
        signal(SIGINT, SIG_DFL)
    }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }
}
