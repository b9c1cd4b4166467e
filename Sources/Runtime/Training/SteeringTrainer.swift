import Foundation
import Tensors

/// What `steertool train` trains: a post-block adapter (Δh added to a block's output after its
/// residual add, at every position or the last prompt token: `SteeringTrainingOptions.positions`),
/// a LoRA inside the projections, or both together.
public enum TrainingKind: String, Sendable, CaseIterable {
    /// Δh = b, a vector per layer (starts at 0).
    case vector
    /// Δh = U·Dᵀh, rank r (D `[d, r]` drawn N(0, 1/(3d)), the variance of PEFT's LoRA A; U = 0).
    case linear
    /// Δh = U·SiLU(Dᵀh), rank r, initialised as `linear`.
    case silu
    /// A PEFT-style LoRA on the chosen projections of the chosen layers: W + (alpha/r)·B·A, A
    /// `[r, in]` drawn N(0, 1/(3·in)) (the variance of PEFT's Kaiming-uniform A), B = 0.
    case lora
    /// `linear` and `lora` together, each layer's D projected onto the orthogonal complement of
    /// col(B) of its down_proj LoRA every `projectionInterval` steps (the paper's joint mode).
    case joint

    /// The post-block kinds (no LoRA).
    public static let steeringKinds: [TrainingKind] = [.vector, .linear, .silu]
    /// Trains a post-block adapter.
    public var trainsSteering: Bool { self != .lora }
    /// Trains a LoRA.
    public var trainsLoRA: Bool { self == .lora || self == .joint }
}

/// The learning-rate curve after the warm-up (transformers' `get_*_schedule_with_warmup`).
public enum TrainingSchedule: String, Sendable, CaseIterable {
    /// Linear decay to 0 (the paper's).
    case linear
    /// Half-cosine decay to 0.
    case cosine
    /// The peak rate to the end.
    case constant

    /// The schedule of a run of `total` steps with `warmup` of warm-up.
    public func learningRate(warmup: Int, total: Int) -> LearningRateSchedule {
        switch self {
        case .linear: .linearWarmup(warmupSteps: warmup, totalSteps: total)
        case .cosine: .cosineWarmup(warmupSteps: warmup, totalSteps: total)
        case .constant: .constantWarmup(warmupSteps: warmup)
        }
    }
}

/// Settings of `SteeringTrainer` (defaults: the paper code's).
public struct SteeringTrainingOptions: Sendable, Equatable {
    /// The adapter family.
    public var kind: TrainingKind = .linear
    /// r of the linear and SiLU kinds (and of joint's adapter).
    public var rank: Int = 8
    /// r of the LoRA (lora and joint kinds).
    public var loraRank: Int = 8
    /// LoRA alpha: the update is (alpha / loraRank)·B·A.
    public var loraAlpha: Float = 16
    /// Projections carrying the LoRA (all seven by default, the paper's baseline).
    public var loraProjections: [LlamaProjection] = LlamaProjection.allCases
    /// Joint kind: steps between orthogonal projections (0: never).
    public var projectionInterval: Int = 100
    /// The positions steered: every token (the paper's), or each example's last prompt token
    /// (the data must then be one prompt and one completion per line).
    public var positions: SteeringPositions = .all
    /// 0-based layers steered; nil = every layer.
    public var layers: [Int]?
    /// Passes over the data.
    public var epochs: Int = 1
    /// Sequences per micro-batch: each step's loss is the mean over the targets of its
    /// `batchSize · gradientAccumulation` sequences.
    public var batchSize: Int = 8
    /// Micro-batches per optimizer step.
    public var gradientAccumulation: Int = 2
    /// Peak learning rate, reached after `warmupFraction` of the steps (linear warm-up, then
    /// `schedule`).
    public var learningRate: Float = 9e-4
    /// (Double, so that the warm-up length ⌈steps · fraction⌉ is transformers' own.)
    public var warmupFraction: Double = 0.03
    /// The curve after the warm-up.
    public var schedule: TrainingSchedule = .linear
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float = 0
    /// Global gradient-norm clipping (transformers' Trainer default 1).
    public var clipNorm: Float? = 1
    /// Seeds the initialisation (`seed + 1 + layer` per layer) and the data order.
    public var seed: UInt64 = 0
    /// Stop after this many optimizer steps (nil: every step of every epoch); the schedule still
    /// spans the full run.
    public var maxSteps: Int?
    /// Validation loss every this many steps (and after the last) when validation data is given.
    public var evaluationInterval: Int = 50
    /// Return the adapter of the evaluated step with the lowest validation loss (the start
    /// included) instead of the last.
    public var keepBest: Bool = false

