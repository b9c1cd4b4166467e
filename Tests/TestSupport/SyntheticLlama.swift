import Runtime
import Tensors

/// Small random Llama models for the equivalence and backward-pass tests: embedding and lm_head
/// N(0, 1), norm gains U(0.8, 1.2), projections N(0, projectionStd²), each tensor seeded by a
/// running seed (start + 7919 per tensor, in loading order). `perturbation` > 0 adds
/// N(0, perturbation²) (seed + 1) to every projection: a "fine-tune" of the same draw.
public enum SyntheticLlama {
    public static func model(_ c: LlamaConfig, seed start: UInt64, projectionStd: Float,
                             perturbation: Float = 0) throws -> LlamaModel {
        var seed = start
        let w = try LlamaWeights.load(config: c, source: "synthetic") { name in
            seed &+= 7919
            if name == "model.embed_tokens.weight" || name == "lm_head.weight" {
                return Tensor.randomNormal([c.vocabSize, c.hiddenSize], std: 1, seed: seed)
            }
            if name.hasSuffix("norm.weight") { return Tensor.randomUniform([c.hiddenSize], low: 0.8, high: 1.2, seed: seed) }
            for p in LlamaProjection.allCases where name.contains(p.rawValue) {
                let shape: Shape = [p.outputSize(c), p.inputSize(c)]
                var t = Tensor.randomNormal(shape, std: projectionStd, seed: seed)
                if perturbation != 0 { t += Tensor.randomNormal(shape, std: perturbation, seed: seed &+ 1) }
                return t
            }
            throw RuntimeError.invalidArgument("unexpected tensor \(name)")
        }
        return try LlamaModel(config: c, weights: w, source: "synthetic")
    }
}
