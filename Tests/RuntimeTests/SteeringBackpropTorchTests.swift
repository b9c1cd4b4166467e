import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Adapter gradients on the fixture model (fixtures/tiny/base, KL to fixtures/tiny/finetuned, or
/// next-token cross-entropy) against torch.autograd through transformers' LlamaForCausalLM in
/// float64, recorded by fixtures/generate/extra/kl.py into fixtures/kl/grad.safetensors.
@Suite struct SteeringBackpropTorchTests {
    struct Meta: Decodable { let tokens: [[Int]]; let rank: Int }

    @Test(arguments: ["identity", "silu"], ["kl", "ce"])
    func gradientsMatchTorchAutograd(activation: String, loss: String) throws {
        let file = try SafetensorsFile(path: Fixtures.path("kl/grad.safetensors"))
        let meta = try JSONDecoder().decode(Meta.self, from: Data(try #require(file.metadata["info"]).utf8))
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let L = base.config.numHiddenLayers
        var layers: [Int: SteeringLayer] = [:]
        for l in 0..<L {
            layers[l] = SteeringLayer(down: try file.tensor(named: "adapter.\(activation).\(l).down"),
                                      up: try file.tensor(named: "adapter.\(activation).\(l).up"),
                                      bias: try file.tensor(named: "adapter.\(activation).\(l).bias"))
        }
        let adapter = SteeringAdapter(site: .blockOutput, activation: try #require(SteeringActivation(rawValue: activation)),
                                      layers: layers)
        let objectives: [TrainingObjective]
        if loss == "kl" {
            let ft = try LlamaModel.load(path: Fixtures.path("tiny/finetuned"))
            objectives = try meta.tokens.map { .kl(referenceLogProbs: logSoftmaxRows(try ft.forward(tokens: $0).logits)) }
        } else {
            objectives = meta.tokens.map { _ in .crossEntropy }
        }
        let g = try SteeringBackprop(model: base).lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: adapter)
        let refLoss = try file.tensor(named: "loss.\(activation).\(loss)").scalars[0]
        // Loss: f32 forward vs float64 torch; 1e-5 relative.
        #expect(abs(Float(g.loss) - refLoss) <= 1e-5 * abs(refLoss), "loss \(g.loss) vs \(refLoss)")
        // Gradients: each tensor ≤ 1e-4 relative (f32 forward/backward vs float64 autograd;
        // the acceptance bound of the KL-distillation issue).
        for l in 0..<L {
            for (name, mine) in [("down", g.layers[l]?.down), ("up", g.layers[l]?.up), ("bias", g.layers[l]?.bias)] {
                let ref = try file.tensor(named: "grad.\(activation).\(loss).\(l).\(name)")
                let mineT = try #require(mine)
                let err = relativeError(mineT.scalars, ref.scalars)
                #expect(err <= 1e-4, "\(activation) \(loss) layer \(l) \(name): relative error \(err)")
            }
        }
    }
}