    /// Defaults.
    public init() {}

    /// Sequences per optimizer step.
    public var sequencesPerStep: Int { batchSize * gradientAccumulation }
}

/// One optimizer step of a training run.
public struct SteeringTrainingStep: Sendable, Equatable {
    /// 1-based step.
    public var step: Int
    /// Mean loss over the step's targets before the update, in nats.
    public var loss: Double
    /// Targets the mean ran over.
    public var targets: Int
    /// All tokens of the step's sequences.
    public var tokens: Int
    /// The learning rate the update used (after the schedule).
    public var learningRate: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Wall seconds of the step.
    public var seconds: Double
    /// Mean loss over the validation data's targets after the update, when evaluated.
    public var validationLoss: Double? = nil
    /// Accuracy on the generation-scored validation items after the update, when evaluated.
    public var validationAccuracy: Double? = nil

    /// The validation point of this step (nil when not evaluated).
    public var validation: ValidationScore? {
        validationLoss == nil && validationAccuracy == nil ? nil : ValidationScore(loss: validationLoss, accuracy: validationAccuracy)
    }
}

/// What `SteeringTrainer.train` returns.
public struct SteeringTrainingResult: Sendable {
    /// The trained post-block adapter, made for the model it was trained on (no layers for the
    /// lora kind).
    public var adapter: SteeringAdapter
    /// The trained LoRA (lora and joint kinds; nil otherwise).
    public var lora: LoRAWeights?
    /// Every step taken.
    public var steps: [SteeringTrainingStep]
    /// Steps the schedule spans (epochs × batches per epoch).
    public var plannedSteps: Int
    /// Trainable parameters.
    public var parameterCount: Int
    /// Their share of the model's parameters.
    public var parameterFraction: Double
    /// Validation loss of the starting adapter (nil without validation data).
    public var initialValidationLoss: Double?
    /// Validation accuracy of the starting adapter (nil without generation-scored items).
    public var initialValidationAccuracy: Double? = nil
    /// The step whose adapter is returned (0: the start; the last step unless `keepBest`).
    public var selectedStep: Int
    /// Joint kind: every orthogonal projection made.
    public var projections: [JointProjectionRecord] = []

    /// Wall seconds of all steps.
    public var seconds: Double { steps.reduce(0) { $0 + $1.seconds } }
    /// Tokens of all steps' sequences.
    public var tokens: Int { steps.reduce(0) { $0 + $1.tokens } }
    /// Training throughput (0 before any step).
    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
}

/// Trains post-block steering adapters on a user's data with the model frozen: the
/// completion-masked cross-entropy (`TrainingObjective.targetedCrossEntropy`) through
/// `SteeringBackprop`, Adam(W) with global-norm clipping and a linear warm-up/decay schedule.
///
/// Data order: each epoch a Fisher–Yates shuffle of the examples drawn from one
/// `SplitMix64(seed)` that runs on across epochs (step i of the shuffle swaps position i with
/// `next() % (i + 1)`, i from the end down to 1), cut into consecutive groups of
/// `sequencesPerStep` (the last one of an epoch may be smaller). Each group is one optimizer step.
public enum SteeringTrainer {
    /// The adapter a run starts from (see `TrainingKind`).
    public static func initialAdapter(config: LlamaConfig, options: SteeringTrainingOptions) throws -> SteeringAdapter {
        let d = config.hiddenSize
        let layers = options.layers ?? Array(0..<config.numHiddenLayers)
        guard !layers.isEmpty, layers.allSatisfy({ $0 >= 0 && $0 < config.numHiddenLayers }), Set(layers).count == layers.count else {
            throw RuntimeError.invalidArgument("train: layers \(layers) are not distinct layers of 0..<\(config.numHiddenLayers)")
        }
        guard options.kind == .vector || (options.rank >= 1 && options.rank <= d) else {
            throw RuntimeError.invalidArgument("train: rank \(options.rank) outside 1...\(d)")
        }
        var out: [Int: SteeringLayer] = [:]
        for l in layers {
            switch options.kind {
            case .lora:
                continue   // no post-block adapter
            case .vector:
                out[l] = SteeringLayer(bias: Tensor(shape: [d]))
            case .linear, .silu, .joint:
                let down = Tensor.randomNormal([d, options.rank], std: 1 / (3 * Float(d)).squareRoot(), seed: options.seed &+ 1 &+ UInt64(l))
                out[l] = SteeringLayer(down: down, up: Tensor(shape: [d, options.rank]))
            }
        }
        return SteeringAdapter(site: .blockOutput, activation: options.kind == .silu ? .silu : .identity, layers: out,
                               positions: options.positions)
    }

