import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// The completion-masked loss of `steertool train` on fixtures/tiny/base: fixtures/train/grad.jsonl
/// read by `TrainingData` gives the ids and targets transformers' tokenizer gave, and the loss and
/// post-block adapter gradients of the three prompt/completion sequences in one batch equal
/// torch.autograd's through transformers' LlamaForCausalLM in float64
/// (fixtures/generate/extra/train.py).
@Suite struct TrainingGradientTests {
    struct Meta: Decodable { let tokens: [[Int]]; let targets: [[Int]]; let rank: Int }

    static func reference() throws -> (SafetensorsFile, Meta) {
        let file = try SafetensorsFile(path: Fixtures.path("train/grad.safetensors"))
        return (file, try JSONDecoder().decode(Meta.self, from: Data(try #require(file.metadata["info"]).utf8)))
    }

    @Test func dataMatchesTransformersTokenizer() throws {
        let (_, meta) = try Self.reference()
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let data = try TrainingData.load(path: Fixtures.path("train/grad.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                         options: TrainingDataOptions(maxLength: model.config.maxPositionEmbeddings,
                                                                      vocabularySize: model.config.vocabSize,
                                                                      endOfSequence: model.config.eosTokenIds.first))
        #expect(data.examples.map(\.tokens) == meta.tokens)
        #expect(data.examples.map { $0.targets.map { $0 ? 1 : 0 } } == meta.targets)
        #expect(Set(meta.tokens.map(\.count)).count == 3, "sequences of different lengths")
    }

    @Test(arguments: ["vector", "linear", "silu"]) func gradientsMatchTorchAutograd(kind: String) throws {
        let (file, meta) = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        var layers: [Int: SteeringLayer] = [:]
        for l in 0..<base.config.numHiddenLayers {
            let bias = try file.tensor(named: "adapter.\(kind).\(l).bias")
            layers[l] = kind == "vector" ? SteeringLayer(bias: bias)
                : SteeringLayer(down: try file.tensor(named: "adapter.\(kind).\(l).down"), up: try file.tensor(named: "adapter.\(kind).\(l).up"), bias: bias)
        }
        let adapter = SteeringAdapter(site: .blockOutput, activation: kind == "silu" ? .silu : .identity, layers: layers)
        let objectives = meta.targets.map { TrainingObjective.targetedCrossEntropy(targets: $0.map { $0 == 1 }) }
        let g = try SteeringBackprop(model: base).lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: adapter)
        #expect(g.positions == meta.targets.reduce(0) { $0 + $1.reduce(0, +) })
        let refLoss = try file.tensor(named: "loss.\(kind)").scalars[0]
        #expect(abs(Float(g.loss) - refLoss) <= 1e-5 * abs(refLoss), "loss \(g.loss) vs \(refLoss)")
        for l in 0..<base.config.numHiddenLayers {
            let names = kind == "vector" ? ["bias"] : ["down", "up", "bias"]
            for name in names {
                let mine = try #require(name == "down" ? g.layers[l]?.down : name == "up" ? g.layers[l]?.up : g.layers[l]?.bias)
                let err = relativeError(mine.scalars, try file.tensor(named: "grad.\(kind).\(l).\(name)").scalars)
                #expect(err <= 1e-4, "\(kind) layer \(l) \(name): relative error \(err)")
            }
        }
        // The mask matters: the unmasked loss over every position is another number.
        let all = try SteeringBackprop(model: base).lossAndGradients(sequences: meta.tokens, objectives: meta.tokens.map { _ in .crossEntropy },
                                                                     adapter: adapter, computeGradients: false)
        #expect(abs(all.loss - g.loss) > 1e-3 * g.loss)
    }
}

/// Training upper layers only: the blocks below the lowest trainable layer run without a tape
/// and are not differentiated, which changes no number — the loss and gradients equal those of
/// the same adapter with a zero vector on layer 0 (which makes every block differentiated).
@Suite struct LowestTrainableLayerTests {
    @Test func skippingTheLowerBlocksChangesNothing() throws {
        let (file, meta) = try TrainingGradientTests.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        var layers: [Int: SteeringLayer] = [:]
        for l in [2, 3] {
            layers[l] = SteeringLayer(down: try file.tensor(named: "adapter.linear.\(l).down"), up: try file.tensor(named: "adapter.linear.\(l).up"))
        }
        let upper = SteeringAdapter(layers: layers)
        var everything = upper
        everything.layers[0] = SteeringLayer(bias: Tensor(shape: [base.config.hiddenSize]))
        let objectives = meta.targets.map { TrainingObjective.targetedCrossEntropy(targets: $0.map { $0 == 1 }) }
        let bp = try SteeringBackprop(model: base)
        let a = try bp.lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: upper)
        let b = try bp.lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: everything)
        #expect(abs(a.loss - b.loss) <= 1e-12 * b.loss)
        for l in [2, 3] {
            #expect(relativeError(try #require(a.layers[l]?.down).scalars, try #require(b.layers[l]?.down).scalars) <= 1e-6)
            #expect(relativeError(try #require(a.layers[l]?.up).scalars, try #require(b.layers[l]?.up).scalars) <= 1e-6)
        }
        #expect(try #require(b.layers[0]?.bias).maxAbsolute > 0, "layer 0 was differentiated in the full pass")
    }
}
