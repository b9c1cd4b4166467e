import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// `steertool train --kind lora|joint` against PEFT (fixtures/generate/extra/train_lora.py):
/// gradients through PEFT's LoRA layers (and joint's post-block adapters) by torch.autograd, a
/// training run per kind step by step against a PyTorch re-implementation (joint with its
/// orthogonal projections), and PEFT loading the folder `train --kind lora` writes.
@Suite struct LoRATrainingTests {
    struct Meta: Decodable { let tokens: [[Int]]; let targets: [[Int]]; let rank: Int; let alpha: Int }
    struct Run: Decodable {
        struct Curve: Decodable { let losses: [Double]; let lrs: [Double] }
        let lora_rank: Int; let lora_alpha: Int; let project_every: Int; let steps: Int
        let runs: [String: Curve]
    }

    static func reference() throws -> (SafetensorsFile, Meta) {
        let file = try SafetensorsFile(path: Fixtures.path("train/lora-grad.safetensors"))
        return (file, try JSONDecoder().decode(Meta.self, from: Data(try #require(file.metadata["info"]).utf8)))
    }

    @Test(arguments: ["lora", "joint"]) func gradientsMatchPEFTAutograd(kind: String) throws {
        let (file, meta) = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let L = base.config.numHiddenLayers
        var factors: [Int: [LlamaProjection: LoRAFactors]] = [:]
        for l in 0..<L {
            for p in LlamaProjection.allCases {
                factors[l, default: [:]][p] = LoRAFactors(a: try file.tensor(named: "lora.\(l).\(p.rawValue).a"),
                                                          b: try file.tensor(named: "lora.\(l).\(p.rawValue).b"),
                                                          scale: Float(meta.alpha) / Float(meta.rank))
            }
        }
        let lora = LoRAWeights(name: "reference", layers: factors)
        var layers: [Int: SteeringLayer] = [:]
        if kind == "joint" {
            for l in 0..<L {
                layers[l] = SteeringLayer(down: try file.tensor(named: "adapter.\(l).down"), up: try file.tensor(named: "adapter.\(l).up"))
            }
        }
        let adapter = SteeringAdapter(layers: layers)
        let objectives = meta.targets.map { TrainingObjective.targetedCrossEntropy(targets: $0.map { $0 == 1 }) }
        let g = try SteeringBackprop(model: base).lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: adapter, lora: lora)
        let refLoss = try file.tensor(named: "loss.\(kind)").scalars[0]
        #expect(abs(Float(g.loss) - refLoss) <= 1e-5 * abs(refLoss), "\(kind): loss \(g.loss) vs PEFT \(refLoss)")
        var worst = 0.0
        for l in 0..<L {
            for p in LlamaProjection.allCases {
                let mine = try #require(g.lora[l]?[p])
                for (part, t) in [("a", mine.a), ("b", mine.b)] {
                    let err = relativeError(t.scalars, try file.tensor(named: "grad.lora.\(kind).\(l).\(p.rawValue).\(part)").scalars)
                    worst = max(worst, err)
                    #expect(err <= 1e-4, "\(kind) layer \(l) \(p.rawValue).\(part): relative error \(err)")
                }
            }
            if kind == "joint" {
                for part in ["down", "up"] {
                    let mine = try #require(part == "down" ? g.layers[l]?.down : g.layers[l]?.up)
                    let err = relativeError(mine.scalars, try file.tensor(named: "grad.adapter.joint.\(l).\(part)").scalars)
                    #expect(err <= 1e-4, "joint layer \(l) adapter \(part): relative error \(err)")
                }
            }
        }
    }

    /// The lora and joint runs follow PyTorch step by step (joint projecting every 2 steps).
    @Test(arguments: [TrainingKind.lora, .joint]) func trainerFollowsPyTorch(kind: TrainingKind) throws {
        let (model, data, _) = try SteeringTrainerTests.setup()
        let settings = try JSONDecoder().decode(SteeringTrainerTests.Run.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/lora-run.json"))))
        let run = try JSONDecoder().decode(Run.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/lora-run.json"))))
        let reference = try #require(run.runs[kind.rawValue])
        var options = SteeringTrainerTests.options(settings, kind: kind)
        options.loraRank = run.lora_rank; options.loraAlpha = Float(run.lora_alpha); options.projectionInterval = run.project_every
        let result = try SteeringTrainer.train(model: model, data: data, options: options)
        #expect(result.steps.count == reference.losses.count)
        for (mine, (loss, lr)) in zip(result.steps, zip(reference.losses, reference.lrs)) {
            #expect(abs(mine.loss - loss) <= 1e-3, "\(kind) step \(mine.step): loss \(mine.loss) vs PyTorch \(loss)")
            #expect(abs(Double(mine.learningRate) - lr) <= 1e-7 * max(lr, 1))
        }
        let lora = try #require(result.lora)
        #expect(lora.layers.count == model.config.numHiddenLayers && lora.layers.values.allSatisfy { $0.count == 7 })
        let loraParameters = model.config.numHiddenLayers * LlamaProjection.allCases.reduce(0) {
            $0 + run.lora_rank * ($1.inputSize(model.config) + $1.outputSize(model.config))
        }
        if kind == .joint {
            // Projections after steps 2, 4, 6 on every layer leave col(D) orthogonal to col(B_down).
            #expect(result.projections.map(\.step) == [2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6])
            #expect(result.projections.allSatisfy { $0.cosineAfter <= 1e-3 }, "\(result.projections.map(\.cosineAfter))")
            #expect(result.parameterCount == loraParameters + model.config.numHiddenLayers * 2 * model.config.hiddenSize * settings.settings.rank)
        } else {
            #expect(result.adapter.layers.isEmpty && result.parameterCount == loraParameters)
        }
    }

    /// PEFT loads the folder `train --kind lora` writes and gives the logits steertool gives
    /// with it (the command is rerun here; the generator ran the same one).
    @Test func peftLoadsTheTrainedFolder() throws {
        let reference = try SafetensorsFile(path: Fixtures.path("train/lora-peft.safetensors"))
        let command = try JSONDecoder().decode([String].self, from: Data(try #require(reference.metadata["command"]).utf8))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-lora-train-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = command.map { $0.hasPrefix("fixtures/") ? Fixtures.path(String($0.dropFirst("fixtures/".count))) : $0 }
        let r = try SteerToolBinary.run(args + ["--output", dir])
        #expect(r.status == 0, "\(r.err)")
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))))
        #expect(config["r"]?.intValue == 4 && config["lora_alpha"]?.intValue == 8)
        #expect(FileManager.default.fileExists(atPath: dir + "/" + TrainingReport.fileName))
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let tuned = try base.adding(try LoRAWeights.load(directory: dir))
        let data = try TrainingData.load(path: Fixtures.path("train/run.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                         options: TrainingDataOptions(maxLength: 512, vocabularySize: base.config.vocabSize,
                                                                      endOfSequence: base.config.eosTokenIds.first))
        for i in 0..<3 {
            let peft = try reference.tensor(named: "logits.\(i)")
            let mine = try tuned.forward(tokens: data.examples[i].tokens).logits
            #expect(relativeError(mine.scalars, peft.scalars) <= 1e-4, "sequence \(i)")
            // The LoRA moved the logits: the base's are far from PEFT's.
            #expect(relativeError(try base.forward(tokens: data.examples[i].tokens).logits.scalars, peft.scalars) > 1e-2)
        }
    }
}