    /// The LoRA a run starts from (lora and joint kinds; nil otherwise): on every chosen layer
    /// and projection (in `LlamaProjection.allCases` order), A `[loraRank, in]` =
    /// `Tensor.randomNormal(std 1/√(3·in), seed + 1 + L + 7·layer + projection index)` (L the
    /// model's layer count, so no seed repeats an adapter's), B = 0 `[out, loraRank]`, scale
    /// alpha / loraRank.
    public static func initialLoRA(config: LlamaConfig, options: SteeringTrainingOptions) throws -> LoRAWeights? {
        guard options.kind.trainsLoRA else { return nil }
        let L = config.numHiddenLayers
        guard options.loraRank >= 1, options.loraAlpha > 0, !options.loraProjections.isEmpty else {
            throw RuntimeError.invalidArgument("train: LoRA rank ≥ 1, alpha > 0 and at least one projection")
        }
        var out: [Int: [LlamaProjection: LoRAFactors]] = [:]
        for l in options.layers ?? Array(0..<L) {
            for (i, p) in LlamaProjection.allCases.enumerated() where options.loraProjections.contains(p) {
                let nIn = p.inputSize(config)
                let seed = options.seed &+ 1 &+ UInt64(L + 7 * l + i)
                out[l, default: [:]][p] = LoRAFactors(
                    a: .randomNormal([options.loraRank, nIn], std: 1 / (3 * Float(nIn)).squareRoot(), seed: seed),
                    b: Tensor(shape: [p.outputSize(config), options.loraRank]), scale: options.loraAlpha / Float(options.loraRank))
            }
        }
        return LoRAWeights(name: "train", layers: out)
    }

    /// Optimizer steps of a full run over `examples` (`schedule(…).count`).
    public static func plannedSteps(examples: Int, options: SteeringTrainingOptions) -> Int {
        options.epochs * ((examples + options.sequencesPerStep - 1) / options.sequencesPerStep)
    }

    /// The mean completion-masked loss of `examples` under `adapter`, with its gradients when
    /// `gradients`.
    static func loss(of examples: [TrainingExample], adapter: SteeringAdapter, lora: LoRAWeights?, backprop: SteeringBackprop,
                     gradients: Bool) throws -> SteeringGradients {
        try backprop.lossAndGradients(sequences: examples.map(\.tokens), objectives: examples.map { .targetedCrossEntropy(targets: $0.targets) },
                                      adapter: adapter, lora: lora, promptLengths: examples.map(\.promptLength), computeGradients: gradients)
    }

    /// The example indices of every optimizer step of the run, in order (see the type's
    /// documentation).
    public static func schedule(examples: Int, options: SteeringTrainingOptions) -> [[Int]] {
        var rng = SplitMix64(seed: options.seed)
        var steps: [[Int]] = []
        for _ in 0..<options.epochs {
            var order = Array(0..<examples)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            for start in stride(from: 0, to: order.count, by: options.sequencesPerStep) {
                steps.append(Array(order[start..<min(start + options.sequencesPerStep, order.count)]))
            }
        }
        return steps
    }

