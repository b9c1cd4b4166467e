import Foundation
import Formats
import Tensors

/// Where a training run stood after a step, so that `SteeringTrainer.train(…resume:)` continues it
/// as if it had never stopped: same data order (the plan is rebuilt from the seed and the steps
/// already taken are skipped), trainable tensors, AdamW moments and step (so the schedule), the
/// steps' records, the validation's best so far and the joint projections made.
///
/// File: safetensors with `parameter.<i>` (the trainable tensors in `SteeringTrainer` order:
/// adapter, then LoRA), `adam.m.<i>`, `adam.v.<i>`, `best.<i>` (the kept-best tensors, when
/// validation kept one) and `__metadata__` {`format` "steertool-training-checkpoint",
/// `format_version` "1", `run` (the run's identity, JSON: settings and data fingerprints, compared
/// on resume), `state` (JSON: completed_steps, adam_step, steps [{step, loss, targets, tokens, lr,
/// gradient_norm, seconds, validation_loss, validation_accuracy}], initial_validation {loss,
/// accuracy}, best {step, score {loss, accuracy}}, projections [{step, layer, cosine_before,
/// cosine_after}])}.
public struct TrainingCheckpoint: Sendable {
    /// The best validation point so far.
    public struct Best: Sendable, Equatable {
        /// Its step (0: the start).
        public var step: Int
        /// Its validation figures.
        public var score: ValidationScore
        /// Its trainable tensors (nil: the current ones).
        public var parameters: [Tensor]?

        /// A best point.
        public init(step: Int, score: ValidationScore, parameters: [Tensor]?) { self.step = step; self.score = score; self.parameters = parameters }
    }

    /// Value of the `format` metadata key.
    public static let formatName = "steertool-training-checkpoint"

    /// The run's identity (settings and data fingerprints); `SteeringTrainer.train` refuses to
    /// resume a checkpoint whose `run` differs from the one it is given.
    public var run: JSONValue
    /// Optimizer steps taken.
    public var completedSteps: Int
    /// The trainable tensors after them.
    public var parameters: [Tensor]
    /// AdamW's moments and step.
    public var optimizer: AdamOptimizer.State
    /// The records of the steps taken.
    public var steps: [SteeringTrainingStep]
    /// Validation figures of the starting parameters (nil without validation).
    public var initialValidation: ValidationScore?
    /// The best validation point so far (nil without validation data).
    public var best: Best?
    /// Joint kind: the projections made so far.
    public var projections: [JointProjectionRecord]

    /// A checkpoint.
    public init(run: JSONValue, completedSteps: Int, parameters: [Tensor], optimizer: AdamOptimizer.State, steps: [SteeringTrainingStep],
                initialValidation: ValidationScore?, best: Best?, projections: [JointProjectionRecord]) {
        self.run = run; self.completedSteps = completedSteps; self.parameters = parameters; self.optimizer = optimizer
        self.steps = steps; self.initialValidation = initialValidation; self.best = best; self.projections = projections
    }

    /// Writes the checkpoint to `path` through a temporary file and a rename, replacing an earlier
    /// checkpoint there (a run rewrites its own checkpoint every few steps).
    public func write(to path: String) throws {
        var records: [TensorRecord] = []
        for (i, t) in parameters.enumerated() { records.append(SafetensorsWriter.record("parameter.\(i)", t)) }
        for (i, t) in optimizer.m.enumerated() { records.append(SafetensorsWriter.record("adam.m.\(i)", t)) }
        for (i, t) in optimizer.v.enumerated() { records.append(SafetensorsWriter.record("adam.v.\(i)", t)) }
        for (i, t) in (best?.parameters ?? []).enumerated() { records.append(SafetensorsWriter.record("best.\(i)", t)) }
        func optional(_ x: Double?) -> JSONValue { x.map { .double($0) } ?? .null }
        func scoreJSON(_ v: ValidationScore) -> JSONValue { .object([("loss", optional(v.loss)), ("accuracy", optional(v.accuracy))]) }
        let state: JSONValue = .object([
            ("completed_steps", .int(completedSteps)), ("adam_step", .int(optimizer.step)),
            ("steps", .array(steps.map { s in
                .object([("step", .int(s.step)), ("loss", .double(s.loss)), ("targets", .int(s.targets)), ("tokens", .int(s.tokens)),
                         ("lr", .float(s.learningRate)), ("gradient_norm", .float(s.gradientNorm)), ("seconds", .double(s.seconds)),
                         ("validation_loss", optional(s.validationLoss)), ("validation_accuracy", optional(s.validationAccuracy))])
            })),
            ("initial_validation", initialValidation.map(scoreJSON) ?? .null),
            ("best", best.map { .object([("step", .int($0.step)), ("score", scoreJSON($0.score))]) } ?? .null),
            ("projections", .array(projections.map { p in
                .object([("step", .int(p.step)), ("layer", .int(p.layer)), ("cosine_before", .float(p.cosineBefore)),
                         ("cosine_after", .float(p.cosineAfter))])
            })),
        ])
        try SafetensorsWriter.write(records, metadata: ["format": Self.formatName, "format_version": "1",
                                                        "run": run.description, "state": state.description],
                                    to: path, force: true)
    }

