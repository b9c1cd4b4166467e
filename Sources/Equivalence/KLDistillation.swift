import Foundation
import Runtime
import Tensors

/// Options of `KLDistiller.distill`.
public struct KLDistillOptions: Sendable {
    /// The closed-form initialisation (its `method` is forced to `.sequential`; its `fit.kind`
    /// and `fit.rank` set the adapter's kind and rank).
    public var initial: DistillOptions
    /// Adam steps.
    public var steps: Int
    /// Calibration windows per step (minibatch).
    public var batchSize: Int
    /// Calibration sequences are cut into windows of at most this many tokens (each run from
    /// position 0); a tail shorter than 2 tokens is dropped.
    public var windowLength: Int
    /// Optimiser settings (learning rate, clipping, schedule, weight decay).
    public var adam: AdamOptions
    /// Seed of the minibatch order (a fresh SplitMix64 shuffle of the windows every epoch).
    public var seed: UInt64
    /// Held-out KL and recovered fraction are measured every this many steps (and at steps 0 and
    /// `steps`); 0 = only at the ends.
    public var evaluationInterval: Int
    /// Joint adaptation (`--kind joint`): a LoRA trained alongside the adapters; nil = adapters only.
    public var joint: JointAdaptationOptions?
    /// Return the parameters of the evaluation point with the lowest held-out KL (the closed-form
    /// start included) instead of the last step's; the held-out set then serves as a validation
    /// set. Off by default (the last step's parameters, as the PyTorch reference returns).
    public var keepBest = false

    public init(initial: DistillOptions = .init(), steps: Int = 300, batchSize: Int = 4, windowLength: Int = 128,
                adam: AdamOptions = .init(learningRate: 1e-3, clipNorm: 1, schedule: .constant), seed: UInt64 = 0,
                evaluationInterval: Int = 50) {
        self.initial = initial; self.steps = steps; self.batchSize = batchSize; self.windowLength = windowLength
        self.adam = adam; self.seed = seed; self.evaluationInterval = evaluationInterval
        self.joint = nil
    }
}

/// One point of the training curve.
public struct KLTrainingPoint: Sendable {
    /// Steps taken (0 = the closed-form initialisation).
    public var step: Int
    /// Mean KL(p_ft ‖ p_steered) of the minibatch of this step, before its update (nats; nil at step 0).
    public var trainKL: Double?
    /// Global gradient norm before clipping (nil at step 0).
    public var gradientNorm: Float?
    /// Held-out figures when measured at this step (`ModelEvaluation`'s definitions).
    public var heldOutKL: Double?
    public var heldOutLoss: Double?
    public var recoveredFraction: Double?
    /// Training tokens per second over the steps so far, held-out evaluations excluded (nil at step 0).
    public var tokensPerSecond: Double?
}

/// The trained adapter, its initialisation and the curve.
public struct KLDistillationResult: Sendable {
    /// The post-block adapter after training.
    public var adapter: SteeringAdapter
    /// The sequential closed-form result it started from.
    public var initial: DistillationResult
    /// Held-out next-token loss of the base and the fine-tune.
    public var baseLoss: Double
    public var finetunedLoss: Double
    /// Step 0, every `evaluationInterval`-th step, and the last step carry held-out figures;
    /// every step carries its minibatch KL.
    public var curve: [KLTrainingPoint]
    /// Adapter parameters (plus the LoRA's in joint mode) and their fraction of the model's.
    public var parameterCount: Int
    public var parameterFraction: Double
    /// Joint mode: the trained LoRA, and the orthogonal projections applied (cosines before and after).
    public var lora: LoRAWeights?
    public var projections: [JointProjectionRecord] = []
    /// The step whose parameters `adapter` (and `lora`) hold: the last step, or with `keepBest`
    /// the evaluated step of lowest held-out KL (0 = the closed-form start).
    public var selectedStep: Int = 0
}