    /// Trains on `data` (read for `model`). `progress` sees every step; `shouldStop` is asked
    /// before each step (Ctrl-C), and a stopped run throws `RuntimeError.interrupted` rather than
    /// returning a half-trained adapter (with `checkpoints`, after saving where it stood).
    /// - Throws: `RuntimeError.invalidArgument` for settings out of range, a model carrying
    ///   adapters, or a checkpoint of another run; `.invalidData` for data that `positions` last
    ///   cannot train on (`TrainingData.requireOneCompletionEach`); the runtime's errors.
    /// `validation` (optional) is scored every `options.evaluationInterval` steps and after the
    /// last: the mean completion-masked loss over all its examples; `validationTasks` (optional)
    /// at the same steps: the accuracy on its generation-scored items. With `keepBest` the
    /// returned tensors are those of the best point (`ValidationScore.isBetter`: accuracy first
    /// when there are items).
    ///
    /// The trainable tensors are the adapter's (`SteeringAdapter.parameterTensors`) followed by
    /// the LoRA's (`LoRAWeights.parameterTensors`), one AdamW over all of them (clipping by their
    /// global norm). Joint kind: after the update of every `projectionInterval`-th step each
    /// layer's D is projected off col(B_down) (`JointAdaptation.projectAdapters`); Adam's moments
    /// are kept and the parameters continue from the projected values.
    public static func train(model: LlamaModel, data: TrainingData, validation: TrainingData? = nil,
                             validationTasks: ValidationTasks? = nil, options: SteeringTrainingOptions,
                             checkpoints: TrainingCheckpoints? = nil,
                             progress: ((SteeringTrainingStep) -> Void)? = nil,
                             shouldStop: () -> Bool = { false }) throws -> SteeringTrainingResult {
        guard options.epochs >= 1, options.batchSize >= 1, options.gradientAccumulation >= 1, options.learningRate > 0,
              options.warmupFraction >= 0, options.warmupFraction < 1, options.weightDecay >= 0, (options.maxSteps ?? 1) >= 1,
              options.evaluationInterval >= 1, options.projectionInterval >= 0, (checkpoints?.interval ?? 1) >= 1 else {
            throw RuntimeError.invalidArgument("train: epochs, batch, accumulation and checkpoint interval ≥ 1, lr > 0, warm-up in [0, 1), weight decay ≥ 0, projection interval ≥ 0")
        }
        if options.positions == .last {
            guard options.kind.trainsSteering else {
                throw RuntimeError.invalidArgument("train: positions last steers a post-block adapter; a LoRA changes every position")
            }
            try data.requireOneCompletionEach()
            try validation?.requireOneCompletionEach()
        }
        let backprop = try SteeringBackprop(model: model)
        var adapter = try initialAdapter(config: model.config, options: options)
        adapter.madeFor = model.signature
        var lora = try initialLoRA(config: model.config, options: options)
        let plan = schedule(examples: data.examples.count, options: options)
        let warmup = Int((Double(plan.count) * options.warmupFraction).rounded(.up))
        var adam = AdamOptimizer(options: AdamOptions(learningRate: options.learningRate, weightDecay: options.weightDecay,
                                                      clipNorm: options.clipNorm,
                                                      schedule: options.schedule.learningRate(warmup: warmup, total: plan.count)))
        let nAdapter = adapter.parameterTensors.count
        var params = adapter.parameterTensors + (lora?.parameterTensors ?? [])
        func setParameters(_ values: [Tensor]) {
            params = values
            adapter = adapter.replacingParameters(Array(values[0..<nAdapter]))
            lora = lora?.replacingParameters(Array(values[nAdapter...]))
        }
        var steps: [SteeringTrainingStep] = []
        var projections: [JointProjectionRecord] = []
        let validates = validation.map { !$0.examples.isEmpty } == true || validationTasks.map { !$0.items.isEmpty } == true
        func score() throws -> ValidationScore {
            var out = ValidationScore()
            if let validation, !validation.examples.isEmpty {
                out.loss = try loss(of: validation.examples, adapter: adapter, lora: lora, backprop: backprop, gradients: false).loss
            }
            if let validationTasks, !validationTasks.items.isEmpty {
                var steered = try model.adding(adapter, name: "training")
                if let lora { try steered.add(lora) }
                out.accuracy = try validationTasks.accuracy(of: steered)
            }
            return out
        }
        let initialValidation: ValidationScore?
        var best: TrainingCheckpoint.Best?
        if let resume = checkpoints?.resume {
            let differences = resume.differences(from: checkpoints!.run)
            guard differences.isEmpty else {
                throw RuntimeError.invalidArgument("train: the checkpoint is of another run (\(differences.joined(separator: "; ")))")
            }
            guard resume.completedSteps <= plan.count, resume.parameters.count == params.count,
                  zip(resume.parameters, params).allSatisfy({ $0.shape == $1.shape }) else {
                throw RuntimeError.invalidArgument("train: the checkpoint's \(resume.parameters.count) tensors after \(resume.completedSteps) steps do not fit this run's \(params.count) tensors and \(plan.count) steps")
            }
            setParameters(resume.parameters)
            try adam.restore(resume.optimizer, for: params)
            steps = resume.steps; projections = resume.projections
            initialValidation = resume.initialValidation; best = resume.best
            // A best point at the checkpoint's own step was stored as "the current tensors".
            if best?.parameters == nil, best?.step == resume.completedSteps { best?.parameters = resume.parameters }
        } else {
            initialValidation = validates ? try score() : nil
            best = initialValidation.map { .init(step: 0, score: $0, parameters: params) }
        }
        func checkpoint() -> TrainingCheckpoint {
            TrainingCheckpoint(run: checkpoints?.run ?? .null, completedSteps: steps.count, parameters: params,
                               optimizer: adam.state(shapedAs: params), steps: steps, initialValidation: initialValidation,
                               best: best.map { b in .init(step: b.step, score: b.score, parameters: b.step == steps.count ? nil : b.parameters) },
                               projections: projections)
        }
        var lastSaved = steps.count
        let taken = min(options.maxSteps ?? plan.count, plan.count)
        for (i, indices) in plan.prefix(taken).enumerated() where i >= steps.count {
            if shouldStop() {
                if let checkpoints, steps.count > lastSaved { try checkpoints.save(checkpoint()) }
                throw RuntimeError.interrupted(after: i)
            }
            let start = Date()
            let examples = indices.map { data.examples[$0] }
            let g = try loss(of: examples, adapter: adapter, lora: lora, backprop: backprop, gradients: true)
            let report = adam.update(parameters: &params,
                                     gradients: g.tensors(matching: adapter) + (lora.map { g.loraTensors(matching: $0) } ?? []))
            setParameters(params)
            if options.kind == .joint, let w = lora, options.projectionInterval > 0, (i + 1) % options.projectionInterval == 0 {
                projections += try JointAdaptation.projectAdapters(&adapter, lora: w, step: i + 1)
                params.replaceSubrange(0..<nAdapter, with: adapter.parameterTensors)
            }
            var step = SteeringTrainingStep(step: i + 1, loss: g.loss, targets: g.positions, tokens: examples.reduce(0) { $0 + $1.tokens.count },
                                            learningRate: report.learningRate, gradientNorm: report.gradientNorm,
                                            seconds: Date().timeIntervalSince(start))
            // Validation on its schedule (every interval and after the plan's last step); a run cut
            // short by maxSteps also validates its last step, after its checkpoint, so that a
            // resumed run sees only the scheduled points, as the uninterrupted run does.
            let scheduled = (i + 1) % options.evaluationInterval == 0 || i + 1 == plan.count
            func validate() throws {
                let v = try score()
                step.validationLoss = v.loss; step.validationAccuracy = v.accuracy
                if best.map({ v.isBetter(than: $0.score) }) ?? true { best = .init(step: i + 1, score: v, parameters: params) }
            }
            if validates, scheduled { try validate() }
            steps.append(step)
            if let checkpoints, (i + 1) % checkpoints.interval == 0 || i + 1 == taken {
                try checkpoints.save(checkpoint())
                lastSaved = steps.count
            }
            if validates, !scheduled, i + 1 == taken {
                try validate()
                steps[steps.count - 1] = step
            }
            progress?(step)
        }
        var selected = steps.count
        if options.keepBest, let b = best, b.step != steps.count, let kept = b.parameters { setParameters(kept); selected = b.step }
        let count = adapter.parameterCount + (lora?.parameterCount ?? 0)
        return SteeringTrainingResult(adapter: adapter, lora: lora, steps: steps, plannedSteps: plan.count, parameterCount: count,
                                      parameterFraction: Double(count) / Double(max(model.weights.parameterCount, 1)),
                                      initialValidationLoss: initialValidation?.loss, initialValidationAccuracy: initialValidation?.accuracy,
                                      selectedStep: selected, projections: projections)
    }
}