    /// Reads a checkpoint written by `write`.
    /// - Throws: `RuntimeError.invalidArgument` naming the file and what is wrong with it; the
    ///   safetensors reader's errors.
    public static func load(path: String) throws -> TrainingCheckpoint {
        let file = try SafetensorsFile(path: path)
        func fail(_ reason: String) -> RuntimeError { .invalidArgument("\(path): \(reason)") }
        let m = file.metadata
        guard m["format"] == formatName else { throw fail("not a steertool training checkpoint (format is \(m["format"] ?? "missing"))") }
        guard m["format_version"] == "1" else { throw fail("unsupported format_version \(m["format_version"] ?? "missing")") }
        guard let runText = m["run"], let run = try? JSONParser.parse(Array(runText.utf8)),
              let stateText = m["state"], let state = try? JSONParser.parse(Array(stateText.utf8)) else {
            throw fail("its run or state metadata is missing or not JSON")
        }
        guard let completed = state["completed_steps"]?.intValue, completed >= 0, let adamStep = state["adam_step"]?.intValue,
              let stepList = state["steps"]?.arrayValue, let projectionList = state["projections"]?.arrayValue else {
            throw fail("its state lacks completed_steps, adam_step, steps or projections")
        }
        func tensors(_ prefix: String) throws -> [Tensor] {
            var out: [Tensor] = []
            while file.tensorNames.contains("\(prefix).\(out.count)") { out.append(try file.tensor(named: "\(prefix).\(out.count)")) }
            return out
        }
        let parameters = try tensors("parameter"), mm = try tensors("adam.m"), vv = try tensors("adam.v"), bestParameters = try tensors("best")
        let expected = parameters.count + mm.count + vv.count + bestParameters.count
        guard file.tensorNames.count == expected, mm.count == vv.count, mm.isEmpty || mm.count == parameters.count,
              bestParameters.isEmpty || bestParameters.count == parameters.count else {
            throw fail("its tensors are not parameter.i, adam.m.i, adam.v.i and best.i of one count")
        }
        var steps: [SteeringTrainingStep] = []
        for (i, s) in stepList.enumerated() {
            guard let step = s["step"]?.intValue, let loss = s["loss"]?.doubleValue, let targets = s["targets"]?.intValue,
                  let tokens = s["tokens"]?.intValue, let lr = s["lr"]?.doubleValue, let norm = s["gradient_norm"]?.doubleValue,
                  let seconds = s["seconds"]?.doubleValue else { throw fail("step record \(i) is incomplete") }
            steps.append(SteeringTrainingStep(step: step, loss: loss, targets: targets, tokens: tokens, learningRate: Float(lr),
                                              gradientNorm: Float(norm), seconds: seconds, validationLoss: s["validation_loss"]?.doubleValue,
                                              validationAccuracy: s["validation_accuracy"]?.doubleValue))
        }
        guard steps.count == completed else { throw fail("\(steps.count) step records for \(completed) completed steps") }
        var projections: [JointProjectionRecord] = []
        for (i, p) in projectionList.enumerated() {
            guard let step = p["step"]?.intValue, let layer = p["layer"]?.intValue, let before = p["cosine_before"]?.doubleValue,
                  let after = p["cosine_after"]?.doubleValue else { throw fail("projection record \(i) is incomplete") }
            projections.append(JointProjectionRecord(step: step, layer: layer, cosineBefore: Float(before), cosineAfter: Float(after)))
        }
        func score(_ v: JSONValue?) -> ValidationScore? {
            guard let v, !v.isNull else { return nil }
            return ValidationScore(loss: v["loss"]?.doubleValue, accuracy: v["accuracy"]?.doubleValue)
        }
        var best: Best?
        if let b = state["best"], !b.isNull {
            guard let step = b["step"]?.intValue, let s = score(b["score"]) else { throw fail("its best record is incomplete") }
            best = Best(step: step, score: s, parameters: bestParameters.isEmpty ? nil : bestParameters)
        }
        return TrainingCheckpoint(run: run, completedSteps: completed, parameters: parameters,
                                  optimizer: AdamOptimizer.State(step: adamStep, m: mm, v: vv), steps: steps,
                                  initialValidation: score(state["initial_validation"]), best: best, projections: projections)
    }