/// End-to-end distillation: trains every layer's post-block adapter jointly so that the steered
/// base's next-token distributions match the fine-tune's (mean per-token KL(p_ft ‖ p_steered) on
/// calibration windows), by Adam on `SteeringBackprop`'s gradients, starting from
/// `Distiller.distill(method: .sequential)`.
public enum KLDistiller {
    /// Runs the training. `heldOut` sequences (each from position 0) give the logged held-out
    /// KL, loss and recovered fraction; `progress` is called with every curve point.
    /// - Throws: `EquivalenceError.invalidArgument` for empty inputs or non-positive settings,
    ///   `.modelMismatch`, or the runtime's errors.
    ///
    /// A model larger than a quarter of the machine's memory is run with `streamsLayerPages`
    /// (`LlamaModel.streamingLayerPagesIfLarge`), so each pass keeps about one layer resident.
    public static func distill(base: LlamaModel, finetuned: LlamaModel, calibration: [[Int]], heldOut: [[Int]],
                               options: KLDistillOptions = .init(),
                               progress: ((KLTrainingPoint) -> Void)? = nil) throws -> KLDistillationResult {
        let base = base.streamingLayerPagesIfLarge, finetuned = finetuned.streamingLayerPagesIfLarge
        guard options.steps >= 0, options.batchSize >= 1, options.windowLength >= 2 else {
            throw EquivalenceError.invalidArgument("KL distillation needs steps ≥ 0, batch ≥ 1, window ≥ 2")
        }
        guard base.loraAdapters.isEmpty, base.steeringAdapters.isEmpty else {
            throw EquivalenceError.invalidArgument("KL distillation trains on a base model without adapters")
        }
        let backprop = try SteeringBackprop(model: base)   // refuses layers it cannot differentiate before any work
        let windows = calibration.flatMap { s in
            stride(from: 0, to: s.count, by: options.windowLength).map { Array(s[$0..<min($0 + options.windowLength, s.count)]) }
        }.filter { $0.count >= 2 }
        guard !windows.isEmpty else { throw EquivalenceError.tooFewTokens(what: "KL distillation", needed: 2, found: 0) }
        guard heldOut.contains(where: { $0.count >= 2 }) else {
            throw EquivalenceError.tooFewTokens(what: "KL distillation held-out set", needed: 2, found: heldOut.map(\.count).max() ?? 0)
        }

        var initOptions = options.initial
        initOptions.method = .sequential
        let initial = try Distiller.distill(base: base, finetuned: finetuned, sequences: windows, options: initOptions)
        var adapter = initial.adapter
        // Every steered layer trains a bias too (the closed form has one except for rank 0 fits).
        for (l, s) in adapter.layers where s.bias == nil {
            adapter.layers[l] = SteeringLayer(down: s.down, up: s.up, bias: Tensor(shape: [base.config.hiddenSize]))
        }

        let baseLoss = try ModelEvaluation.loss(base, sequences: heldOut)
        let ftLoss = try ModelEvaluation.loss(finetuned, sequences: heldOut)
        var lora: LoRAWeights? = options.joint.map {
            JointAdaptation.initialLoRA(config: base.config, layers: Array(adapter.layers.keys), options: $0)
        }
        if options.joint?.weightOnly == true { adapter.layers = [:] }
        func evaluate(_ a: SteeringAdapter) throws -> (kl: Double, loss: Double, recovered: Double) {
            var steered = try base.adding(a, name: "kl-distilled")
            if let lora { try steered.add(lora) }
            let loss = try ModelEvaluation.loss(steered, sequences: heldOut)
            let kl = try ModelEvaluation.meanKL(reference: finetuned, model: steered, sequences: heldOut)
            return (kl, loss, ModelEvaluation.recoveredFraction(baseLoss: baseLoss, finetunedLoss: ftLoss, steeredLoss: loss))
        }

        // Reference log-probs: cached when they fit in 256 MiB, else recomputed per minibatch.
        let vocab = base.config.vocabSize
        let cacheable = windows.reduce(0) { $0 + $1.count } * vocab <= 64 << 20
        var cache: [Int: Tensor] = [:]
        func reference(_ i: Int) throws -> Tensor {
            if let t = cache[i] { return t }
            let t = logSoftmaxRows(try finetuned.forward(tokens: windows[i]).logits)
            if cacheable { cache[i] = t }
            return t
        }

        var curve: [KLTrainingPoint] = []
        let e0 = try evaluate(adapter)
        var best = (step: 0, kl: e0.kl, adapter: adapter, lora: lora)
        var p0 = KLTrainingPoint(step: 0)
        p0.heldOutKL = e0.kl; p0.heldOutLoss = e0.loss; p0.recoveredFraction = e0.recovered
        curve.append(p0); progress?(p0)

        var adam = AdamOptimizer(options: options.adam)
        var rng = SplitMix64(seed: options.seed)
        var order: [Int] = []
        var cursor = 0
        var tokensSeen = 0
        var trainSeconds = 0.0
        var records: [JointProjectionRecord] = []
        let loraKeys: [(Int, LlamaProjection)] = lora.map { w in
            w.layers.keys.sorted().flatMap { l in LlamaProjection.allCases.filter { w.layers[l]?[$0] != nil }.map { (l, $0) } }
        } ?? []
        func loraTensors(_ w: [Int: [LlamaProjection: LoRAFactors]]) -> [Tensor] {
            loraKeys.flatMap { (l, p) in [w[l]![p]!.a, w[l]![p]!.b] }
        }
        let nAdapter = adapter.parameterTensors.count
        var params = adapter.parameterTensors + (lora.map { loraTensors($0.layers) } ?? [])
        for step in 1...max(options.steps, 1) where options.steps > 0 {
            var batch: [Int] = []
            while batch.count < min(options.batchSize, windows.count) {
                if cursor == order.count {
                    order = Array(0..<windows.count)
                    for i in stride(from: order.count - 1, to: 0, by: -1) {
                        order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
                    }
                    cursor = 0
                }
                batch.append(order[cursor]); cursor += 1
            }
            let stepStart = Date()
            let seqs = batch.map { windows[$0] }
            let objectives = try batch.map { TrainingObjective.kl(referenceLogProbs: try reference($0)) }
            let g = try backprop.lossAndGradients(sequences: seqs, objectives: objectives, adapter: adapter, lora: lora)
            var grads = g.tensors(matching: adapter) + loraTensors(g.lora)
            if let joint = options.joint, joint.penalty > 0, let w = lora {
                // λ‖BᵀD‖²: ∂/∂D = 2λ·B·(BᵀD), ∂/∂B = 2λ·D·(DᵀB).
                var offset = 0
                for l in adapter.layers.keys.sorted() {
                    let s = adapter.layers[l]!
                    if let down = s.down, let b = w.layers[l]?[.down]?.b,
                       let bi = loraKeys.firstIndex(where: { $0.0 == l && $0.1 == .down }) {
                        let btd = matmul(b, down, transposeA: true)
                        grads[offset] += matmul(b, btd, alpha: 2 * joint.penalty)
                        grads[nAdapter + 2 * bi + 1] += matmul(down, btd, transposeB: true, alpha: 2 * joint.penalty)
                    }
                    offset += s.parameterTensors.count
                }
            }
            let report = adam.update(parameters: &params, gradients: grads)
            adapter = adapter.replacingParameters(Array(params[0..<nAdapter]))
            if var w = lora {
                for (i, (l, p)) in loraKeys.enumerated() {
                    w.layers[l]![p]!.a = params[nAdapter + 2 * i]
                    w.layers[l]![p]!.b = params[nAdapter + 2 * i + 1]
                }
                lora = w
                if let joint = options.joint, joint.projectionInterval > 0, step % joint.projectionInterval == 0 {
                    records += try JointAdaptation.projectAdapters(&adapter, lora: w, step: step)
                    // Adam's moments stay; the parameters restart from the projected values.
                    params.replaceSubrange(0..<nAdapter, with: adapter.parameterTensors)
                }
            }
            tokensSeen += seqs.reduce(0) { $0 + $1.count }
            var point = KLTrainingPoint(step: step, trainKL: g.loss, gradientNorm: report.gradientNorm)
            trainSeconds += Date().timeIntervalSince(stepStart)
            point.tokensPerSecond = Double(tokensSeen) / max(trainSeconds, 1e-9)
            if step == options.steps || (options.evaluationInterval > 0 && step % options.evaluationInterval == 0) {
                let e = try evaluate(adapter)
                point.heldOutKL = e.kl; point.heldOutLoss = e.loss; point.recoveredFraction = e.recovered
                if e.kl < best.kl { best = (step, e.kl, adapter, lora) }
            }
            curve.append(point); progress?(point)
        }
        var selectedStep = options.steps
        if options.keepBest, best.step != options.steps {
            adapter = best.adapter; lora = best.lora; selectedStep = best.step
        }
        let params_ = adapter.parameterCount + (lora.map { w in loraTensors(w.layers).reduce(0) { $0 + $1.count } } ?? 0)
        return KLDistillationResult(
            adapter: adapter, initial: initial, baseLoss: baseLoss, finetunedLoss: ftLoss, curve: curve,
            parameterCount: params_,
            parameterFraction: Double(params_) / Double(max(base.weights.parameterCount, 1)),
            lora: lora, projections: records, selectedStep: selectedStep)
    }
}
