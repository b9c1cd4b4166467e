import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// `SteeringTrainer` against a PyTorch re-implementation of the same training (same initial
/// adapter, data order, AdamW, clipping and linear warm-up schedule; fixtures/train/run.json from
/// fixtures/generate/extra/train.py): every step's loss within 1e-3 nats, for each kind.
@Suite struct SteeringTrainerTests {
    struct Run: Decodable {
        struct Settings: Decodable { let rank, epochs, batch, accumulation: Int; let lr, warmup, weight_decay: Double; let seed: UInt64 }
        struct Curve: Decodable { let losses: [Double]; let lrs: [Double] }
        let settings: Settings
        let steps: Int
        let warmup_steps: Int
        let runs: [String: Curve]
        /// transformers' schedule factors (run.json only).
        let schedules: [String: [Double]]?
    }

    static func setup() throws -> (LlamaModel, TrainingData, Run) {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let data = try TrainingData.load(path: Fixtures.path("train/run.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                         options: TrainingDataOptions(maxLength: model.config.maxPositionEmbeddings, vocabularySize: model.config.vocabSize,
                                                                      endOfSequence: model.config.eosTokenIds.first))
        let run = try JSONDecoder().decode(Run.self, from: try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/run.json"))))
        return (model, data, run)
    }

    static func options(_ run: Run, kind: TrainingKind) -> SteeringTrainingOptions {
        var o = SteeringTrainingOptions()
        o.kind = kind; o.rank = run.settings.rank; o.epochs = run.settings.epochs; o.batchSize = run.settings.batch
        o.gradientAccumulation = run.settings.accumulation; o.learningRate = Float(run.settings.lr); o.warmupFraction = run.settings.warmup
        o.weightDecay = Float(run.settings.weight_decay); o.seed = run.settings.seed
        return o
    }

    @Test(arguments: TrainingKind.steeringKinds) func followsPyTorchStepByStep(kind: TrainingKind) throws {
        let (model, data, run) = try Self.setup()
        let reference = try #require(run.runs[kind.rawValue])
        let result = try SteeringTrainer.train(model: model, data: data, options: Self.options(run, kind: kind))
        #expect(result.plannedSteps == run.steps && result.steps.count == reference.losses.count)
        for (mine, (loss, lr)) in zip(result.steps, zip(reference.losses, reference.lrs)) {
            #expect(abs(mine.loss - loss) <= 1e-3, "\(kind) step \(mine.step): loss \(mine.loss) vs PyTorch \(loss)")
            #expect(abs(Double(mine.learningRate) - lr) <= 1e-7 * max(lr, 1), "\(kind) step \(mine.step): lr \(mine.learningRate) vs \(lr)")
        }
        // It trains: the last step's loss is below the first's, as PyTorch's is.
        #expect(result.steps.last!.loss < result.steps.first!.loss)
        #expect(result.adapter.madeFor == model.signature)
        let perLayer = kind == .vector ? model.config.hiddenSize : 2 * model.config.hiddenSize * run.settings.rank
        #expect(result.parameterCount == perLayer * model.config.numHiddenLayers)
    }

    /// The schedules are transformers' get_{linear,cosine,constant}_schedule_with_warmup, factor
    /// for factor (10 steps, 2 of warm-up; recorded by extra/train.py).
    @Test func schedulesAreTransformers() throws {
        let (_, _, run) = try Self.setup()
        for schedule in TrainingSchedule.allCases {
            let reference = try #require(run.schedules?[schedule.rawValue])
            let lr = schedule.learningRate(warmup: 2, total: 10)
            for (k, f) in reference.enumerated() {
                #expect(abs(Double(lr.factor(step: k + 1)) - f) <= 1e-6, "\(schedule) step \(k + 1): \(lr.factor(step: k + 1)) vs \(f)")
            }
        }
    }

    /// Validation every 2 steps and after the last; --keep-best returns the adapter of the lowest
    /// validation loss, which scores that loss when measured again.
    @Test func validationAndKeepBest() throws {
        let (model, data, run) = try Self.setup()
        let validation = try TrainingData.load(path: Fixtures.path("train/grad.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                               options: TrainingDataOptions(maxLength: 512, vocabularySize: model.config.vocabSize,
                                                                            endOfSequence: model.config.eosTokenIds.first))
        var o = Self.options(run, kind: .vector)
        o.evaluationInterval = 2; o.keepBest = true; o.learningRate = 0.2; o.schedule = .constant
        let r = try SteeringTrainer.train(model: model, data: data, validation: validation, options: o)
        let evaluated = r.steps.compactMap { s in s.validationLoss.map { (s.step, $0) } }
        #expect(evaluated.map(\.0) == [2, 4, 6])
        let all = [(0, try #require(r.initialValidationLoss))] + evaluated
        let best = all.min { $0.1 < $1.1 }!
        #expect(r.selectedStep == best.0)
        let again = try SteeringBackprop(model: model).lossAndGradients(sequences: validation.examples.map(\.tokens),
                                                                        objectives: validation.examples.map { .targetedCrossEntropy(targets: $0.targets) },
                                                                        adapter: r.adapter, computeGradients: false).loss
        #expect(abs(again - best.1) <= 1e-9)
    }

    /// The order: every example once per epoch, groups of batch × accumulation, the shuffle
    /// different between epochs; a stop request before a step ends the run with an error.
    @Test func scheduleAndStop() throws {
        var o = SteeringTrainingOptions()
        o.epochs = 3; o.batchSize = 2; o.gradientAccumulation = 2; o.seed = 9
        let plan = SteeringTrainer.schedule(examples: 10, options: o)
        #expect(plan.count == 9 && plan.map(\.count) == [4, 4, 2, 4, 4, 2, 4, 4, 2])
        for e in 0..<3 { #expect(plan[(3 * e)..<(3 * e + 3)].flatMap { $0 }.sorted() == Array(0..<10)) }
        #expect(plan[0..<3].flatMap { $0 } != plan[3..<6].flatMap { $0 })
        let (model, data, _) = try Self.setup()
        var calls = 0
        #expect(throws: RuntimeError.interrupted(after: 2)) {
            try SteeringTrainer.train(model: model, data: data, options: o, shouldStop: { calls += 1; return calls > 2 })
        }
    }
}

/// Which validation point is better: accuracy first, loss on a tie or without accuracy.
@Suite struct ValidationScoreTests {
    @Test func accuracyFirstThenLoss() {
        #expect(ValidationScore(loss: 3, accuracy: 0.5).isBetter(than: ValidationScore(loss: 1, accuracy: 0.4)))
        #expect(ValidationScore(loss: 1, accuracy: 0.5).isBetter(than: ValidationScore(loss: 2, accuracy: 0.5)))
        #expect(!ValidationScore(loss: 2, accuracy: 0.5).isBetter(than: ValidationScore(loss: 2, accuracy: 0.5)))
        #expect(ValidationScore(loss: 1).isBetter(than: ValidationScore(loss: 2)))
        #expect(!ValidationScore(accuracy: 0.5).isBetter(than: ValidationScore(accuracy: 0.5)))
    }
}