    /// The run identity `steertool train` records: every setting that shapes the run (what
    /// `--max-steps` stops early is not one: a resumed run may go further) and the fingerprints
    /// of its training and validation data.
    public static func runIdentity(options: SteeringTrainingOptions, data: FileFingerprint, validation: FileFingerprint?,
                                   maxLength: Int, chat: Bool) -> JSONValue {
        .object([
            ("kind", .string(options.kind.rawValue)), ("rank", .int(options.rank)), ("positions", .string(options.positions.rawValue)),
            ("layers", options.layers.map { .array($0.map { .int($0) }) } ?? .null),
            ("lora_rank", .int(options.loraRank)), ("lora_alpha", .float(options.loraAlpha)),
            ("lora_projections", .array(options.loraProjections.map { .string($0.rawValue) })),
            ("projection_interval", .int(options.projectionInterval)),
            ("epochs", .int(options.epochs)), ("batch", .int(options.batchSize)), ("grad_accum", .int(options.gradientAccumulation)),
            ("lr", .float(options.learningRate)), ("warmup", .double(options.warmupFraction)), ("schedule", .string(options.schedule.rawValue)),
            ("weight_decay", .float(options.weightDecay)), ("clip_norm", options.clipNorm.map { .float($0) } ?? .null),
            ("seed", .string(String(options.seed))), ("eval_every", .int(options.evaluationInterval)), ("keep_best", .bool(options.keepBest)),
            ("max_length", .int(maxLength)), ("chat", .bool(chat)),
            ("data", .string(data.description)), ("validation", validation.map { .string($0.description) } ?? .null),
        ])
    }

    /// The settings where `self.run` and `run` differ (keys in `run`'s order), for the error of a
    /// resume that does not continue the same run.
    public func differences(from run: JSONValue) -> [String] {
        let mine = self.run.objectValue ?? [], theirs = run.objectValue ?? []
        let keys = theirs.map(\.0) + mine.map(\.0).filter { k in !theirs.contains { $0.0 == k } }
        return keys.filter { k in self.run[k] != run[k] }.map { k in
            "\(k): checkpoint \(self.run[k]?.description ?? "absent"), this run \(run[k]?.description ?? "absent")"
        }
    }
}

/// Checkpointing of a `SteeringTrainer.train` run.
public struct TrainingCheckpoints {
    /// Save after every this many steps (and after the last, and when stopped by `shouldStop`).
    public var interval: Int
    /// The run's identity (`TrainingCheckpoint.runIdentity`), recorded in each checkpoint and
    /// compared with `resume`'s.
    public var run: JSONValue
    /// Continue from this checkpoint (nil: start afresh).
    public var resume: TrainingCheckpoint?
    /// Stores a checkpoint (e.g. `TrainingCheckpoint.write(to:)`).
    public var save: (TrainingCheckpoint) throws -> Void

    /// Settings.
    public init(interval: Int, run: JSONValue, resume: TrainingCheckpoint? = nil, save: @escaping (TrainingCheckpoint) throws -> Void) {
        self.interval = interval; self.run = run; self.resume = resume; self.save = save
    }
}
