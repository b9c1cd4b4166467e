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
    }

    static func setup() throws -> (LlamaModel, TrainingData, Run) {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let data = try TrainingData.load(path: Fixtures.path("train/run.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                         options: TrainingDataOptions(maxLength: model.config.maxPositionEmbeddings, vocabularySize: model.config.vocabSize,
                                                                      endOfSequence: model.config.eosTokenIds.first))
        let run = try JSONDecoder().decode(Run.self, from: try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/run.json"))))
        return (model, data, run)
    }

    static func options(_ run: Run, kind: SteeringTrainingKind) -> SteeringTrainingOptions {
        var o = SteeringTrainingOptions()
        o.kind = kind; o.rank = run.settings.rank; o.epochs = run.settings.epochs; o.batchSize = run.settings.batch
        o.gradientAccumulation = run.settings.accumulation; o.learningRate = Float(run.settings.lr); o.warmupFraction = run.settings.warmup
        o.weightDecay = Float(run.settings.weight_decay); o.seed = run.settings.seed
        return o
    }

    @Test(arguments: SteeringTrainingKind.allCases) func followsPyTorchStepByStep(kind: SteeringTrainingKind) throws {
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
