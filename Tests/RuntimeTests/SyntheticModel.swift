import Runtime
import Tensors

/// Small random Llama models for tests of properties that hold for any weights (cache vs
/// prefill, hook placement, error paths). Values only; numeric references come from fixtures.
enum SyntheticModel {
    static func config(layers: Int = 3, tied: Bool = false, bias: Bool = false,
                       architecture: String = "LlamaForCausalLM",
                       rope: LlamaConfig.RopeParameters = .init(theta: 10000)) -> LlamaConfig {
        LlamaConfig(architecture: architecture, vocabSize: 50, hiddenSize: 32, intermediateSize: 48,
                    numHiddenLayers: layers, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 8,
                    rmsNormEps: 1e-5, tieWordEmbeddings: tied, attentionBias: bias, rope: rope,
                    bosTokenId: 1, eosTokenIds: [2])
    }

    /// Weights drawn from N(0, 0.2²) (norm gains near 1), seeded by tensor name.
    static func weights(_ c: LlamaConfig) throws -> LlamaWeights {
        var seed: UInt64 = 1
        return try LlamaWeights.load(config: c, source: "synthetic") { name in
            seed &+= 7919
            let dims = shape(of: name, c)
            if name.hasSuffix("norm.weight") {
                return Tensor.randomUniform(Shape(dims), low: 0.8, high: 1.2, seed: seed)
            }
            return Tensor.randomNormal(Shape(dims), std: 0.2, seed: seed)
        }
    }

    static func model(_ c: LlamaConfig = config()) throws -> LlamaModel {
        try LlamaModel(config: c, weights: weights(c), source: "synthetic")
    }

    static func shape(of name: String, _ c: LlamaConfig) -> [Int] {
        if name == "model.embed_tokens.weight" || name == "lm_head.weight" { return [c.vocabSize, c.hiddenSize] }
        if name.hasSuffix("norm.weight") { return [c.hiddenSize] }
        for p in LlamaProjection.allCases where name.contains(p.rawValue) {
            return name.hasSuffix(".bias") ? [p.outputSize(c)] : [p.outputSize(c), p.inputSize(c)]
        }
        return []
    }
}
