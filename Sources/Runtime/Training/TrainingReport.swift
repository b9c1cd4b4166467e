import Foundation
import Formats

/// The record a trained steering file carries in its `report` metadata: how it was trained
/// (settings, schedule, optimizer), on what (the data file, its kind, sizes and fingerprint) and
/// how it went (loss per step, time, throughput, parameters).
public enum TrainingReport {
    /// The report's file inside a PEFT folder written by `steertool train --kind lora` (PEFT
    /// folders have no metadata of their own to carry it).
    public static let fileName = "steertool-training.json"

    /// The report of `result`, trained with `options` on `data` (`fingerprint` of its file);
    /// `maxLength` and `chat` as the data was read. Keys are stable: training {kind, rank (null for
    /// vector and lora), positions, lora {rank, alpha, projections, projection_interval} (null
    /// without a LoRA), layers,
    /// epochs, batch, grad_accum, lr, warmup, weight_decay, clip_norm, seed, max_length, chat,
    /// schedule, optimizer}, data {path, kind, examples, tokens, targets, fingerprint}, steps,
    /// planned_steps, loss {first, last, curve}, validation {initial, curve [[step, loss]],
    /// accuracy {initial, curve [[step, accuracy]]}, selected_step}, seconds, tokens_per_second, parameters,
    /// parameter_fraction.
    public static func json(result: SteeringTrainingResult, options: SteeringTrainingOptions, data: TrainingData,
                            fingerprint: FileFingerprint, maxLength: Int, chat: Bool) -> JSONValue {
        let layers = Set(result.adapter.layers.keys).union(result.lora.map { Array($0.layers.keys) } ?? []).sorted()
        let training: JSONValue = .object([
            ("kind", .string(options.kind.rawValue)), ("rank", options.kind == .vector || options.kind == .lora ? .null : .int(options.rank)),
            ("positions", .string(options.positions.rawValue)),
            ("lora", options.kind.trainsLoRA ? .object([
                ("rank", .int(options.loraRank)), ("alpha", .float(options.loraAlpha)),
                ("projections", .array(options.loraProjections.map { .string($0.rawValue) })),
                ("projection_interval", options.kind == .joint ? .int(options.projectionInterval) : .null),
                ("projections_made", .int(result.projections.count)),
            ]) : .null),
            ("layers", .array(layers.map { .int($0) })), ("epochs", .int(options.epochs)), ("batch", .int(options.batchSize)),
            ("grad_accum", .int(options.gradientAccumulation)), ("lr", .float(options.learningRate)),
            ("warmup", .double(options.warmupFraction)), ("weight_decay", .float(options.weightDecay)),
            ("clip_norm", options.clipNorm.map { .float($0) } ?? .null), ("seed", .int(Int(truncatingIfNeeded: options.seed))),
            ("max_length", .int(maxLength)), ("chat", .bool(chat)),
            ("schedule", .string("linear warm-up over ⌈steps·warmup⌉ steps, then \(options.schedule.rawValue)")),
            ("optimizer", .string("AdamW β 0.9/0.999 ε 1e-8, global-norm clipping")),
        ])
        let dataJSON: JSONValue = .object([
            ("path", .string(data.path)), ("kind", .string(data.kind.rawValue)), ("examples", .int(data.examples.count)),
            ("tokens", .int(data.examples.reduce(0) { $0 + $1.tokens.count })),
            ("targets", .int(data.examples.reduce(0) { $0 + $1.targetCount })), ("fingerprint", .string(fingerprint.description)),
        ])
        return .object([
            ("training", training), ("data", dataJSON), ("steps", .int(result.steps.count)), ("planned_steps", .int(result.plannedSteps)),
            ("loss", .object([("first", result.steps.first.map { .double($0.loss) } ?? .null),
                              ("last", result.steps.last.map { .double($0.loss) } ?? .null),
                              ("curve", .array(result.steps.map { .double($0.loss) }))])),
            ("validation", .object([("initial", result.initialValidationLoss.map { .double($0) } ?? .null),
                                    ("curve", .array(result.steps.compactMap { s in s.validationLoss.map { .array([.int(s.step), .double($0)]) } })),
                                    ("accuracy", .object([
                                        ("initial", result.initialValidationAccuracy.map { .double($0) } ?? .null),
                                        ("curve", .array(result.steps.compactMap { s in s.validationAccuracy.map { .array([.int(s.step), .double($0)]) } })),
                                    ])),
                                    ("selected_step", .int(result.selectedStep))])),
            ("seconds", .double(result.seconds)), ("tokens_per_second", .double(result.tokensPerSecond)),
            ("parameters", .int(result.parameterCount)), ("parameter_fraction", .double(result.parameterFraction)),
        ])
    }
}
